"""Issue 20 items 6 and 7 over HTTP: Enterprise Grid installs, installs from the org admin page, and
fblink leaving a workspace (uninstalled, tokens revoked, an org's access taken away, or Slack
answering a call ``invalid_auth`` / ``token_revoked``).

Every install is walked as a browser does against the fake Slack; events are Slack's envelopes,
signed; reminders go out through a sweep on fresh services (the worker's path). What is asserted
is what people would see (messages, answers) and what is left in the database.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from bot.fakes import slack_events as se
from bot.fakes.slack_oauth import Installer
from bot.fakes.slack_users import Person
from bot.revocation import prune_gone
from tests.conftest import ENTERPRISE, START, VONAGE_KEY, VONAGE_SECRET, Running
from tests.linkstate_world import run
from tests.sweep_helpers import DAY, run_sweep
from tests.test_installations_mode import DISTRIBUTED, help_answer, walk_install

A, B = "T0AAA", "T0BBB"


def distributed(start_app: Any, slack: Any) -> Running:
    slack.oauth.client_id, slack.oauth.client_secret = (
        DISTRIBUTED["slack_client_id"],
        DISTRIBUTED["slack_client_secret"],
    )
    return start_app(**DISTRIBUTED)


def install(bot: Running, slack: Any, installer: Installer) -> str:
    """Walk an install; the bot token Slack issued for it."""
    slack.oauth.install_as(installer)
    done, _, _ = walk_install(bot)
    assert done.status_code == 200, done.text
    return [t.value for t in slack.oauth.live_tokens() if t.installer == installer][-1]


def workspace(team: str) -> Installer:
    return Installer(team_id=team, team_name=f"{team} Co", enterprise_id=ENTERPRISE, user_id="U0INS")


def due_link(bot: Running, team: str, page: str, channel: str) -> None:
    bot.store.upsert_link(
        team,
        page,
        now=START,
        page_name=f"Shop {page}",
        api_key=VONAGE_KEY,
        linked_by="U0LINKER",
        channel_id=channel,
        expires_at=START + 5 * DAY,
        status="active",
        next_due_at=START - 10,
    )


def event(bot: Running, body: dict[str, Any]) -> None:
    r = bot.post_signed(json.dumps(body).encode(), "application/json")
    assert r.status_code == 200, r.text


def posts(slack: Any, channel: str) -> list[Any]:
    """chat.postMessage calls that reached the fake Slack for ``channel`` (accepted or not)."""
    return [r for r in slack.calls(path="/api/chat.postMessage") if r.params.get("channel") == channel]


def said_in(slack: Any, channel: str) -> list[Any]:
    return [m for m in slack.messages if m["channel"] == channel]


def command(bot: Running, text: str, team: str, **fields: str) -> Any:
    r = bot.command(text, team=team, fields=fields or None)
    assert r.status_code == 200, r.text
    return r.json() if "json" in r.headers.get("content-type", "") else r.text


# -- item 7: uninstall and revocation --------------------------------------------------------------
@pytest.fixture
def two(start_app, slack) -> tuple[Running, dict[str, str]]:  # type: ignore[no-untyped-def]
    """Workspaces A and B (Grid workspaces of one org, each installed on its own), each with a due
    link, and A with a Vonage key and a Facebook login stored."""
    bot = distributed(start_app, slack)
    tokens = {team: install(bot, slack, workspace(team)) for team in (A, B)}
    due_link(bot, A, "PAGE_A", "C0AOPS")
    due_link(bot, B, "PAGE_B", "C0BOPS")
    for team in (A, B):
        bot.store.add_key(team, f"key{team}", "vonage-secret", by="U0INS", now=START)
        bot.store.execute(
            "INSERT INTO fb_users (team_id, user_id, fb_user_id, fb_name, token_enc, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            [team, "U0LINKER", "FB1", "Zoë", "not-a-real-ciphertext", START],
        )
    return bot, tokens


def assert_gone(bot: Running, team: str) -> None:
    rows = bot.store.select("SELECT * FROM slack_installations WHERE team_id = ?", [team])
    assert rows and all(r["gone_at"] is not None for r in rows)
    assert all(r["bot_token_enc"] is None and r["bot_refresh_token_enc"] is None for r in rows)
    assert bot.store.select("SELECT * FROM vonage_keys WHERE team_id = ?", [team]) == []
    assert bot.store.select("SELECT * FROM fb_users WHERE team_id = ?", [team]) == []
    links = bot.store.select("SELECT status, next_due_at, token_enc FROM links WHERE team_id = ?", [team])
    assert links and all(lk["status"] == "gone" and lk["next_due_at"] is None for lk in links)


def assert_untouched(bot: Running, team: str) -> None:
    assert bot.store.select("SELECT gone_at FROM slack_installations WHERE team_id = ?", [team]) == [{"gone_at": None}]
    assert len(bot.store.select("SELECT * FROM vonage_keys WHERE team_id = ?", [team])) == 1
    assert len(bot.store.select("SELECT * FROM fb_users WHERE team_id = ?", [team])) == 1


def test_app_uninstalled_stops_that_workspace_at_once_and_tells_nobody(two, slack) -> None:  # type: ignore[no-untyped-def]
    bot, tokens = two
    assert "not installed" not in str(help_answer(bot, A))  # A's install is cached in the web process
    event(bot, se.app_uninstalled(team_id=A, enterprise_id=ENTERPRISE))
    assert_gone(bot, A)
    assert_untouched(bot, B)
    before = len(slack.calls())

    run_sweep(bot, START)
    assert posts(slack, "C0AOPS") == [] and said_in(slack, "C0AOPS") == []  # A's reminder never left
    assert {r.headers["authorization"] for r in posts(slack, "C0BOPS")} == {"Bearer " + tokens[B]}
    assert any("Shop PAGE_B" in str(m.get("text")) for m in said_in(slack, "C0BOPS"))
    assert "not installed" in help_answer(bot, A)["text"]  # the cache did not serve the gone install
    assert not any(r.headers.get("authorization") == "Bearer " + tokens[A] for r in slack.calls()[before:])


def test_tokens_revoked_for_the_bot_retires_the_install(two, slack) -> None:  # type: ignore[no-untyped-def]
    bot, _ = two
    bot_user = bot.store.select("SELECT bot_user_id FROM slack_installations WHERE team_id = ?", [A])[0]["bot_user_id"]
    event(bot, se.tokens_revoked(team_id=A, enterprise_id=ENTERPRISE, bot=[bot_user]))
    assert_gone(bot, A)
    assert_untouched(bot, B)


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked"])
def test_a_dead_token_answer_on_a_post_retires_the_install(two, slack, error: str) -> None:  # type: ignore[no-untyped-def]
    """No event arrived (Slack does not promise one): the first call with A's token that Slack
    refuses retires A, and nothing more is tried in A, not even a DM to the linker."""
    bot, tokens = two
    before = len(slack.calls())  # the install asked auth.test with each token
    if error == "token_revoked":
        slack.oauth.revoke(tokens[A])
    else:
        with slack.oauth.lock:
            del slack.oauth.tokens[tokens[A]]  # Slack no longer knows the token: invalid_auth
    run_sweep(bot, START)
    refused = [r for r in slack.calls()[before:] if r.headers.get("authorization") == "Bearer " + tokens[A]]
    assert len(refused) == 1  # one post reached Slack and was refused; no fallback, no retry
    assert_gone(bot, A)
    assert_untouched(bot, B)
    assert said_in(slack, "C0AOPS") == [] and said_in(slack, "DU0LINKER") == []
    assert any("Shop PAGE_B" in str(m.get("text")) for m in said_in(slack, "C0BOPS"))
    run_sweep(bot, START + DAY)
    assert len([r for r in slack.calls()[before:] if r.headers.get("authorization") == "Bearer " + tokens[A]]) == 1


def test_a_reinstall_starts_clean_and_sync_finds_its_links_again(two, slack, vonage) -> None:  # type: ignore[no-untyped-def]
    bot, tokens = two
    vonage.add_account(VONAGE_KEY, "PAGE_A", "page-token-at-vonage", name="Shop A at Vonage")
    event(bot, se.app_uninstalled(team_id=A, enterprise_id=ENTERPRISE))
    new = install(bot, slack, workspace(A))
    rows = bot.store.select("SELECT gone_at, bot_token_enc FROM slack_installations WHERE team_id = ? ORDER BY id", [A])
    assert len(rows) == 2 and rows[0]["gone_at"] is not None and rows[1]["gone_at"] is None  # a new row
    assert new != tokens[A] and rows[1]["bot_token_enc"] is not None
    assert bot.store.get_link(A, "PAGE_A") is None  # clean: nothing of the old install is trusted
    assert "No Pages are linked" in bot.command("status", team=A).text
    # the uninstall deleted A's Vonage secrets: the installer is asked again, and adds A's key back
    slack.wait_for(lambda: [m for m in slack.messages if "Add a Vonage key" in json.dumps(m)])
    bot.store.add_key(A, VONAGE_KEY, VONAGE_SECRET, by="U0INS", now=START)

    text = run(bot, "sync", "Synced with Vonage", team=A, user="UADMIN")
    assert "Shop A at Vonage" in text and "Imported" in text
    link = bot.store.get_link(A, "PAGE_A")
    assert link.status == "active" and link.needs_relink and link.expires_at is None
    assert bot.store.get_link(B, "PAGE_B").status == "active"


def test_another_process_stops_serving_a_gone_install_within_its_recheck(two, start_app, slack) -> None:  # type: ignore[no-untyped-def]
    bot, _ = two
    other = start_app(**DISTRIBUTED)  # a second web process on the same database
    other.services.installs.recheck = 0.3
    assert "not installed" not in str(help_answer(other, A))  # cached there
    event(bot, se.app_uninstalled(team_id=A, enterprise_id=ENTERPRISE))  # the first process hears it
    time.sleep(0.35)
    assert "not installed" in help_answer(other, A)["text"]
    assert "not installed" not in str(help_answer(other, B))


def test_a_gone_workspaces_rows_are_deleted_after_retention(two, slack) -> None:  # type: ignore[no-untyped-def]
    bot, _ = two
    event(bot, se.app_uninstalled(team_id=A, enterprise_id=ENTERPRISE))
    days = bot.services.settings.fblink_retention_days

    def prune(at: int) -> int:
        return bot.store.run(lambda store: prune_gone(store, now=at, retention_days=days))

    assert prune(START + (days - 1) * DAY) == 0
    assert bot.store.select("SELECT id FROM links WHERE team_id = ?", [A])
    assert prune(START + (days + 1) * DAY) == 1
    for table in ("links", "slack_teams", "slack_installations", "audit"):
        assert bot.store.select(f"SELECT * FROM {table} WHERE team_id = ?", [A]) == [], table
    assert_untouched(bot, B)
    assert bot.store.get_link(B, "PAGE_B").status == "active"


# -- item 6: Enterprise Grid ----------------------------------------------------------------------
def org_installer() -> Installer:
    return Installer(
        team_id=None, team_name=None, enterprise_id=ENTERPRISE, enterprise_name="Grid Org", org_install=True
    )


def test_an_org_install_serves_every_workspace_and_its_reminders_go_out_with_the_org_token(start_app, slack) -> None:  # type: ignore[no-untyped-def]
    bot = distributed(start_app, slack)
    token = install(bot, slack, org_installer())
    rows = bot.store.select("SELECT team_id, is_enterprise_install FROM slack_installations")
    assert rows == [{"team_id": None, "is_enterprise_install": 1}]
    for team in ("T0G1", "T0G2"):
        answer = command(bot, "help", team, is_enterprise_install="true")
        assert "not installed" not in str(answer) and answer.get("blocks")
    teams = bot.store.select("SELECT team_id, enterprise_id FROM slack_teams ORDER BY team_id")
    assert teams == [{"team_id": "T0G1", "enterprise_id": ENTERPRISE}, {"team_id": "T0G2", "enterprise_id": ENTERPRISE}]

    # a workspace's channel is looked up with the org token: conversations.list names the workspace
    slack.add_channel("C0G1OPS", "g1-ops")
    slack.roles["UADMIN"] = Person("T0G1", "admin")  # a Slack admin of T0G1 (users.info with the org token)
    r = bot.command("remind #g1-ops", team="T0G1", user="UADMIN", fields={"is_enterprise_install": "true"})
    assert "now go to <#C0G1OPS>" in r.text, r.text
    listed = slack.calls(path="/api/conversations.list")
    assert listed and all(r.params.get("team_id") == "T0G1" for r in listed)

    due_link(bot, "T0G1", "PAGE_G1", "C0G1OPS")
    due_link(bot, "T0G2", "PAGE_G2", "C0G2OPS")
    run_sweep(bot, START)  # the worker knows only each link's team
    for channel in ("C0G1OPS", "C0G2OPS"):
        assert {r.headers["authorization"] for r in posts(slack, channel)} == {"Bearer " + token}
        assert said_in(slack, channel)

    # the org loses T0G1: its links stop, T0G2 goes on, and T0G1's commands are refused
    event(bot, se.team_access_revoked(enterprise_id=ENTERPRISE, team_ids=["T0G1"]))
    due_link(bot, "T0G2", "PAGE_G2B", "C0G2B")
    bot.store.upsert_link("T0G1", "PAGE_G1", now=START, next_due_at=START - 10)  # due again: still gone
    run_sweep(bot, START + DAY)
    assert bot.store.get_link("T0G1", "PAGE_G1").status == "gone"
    assert len(posts(slack, "C0G1OPS")) == 1 and said_in(slack, "C0G2B")
    assert bot.store.select("SELECT gone_at FROM slack_installations")[0]["gone_at"] is None  # the org stays


def test_an_org_admin_install_without_a_state_is_accepted_and_a_workspace_one_is_not(start_app, slack) -> None:  # type: ignore[no-untyped-def]
    bot = distributed(start_app, slack)
    code = slack.oauth.grant(Installer(team_id="T0WS", enterprise_id=None, user_id="U0SNEAK"))
    refused = httpx.get(f"{bot.url}/slack/oauth_redirect?code={code}", timeout=10)
    assert refused.status_code == 401 and "Add to Slack" in refused.text
    assert slack.oauth.live_tokens() == []  # the token Slack issued for it was revoked at once
    assert bot.store.select("SELECT id FROM slack_installations") == []
    assert bot.store.select("SELECT team_id FROM slack_teams") == []
    assert "not installed" in command(bot, "help", "T0WS")["text"]

    code = slack.oauth.grant(org_installer())
    done = httpx.get(f"{bot.url}/slack/oauth_redirect?code={code}", timeout=10)
    assert done.status_code == 200 and "Grid Org" in done.text, done.text
    rows = bot.store.select("SELECT enterprise_id, team_id, is_enterprise_install FROM slack_installations")
    assert rows == [{"enterprise_id": ENTERPRISE, "team_id": None, "is_enterprise_install": 1}]
    assert command(bot, "help", "T0G9", is_enterprise_install="true").get("blocks")
    again = httpx.get(f"{bot.url}/slack/oauth_redirect?code={code}", timeout=10)  # a code works once
    assert again.status_code == 401


def test_an_org_admin_sees_every_workspaces_links_and_nobody_else_does(start_app, slack) -> None:  # type: ignore[no-untyped-def]
    bot = distributed(start_app, slack)
    install(bot, slack, org_installer())
    for team, domain in (("T0G1", "north-shop"), ("T0G2", "south-shop")):
        command(bot, "help", team, is_enterprise_install="true", team_domain=domain)
    due_link(bot, "T0G1", "PAGE_N", "C0N")
    due_link(bot, "T0G2", "PAGE_S", "C0S")
    slack.org_people = {
        "U0ORGADM": {"enterprise_id": ENTERPRISE, "is_admin": True, "teams": ["T0G1", "T0G2"]},
        "U0MEMBER": {"enterprise_id": ENTERPRISE, "teams": ["T0G1"]},
    }
    grid = {"is_enterprise_install": "true", "team_domain": "north-shop"}  # Slack sends the same domain each time
    text = run(bot, "org", "every workspace of your org", team="T0G1", user="U0ORGADM", fields=grid)
    assert "north-shop" in text and "south-shop" in text and "Shop PAGE_N" in text and "Shop PAGE_S" in text
    for user in ("U0MEMBER", "UADMIN"):  # a member of the org; an fblink admin of one workspace
        text = run(bot, "org", "Only an admin or owner", team="T0G1", user=user, fields=grid)
        assert "PAGE_S" not in text
    # `/fblink status` stays the workspace's own
    status = bot.command("status", team="T0G1", user="U0ORGADM", fields=grid).text
    assert "PAGE_N" in status and "PAGE_S" not in status


def test_org_view_in_a_workspace_install_points_to_status(two, slack) -> None:  # type: ignore[no-untyped-def]
    bot, _ = two
    slack.org_people = {"U0ORGADM": {"enterprise_id": ENTERPRISE, "is_admin": True}}
    text = run(bot, "org", "org-wide", team=A, user="U0ORGADM")
    assert "/fblink status" in text and "PAGE_B" not in text


def test_an_org_wide_uninstall_retires_every_workspace_of_the_org_and_access_granted_brings_one_back(
    start_app, slack
) -> None:  # type: ignore[no-untyped-def]
    bot = distributed(start_app, slack)
    install(bot, slack, org_installer())
    grid = {"is_enterprise_install": "true"}
    for team in ("T0G1", "T0G2"):
        command(bot, "help", team, **grid)
        bot.store.add_key(team, f"key{team}", "vonage-secret", by="U0ADM", now=START)
    due_link(bot, "T0G1", "PAGE_G1", "C0G1OPS")
    event(bot, se.app_uninstalled(team_id="T0G1", enterprise_id=ENTERPRISE, is_enterprise_install=True))
    assert bot.store.select("SELECT gone_at FROM slack_installations")[0]["gone_at"] is not None
    assert bot.store.select("SELECT team_id FROM slack_teams WHERE gone_at IS NULL") == []
    assert bot.store.select("SELECT * FROM vonage_keys") == []
    run_sweep(bot, START)
    assert posts(slack, "C0G1OPS") == []
    assert "not installed" in command(bot, "help", "T0G2", **grid)["text"]

    # installed org-wide again: the org's workspaces are served again, and start clean
    install(bot, slack, org_installer())
    assert command(bot, "help", "T0G2", **grid).get("blocks")
    assert bot.store.get_link("T0G1", "PAGE_G1") is None

    # one workspace taken away: nothing is said there any more, from any process...
    event(bot, se.team_access_revoked(enterprise_id=ENTERPRISE, team_ids=["T0G2"], team_id="T0G1"))
    assert bot.store.run(lambda _: bot.services.installs.install_for(None, "T0G2")) is None
    # ...until the org gives it back (Slack says so, or sends a request from it: only a workspace
    # the app is in can send one)
    event(bot, se.team_access_granted(enterprise_id=ENTERPRISE, team_ids=["T0G2"], team_id="T0G1"))
    due_link(bot, "T0G2", "PAGE_G2", "C0G2NEW")
    run_sweep(bot, START + DAY)
    assert said_in(slack, "C0G2NEW")


def test_single_workspace_mode_acks_lifecycle_events_and_keeps_everything(bot: Running) -> None:
    """With SLACK_BOT_TOKEN there are no stored installs: uninstalling is the operator's business."""
    due_link(bot, "T0001", "PAGE_1", "C0ONE")
    event(bot, se.app_uninstalled(team_id="T0001", enterprise_id=ENTERPRISE))
    event(bot, se.tokens_revoked(team_id="T0001", bot=["UBOT"]))
    assert bot.store.get_link("T0001", "PAGE_1").status == "active"
    assert bot.store.select("SELECT * FROM slack_teams") == []


def test_a_payload_naming_another_orgs_workspace_is_not_served_by_this_orgs_install(start_app, slack) -> None:  # type: ignore[no-untyped-def]
    """Org E's install must never speak for workspace B of no org (or another one), nor move B under E."""
    bot = distributed(start_app, slack)
    install(bot, slack, org_installer())
    install(bot, slack, Installer(team_id=B, team_name="B Co", enterprise_id=None, user_id="U0BINS"))
    due_link(bot, B, "PAGE_B", "C0BOPS")
    before = bot.store.select("SELECT * FROM slack_teams WHERE team_id = ?", [B])
    assert "not installed" in command(bot, "help", B, is_enterprise_install="true")["text"]
    event(bot, se.team_access_granted(enterprise_id=ENTERPRISE, team_ids=[B]))
    event(bot, se.team_access_revoked(enterprise_id=ENTERPRISE, team_ids=[B]))
    assert bot.store.select("SELECT * FROM slack_teams WHERE team_id = ?", [B]) == before
    assert bot.store.get_link(B, "PAGE_B").status == "active"
    run_sweep(bot, START)
    b_token = next(t.value for t in slack.oauth.live_tokens() if t.installer.team_id == B)
    assert {r.headers["authorization"] for r in posts(slack, "C0BOPS")} == {"Bearer " + b_token}
