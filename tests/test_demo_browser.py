"""The demo in a real browser (Playwright driving Debian's chromium): the main story a newcomer walks.

FBLINK_SCREENSHOTS=1 also writes tests/screenshots/{pages,link-modal,reminder,app-home}.png
(the README shows them): ``FBLINK_SCREENSHOTS=1 python -m pytest -q tests/test_demo_browser.py``.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.demo.run import Running, start_in_thread
from bot.demo.world import ACME, TEAM, TEAM2, TEAM2_NAME
from tests.test_demo import acme_has_a_link

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).parent / "screenshots"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run must `apt-get install -y chromium`")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' brings playwright")
expect = sync_api.expect


@pytest.fixture
def demo() -> Iterator[Running]:
    running = start_in_thread(out=io.StringIO())
    yield running
    running.stop()


@pytest.fixture
def page(demo: Running, tmp_path: Path) -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context(
            viewport={"width": 1180, "height": 760}, locale="en-GB", timezone_id="Europe/London"
        )
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        yield tab
        context.close()
        browser.close()


def shot(page, name: str, tmp_path: Path, target=None) -> None:  # type: ignore[no-untyped-def]
    """Always keep a screenshot of the step; refresh the committed one when asked."""
    where = SHOTS if os.environ.get("FBLINK_SCREENSHOTS") == "1" else tmp_path
    where.mkdir(exist_ok=True)
    (target or page).screenshot(path=str(where / f"{name}.png"))


def run(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#composer", text)
    page.press("#composer", "Enter")


SCRIPTS = ["Торговый дом", "株式会社 漢字", "زهرة", "☕🙂🍰", "Zürich Bäckerei"]  # names fblink's pages may show

# Draws each sample in the page's own font list and compares it with the same number of
# characters no font has (U+10FFFD, drawn as empty boxes): equal pixels mean the script is missing.
DRAWS_GLYPHS = r"""samples => {
  const font = '32px ' + getComputedStyle(document.body).fontFamily;
  const draw = text => {
    const c = document.createElement('canvas'); c.width = 600; c.height = 48;
    const g = c.getContext('2d'); g.font = font; g.fillText(text, 4, 36);
    return Array.from(g.getImageData(0, 0, 600, 48).data).join(',');
  };
  return samples.filter(s => draw(s) === draw('\u{10FFFD}'.repeat([...s].length)));
}"""


def facebook_allow(page, click_target) -> None:  # type: ignore[no-untyped-def]
    """Click a 'Continue with Facebook' button; in the dialog tab press Allow; see fblink's callback page."""
    with page.context.expect_page() as new_tab:
        click_target.click()
    dialog = new_tab.value
    dialog.wait_for_load_state()
    # fblink's own page first: it names the Slack user the login will be bound to
    expect(dialog.locator("h1")).to_contain_text("Connect Facebook to fblink")
    expect(dialog.locator("body")).to_contain_text("Slack user")
    expect(dialog.locator("header.bar")).to_have_text("fblink")  # the layout every fblink page shares
    assert dialog.evaluate(DRAWS_GLYPHS, SCRIPTS) == []  # every script is drawn, none as empty boxes
    dialog.get_by_role("button", name="Continue to Facebook").click()
    expect(dialog.locator("h1")).to_contain_text("requesting access")
    expect(dialog.locator("body")).to_contain_text("pages_messaging")
    dialog.click("#fb-allow")
    dialog.wait_for_url(re.compile(r".*/facebook/callback.*"))
    expect(dialog.locator("h1")).to_contain_text("connected")
    dialog.close()


def test_main_story_in_a_browser(demo: Running, page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(demo.url)
    expect(page.locator("#title")).to_have_text("# ops")
    messages = page.locator("#messages")

    # 1. log in with Facebook; the spent prompt then says it is done, in its own place
    run(page, "/fblink login")
    facebook_allow(page, messages.get_by_role("button", name="Continue with Facebook").last)
    expect(messages.locator(".msg", has_text="Connected to Facebook as").last).to_contain_text("Avery Quinn")
    expect(messages.get_by_role("button", name="Continue with Facebook")).to_have_count(0)

    # 2. list the Pages
    run(page, "/fblink pages")
    expect(messages).to_contain_text("Acme Coffee & Tea")
    expect(messages).to_contain_text("Acme Roastery Berlin")
    expect(messages.locator(".is-ephemeral").last).to_contain_text("Only visible to you")
    shot(page, "pages", tmp_path)

    # 3. link one through the modal (key and application)
    run(page, "/fblink link")
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    app_select = modal.locator("select[data-action=app]")
    expect(app_select).to_be_visible()
    modal.locator("select[data-action=page]").select_option(ACME["id"])
    app_select.select_option(app_select.locator("option", has_text="Acme Support Bot").get_attribute("value"))
    shot(page, "link-modal", tmp_path, modal.locator(".modal-card"))
    page.click("#modal-submit")
    expect(modal).to_be_hidden()
    page.click("#dms a.nav")
    expect(messages).to_contain_text("Linked")
    page.click("[data-channel=C0OPS00001]")

    # 4. /fblink status
    run(page, "/fblink status")
    expect(messages.locator(".msg").last).to_contain_text("Links in this workspace")
    expect(messages.locator(".msg").last).to_contain_text("Acme Coffee & Tea")

    # 5. advance 84 days and run the sweep
    page.fill("#advance-days", "84")
    page.click("#advance")
    expect(page.locator("#clock")).to_contain_text("+84 days")
    page.click("#sweep")
    expect(page.locator("#sweep-report")).not_to_be_empty()

    # 6. the reminder in the link's channel, for everyone in it
    reminder = messages.locator(".msg:not(.is-ephemeral)", has_text="expires in").last
    expect(reminder).to_contain_text("6 days")
    expect(reminder.get_by_role("button", name="Re-link now")).to_be_visible()
    shot(page, "reminder", tmp_path)

    # 7. Re-link now: the Facebook access is nearly over, so fblink asks for a fresh login first
    reminder.get_by_role("button", name="Re-link now").click()
    prompt = messages.locator(".is-ephemeral", has_text="fresh Facebook login").last
    facebook_allow(page, prompt.get_by_role("button", name="Continue with Facebook"))

    # 8. the same reminder message, updated in place with the new expiry
    updated = messages.locator(".msg", has_text="was re-linked").last
    expect(updated).to_contain_text("New expiry")
    expect(updated).to_contain_text("(edited)")
    expect(messages.locator(".msg", has_text="expires in")).to_have_count(0)

    # 9. App Home shows it
    page.click("#home-tab")
    home = page.locator(".home")
    expect(home).to_contain_text("Acme Coffee & Tea")
    shot(page, "app-home", tmp_path)

    # and a non-admin is refused a key change
    page.select_option("#person", "UPAGEADM")
    page.click("[data-channel=C0OPS00001]")
    run(page, "/fblink keys add")
    expect(messages.locator(".is-ephemeral").last).to_contain_text("admin")
    expect(page.locator("#modal")).to_be_hidden()

    # Priya manages a Page with a hostile name: shown as text, never as markup
    run(page, "/fblink login")
    facebook_allow(page, messages.get_by_role("button", name="Continue with Facebook").last)
    run(page, "/fblink pages")
    expect(messages).to_contain_text('Café "payload=1&x=%2B" <b>Ünïcödé</b>')


def test_admin_adds_a_key_and_the_link_modal_follows_it(demo: Running, page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(demo.url)
    run(page, "/fblink keys add")
    modal = page.locator("#modal")
    page.click("#modal-submit")  # empty: fblink's field errors, the modal stays open
    expect(modal.locator(".error").first).to_contain_text("letters and digits")
    modal.locator("input").nth(0).fill("e5f6a7b8")
    modal.locator("input").nth(1).fill("OtherSecret2")
    page.click("#modal-submit")
    expect(modal).to_be_hidden()
    page.click("#dms a.nav")
    expect(page.locator("#messages")).to_contain_text("Added Vonage API key")
    page.click("[data-channel=C0OPS00001]")
    run(page, "/fblink login")
    facebook_allow(page, page.locator("#messages").get_by_role("button", name="Continue with Facebook").last)
    run(page, "/fblink link")
    expect(modal.locator("select[data-action=app]")).to_contain_text("Acme Support Bot")
    modal.locator("select[data-action=page]").select_option(ACME["id"])
    modal.locator("select[data-action=link_modal_key]").select_option("e5f6a7b8")  # dispatches block_actions
    expect(modal.locator("select[data-action=app]")).to_contain_text("Agency")
    expect(modal.locator("select[data-action=page]")).to_have_value(ACME["id"])  # kept across views.update
    page.click("#modal-close")
    expect(modal).to_be_hidden()


def test_a_declined_permission_and_did_you_mean_in_a_browser(demo: Running, page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 21: untick pages_messaging and fblink links nothing, says why and asks again in one click;
    a name typed loosely is matched, and one that matches nothing gets "Did you mean" buttons."""
    page.goto(demo.url)
    messages = page.locator("#messages")
    run(page, "/fblink login")
    with page.context.expect_page() as new_tab:
        messages.get_by_role("button", name="Continue with Facebook").last.click()
    dialog = new_tab.value
    dialog.wait_for_load_state()
    expect(dialog.locator("body")).to_contain_text("Avery Quinn")  # the person acting, by name
    dialog.get_by_role("button", name="Continue to Facebook").click()
    dialog.locator("input[value=pages_messaging]").uncheck()
    dialog.click("#fb-allow")
    dialog.wait_for_url(re.compile(r".*/facebook/callback.*"))
    expect(dialog.locator("h1")).to_contain_text("permissions are missing")
    expect(dialog.locator("body")).to_contain_text("pages_messaging")
    expect(dialog.locator("body")).to_contain_text("Avery Quinn")
    shot(page, "declined-callback", tmp_path, dialog)
    dialog.close()

    expect(messages.locator(".msg", has_text="did not grant").last).to_contain_text("pages_messaging")
    run(page, "/fblink link acme coffee & tea")  # the Page's emoji left out
    refusal = messages.locator(".msg", has_text="did not link").last
    expect(refusal).to_contain_text("pages_messaging")
    shot(page, "declined-refusal", tmp_path)
    facebook_allow(page, refusal.get_by_role("button", name="Grant the missing permissions"))

    run(page, "/fblink link acme tea coffee")  # words out of order: nothing matches, the nearest is offered
    offer = messages.locator(".msg", has_text="Did you mean").last
    expect(offer).to_contain_text("No Page you manage is called")
    shot(page, "did-you-mean", tmp_path)
    offer.get_by_role("button", name="Acme Coffee & Tea ☕").click()
    expect(messages.locator(".msg", has_text="Linked").last).to_contain_text("Acme Coffee & Tea")

    run(page, "/fblink remind acme #marketing")  # escaped by "Slack" as <#C…|marketing>
    expect(messages.locator(".msg").last).to_contain_text("now go to")
    expect(messages.locator(".msg").last).to_contain_text("marketing")


def test_the_sidebar_marks_a_channel_with_new_messages(demo: Running, page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A reminder posted to #ops while you look at #marketing shows #ops as unread until you open it."""
    page.goto(demo.url)
    run(page, "/fblink login")
    facebook_allow(page, page.locator("#messages").get_by_role("button", name="Continue with Facebook").last)
    run(page, f"/fblink link {ACME['id']}")
    expect(page.locator("#messages .msg", has_text="Linked").last).to_be_visible()
    page.click("[data-channel=C0MKT00002]")
    ops = page.locator("[data-channel=C0OPS00001]")
    expect(ops).not_to_have_class(re.compile("unread"))
    page.fill("#advance-days", "0")
    page.click("#advance")
    expect(page.locator("#sweep-report")).to_contain_text("from 1 to 3650")  # refused, and said why
    page.fill("#advance-days", "84")
    page.click("#advance")
    expect(page.locator("#sweep-report")).to_contain_text("expires in 6 days")
    page.click("#sweep")
    expect(ops).to_have_class(re.compile("unread"))
    ops.click()
    expect(page.locator("#messages")).to_contain_text("expires in")
    expect(ops).not_to_have_class(re.compile("unread"))


def test_add_to_slack_installs_a_second_workspace_kept_apart(demo: Running, page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 20: "Add to Slack" in the workspace switcher, Allow, and the browser lands in Globex Bikes:
    its own people and channels, fblink answers there, and Acme's link is not to be seen."""
    world = demo.world
    acme_has_a_link(demo)
    page.goto(demo.url)
    messages = page.locator("#messages")
    run(page, "/fblink status")
    expect(messages.locator(".msg").last).to_contain_text(ACME["name"])  # Acme's own link, in Acme
    expect(page.locator("#workspaces .ws-tile")).to_have_count(2)  # Acme, and "Add to Slack"

    page.click("#workspaces a.add")
    expect(page.locator("h1")).to_contain_text(f"access the {TEAM2_NAME} Slack workspace")
    shot(page, "add-to-slack", tmp_path)
    page.get_by_role("button", name="Allow").click()
    expect(page.locator("#ws-name")).to_have_text(TEAM2_NAME)  # landed in the new workspace
    expect(page.locator("#workspaces button.ws-tile")).to_have_count(2)  # both workspaces, no "Add" left
    expect(page.locator("#channels")).to_contain_text("bike-shop")
    expect(page.locator("#channels")).not_to_contain_text("ops")
    run(page, "/fblink help")
    expect(messages.locator(".msg").last).to_contain_text("/fblink status")
    run(page, "/fblink status")
    expect(messages.locator(".msg").last).to_contain_text("No Pages are linked")
    expect(messages).not_to_contain_text(ACME["name"])
    shot(page, "second-workspace", tmp_path)
    rows = world.on_fblink_loop(
        world.fblink.services.store.select("SELECT team_id FROM slack_installations ORDER BY team_id")
    ).result(10)
    assert [r["team_id"] for r in rows] == [TEAM, TEAM2]

    page.click(f"#workspaces button[data-team={TEAM}]")  # back in Acme: its link is still there
    run(page, "/fblink status")
    expect(messages.locator(".msg").last).to_contain_text(ACME["name"])
