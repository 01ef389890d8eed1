"""Issue 20 item 5: per-workspace settings in distributed mode (Vonage keys, fblink admins, the
default reminder channel), over HTTP against the fakes, and asked from the other side: two
workspaces installed through "Add to Slack", and signed payloads from B that name A's things.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import httpx
import pytest

from bot.cli import cmd_check_config
from bot.fakes import slack_payloads as sp
from bot.fakes.slack_oauth import Installer
from bot.fakes.slack_users import Person
from bot.settings import SettingsError, load_settings
from tests.conftest import Running
from tests.flows import button_urls, confirm_login, query, text_of
from tests.test_installations_mode import DISTRIBUTED, walk_install
from tests.test_store_settings_cli import BASE_ENV, clean_env, env  # noqa: F401  (fixtures)

A, B = "T0AAA", "T0BBB"
INSTALLER = {A: "U0AINS", B: "U0BINS"}
A_KEY, A_SECRET = "akey0001", "a-secret-1"
B_KEY, B_SECRET = "bkey0002", "b-secret-2"
PAGES = [{"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]}]
NO_KEY = "No Vonage API key is set up for this workspace yet"


# -- signed requests from a workspace that is not on Enterprise Grid -----------------------------
def command(bot: Running, team: str, user: str, text: str, channel: str = "C1") -> httpx.Response:
    body = sp.slash_command(
        text=text,
        team_id=team,
        user_id=user,
        channel_id=channel,
        trigger_id=bot.slack.issue_trigger(f"{time.monotonic_ns()}.1.abc", user),
        response_url=bot.slack.response_url(f"{team}-{user}-{time.monotonic_ns()}", channel, user),
    )
    r = bot.post_signed(sp.form_body(body), "application/x-www-form-urlencoded")
    assert r.status_code == 200, r.text
    return r


def said(r: httpx.Response) -> str:
    return text_of(r.json()) if r.content else ""


def click(bot: Running, team: str, user: str, action_id: str, value: str, channel: str) -> httpx.Response:
    trigger = bot.slack.issue_trigger(f"{time.monotonic_ns()}.2.abc", user)
    payload = sp.block_actions(
        action_id=action_id, value=value, team_id=team, user_id=user, channel_id=channel, trigger_id=trigger
    )
    return bot.post_signed(sp.interactive_body(payload), "application/x-www-form-urlencoded")


def submit(
    bot: Running, team: str, user: str, callback_id: str, values: dict[str, Any], view_id: str | None = None
) -> httpx.Response:
    known = bot.slack.state.views_by_id.get(view_id or "")
    view = sp.view_object(
        view_id=view_id,
        team_id=team,
        callback_id=callback_id,
        state_values=values,
        hash=known[1].get("hash") if known else None,
        private_metadata=known[1].get("private_metadata", "") if known else "",
    )
    return bot.interact(sp.view_submission(view=view, team_id=team, user_id=user))


def key_values(api_key: str, secret: str) -> dict[str, Any]:
    return {"api_key": {"api_key": {"value": api_key}}, "api_secret": {"api_secret": {"value": secret}}}


def log_in_at(bot: Running, graph: Any, team: str, user: str, fb_user: str) -> None:
    """`/fblink login` in ``team``, fblink's confirm page, the Facebook dialog (faked), the callback."""
    graph.add_user(fb_user, f"Person {fb_user}", pages=PAGES)
    (url,) = button_urls(command(bot, team, user, "login").json())
    confirm_login(bot, url)
    r = bot.http.get(
        bot.url + "/facebook/callback", params={"code": graph.issue_code(fb_user), "state": query(url)["state"]}
    )
    assert r.status_code == 200, r.text


def answer_to(bot: Running, user: str, contains: str) -> str:
    """The text of the answer a slow command (or a DM) gave this person."""
    hit = bot.slack.wait_for(
        lambda: next(
            (
                m
                for m in [*bot.slack.responses, *bot.slack.messages]
                if contains in json.dumps(m) and user in json.dumps(m)
            ),
            None,
        )
    )
    return json.dumps(hit)


@pytest.fixture
def two(start_app, slack, vonage) -> Running:  # type: ignore[no-untyped-def]
    """fblink in distributed mode, installed in A and B by their installers, with each one's tokens."""
    slack.oauth.client_id, slack.oauth.client_secret = (
        DISTRIBUTED["slack_client_id"],
        DISTRIBUTED["slack_client_secret"],
    )
    bot: Running = start_app(**DISTRIBUTED, vonage_api_key=None, vonage_api_secret=None, fblink_admins="")
    for team in (A, B):
        slack.oauth.install_as(Installer(team_id=team, team_name=f"{team} Co", user_id=INSTALLER[team]))
        assert walk_install(bot)[0].status_code == 200
    vonage.add_key(A_KEY, A_SECRET)
    vonage.add_key(B_KEY, B_SECRET)
    return bot


def tokens(slack: Any) -> dict[str, str]:
    return {t.installer.team_id: "Bearer " + t.value for t in slack.oauth.live_tokens()}


# -- settings -----------------------------------------------------------------------------------
def test_distributed_mode_needs_no_vonage_key_and_check_config_says_what_it_ignores(env, capsys) -> None:  # type: ignore[no-untyped-def]
    env.delenv("SLACK_BOT_TOKEN")
    env.setenv("SLACK_CLIENT_ID", "1111.2222")
    env.setenv("SLACK_CLIENT_SECRET", "s3cret")
    env.delenv("VONAGE_API_SECRET")
    s = load_settings()
    assert s.distributed and s.vonage_api_secret is None and s.ignored == ["VONAGE_API_KEY"]
    assert cmd_check_config(argparse.Namespace()) == 0
    out = capsys.readouterr().out
    assert "each workspace adds its own Vonage keys" in out and "VONAGE_API_KEY is ignored in distributed mode" in out
    env.delenv("VONAGE_API_KEY")
    assert load_settings().ignored == []


def test_single_workspace_mode_still_requires_its_vonage_key(env) -> None:  # type: ignore[no-untyped-def]
    env.delenv("VONAGE_API_KEY")
    env.delenv("VONAGE_API_SECRET")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert info.value.problems == [
        "VONAGE_API_KEY: missing; set it to the default Vonage API key",
        "VONAGE_API_SECRET: missing; set it to the default Vonage API secret",
    ]


def test_a_global_reminder_channel_is_refused_in_distributed_mode(env) -> None:  # type: ignore[no-untyped-def]
    env.delenv("SLACK_BOT_TOKEN")
    env.setenv("SLACK_CLIENT_ID", "1111.2222")
    env.setenv("SLACK_CLIENT_SECRET", "s3cret")
    env.setenv("FBLINK_REMINDER_CHANNEL", "C0OPS")
    with pytest.raises(SettingsError, match=r"^FBLINK_REMINDER_CHANNEL: unset it in distributed mode"):
        load_settings()


# -- keys ---------------------------------------------------------------------------------------
def test_the_installer_adds_the_first_key_from_the_welcome_dm_and_links_with_it(two, slack, vonage, graph) -> None:  # type: ignore[no-untyped-def]
    bot, token = two, tokens(slack)
    welcome = slack.wait_for(
        lambda: [r for r in slack.calls(path="/api/chat.postMessage") if r.params.get("channel") == INSTALLER[A]]
    )
    assert [r.headers["authorization"] for r in welcome] == [token[A]]  # A's installer, with A's token
    dm = slack.wait_message("Add a Vonage key")
    assert dm["channel"] in (INSTALLER[A], "D" + INSTALLER[A][1:])
    assert bot.store.select("SELECT team_id, user_id, added_by FROM team_admins ORDER BY team_id") == [
        {"team_id": A, "user_id": INSTALLER[A], "added_by": "install"},
        {"team_id": B, "user_id": INSTALLER[B], "added_by": "install"},
    ]

    assert click(bot, A, INSTALLER[A], "keys_add_open", "add", "D0AINS").status_code == 200
    opened = slack.wait_for(lambda: slack.calls(path="/api/views.open"))
    assert [r.headers["authorization"] for r in opened] == [token[A]]
    view = slack.modal_of(INSTALLER[A])
    assert view is not None and view["callback_id"] == "keys_add_modal"
    wrong = submit(bot, A, INSTALLER[A], "keys_add_modal", key_values(A_KEY, "nope"), view["id"])
    assert "did not accept" in wrong.json()["errors"]["api_secret"]
    ok = submit(bot, A, INSTALLER[A], "keys_add_modal", key_values(A_KEY, A_SECRET), view["id"])
    assert ok.status_code == 200 and "errors" not in ok.text
    slack.wait_message(f"Added Vonage API key `{A_KEY}`")
    assert bot.store.key_secret(A, A_KEY) == A_SECRET and bot.store.key_secret(B, A_KEY) is None

    log_in_at(bot, graph, A, "U0ALICE", "FBA")
    assert "Linking" in said(command(bot, A, "U0ALICE", "link Acme Coffee"))
    assert "Linked *Acme Coffee*" in answer_to(bot, "U0ALICE", "Linked")
    assert "101" in vonage.accounts[A_KEY] and "101" not in vonage.accounts[B_KEY]
    assert bot.store.get_link(A, "101").api_key == A_KEY
    keys = said(command(bot, A, INSTALLER[A], "keys list"))
    assert f"`{A_KEY}` (default)" in keys and "environment" not in keys


def test_a_workspace_without_a_key_is_told_how_to_add_one_and_never_gets_anothers(two, slack, vonage, graph) -> None:  # type: ignore[no-untyped-def]
    bot = two
    bot.store.add_key(A, A_KEY, A_SECRET, by=INSTALLER[A], now=1)
    vonage.reset_log()
    log_in_at(bot, graph, B, "U0BOB", "FBB")
    command(bot, B, "U0BOB", "link Acme Coffee")
    assert NO_KEY in answer_to(bot, "U0BOB", NO_KEY)
    assert said(command(bot, B, "U0BOB", "link")) == ""  # the form would open after the ack: it says why not
    slack.wait_for(lambda: len([r for r in slack.responses if NO_KEY in json.dumps(r)]) == 2)
    assert slack.calls(path="/api/views.open") == []
    command(bot, B, INSTALLER[B], "sync")
    assert "keys add" in answer_to(bot, INSTALLER[B], NO_KEY)
    assert "None yet" in said(command(bot, B, INSTALLER[B], "keys list"))
    assert vonage.calls() == []  # nothing reached Vonage, with A's key or any
    assert bot.store.select("SELECT * FROM links") == []


def test_b_cannot_use_or_remove_as_key_by_naming_it(two, slack, vonage, graph) -> None:  # type: ignore[no-untyped-def]
    bot = two
    bot.store.add_key(A, A_KEY, A_SECRET, by=INSTALLER[A], now=1)
    bot.store.add_key(B, B_KEY, B_SECRET, by=INSTALLER[B], now=2)
    log_in_at(bot, graph, B, INSTALLER[B], "FBB")
    command(bot, B, INSTALLER[B], f"link Acme Coffee {A_KEY}")  # B's admin names A's key
    refused = answer_to(bot, INSTALLER[B], "Unknown Vonage API key")
    assert B_KEY in refused and A_KEY in refused  # B's own keys are listed, A's is not among them
    link_modal = {
        "page": {"page": {"selected_option": {"value": "101"}}},
        "key": {"link_modal_key": {"selected_option": {"value": A_KEY}}},
    }
    crafted = submit(bot, B, INSTALLER[B], "link_modal", link_modal)
    assert crafted.json()["errors"]["key"] == "Choose a configured Vonage API key."
    gone = said(command(bot, B, INSTALLER[B], f"keys remove {A_KEY}"))
    assert f"No added key `{A_KEY}`" in gone
    assert bot.store.key_secret(A, A_KEY) == A_SECRET  # A's key untouched
    assert A_KEY not in said(command(bot, B, INSTALLER[B], "keys list"))
    assert A_KEY not in vonage.accounts or vonage.accounts[A_KEY] == {}
    assert bot.store.select("SELECT * FROM links") == []
    # A row of B's that names A's key (however it got there) is never served with A's secret
    vonage.add_account(A_KEY, "101", "a-page-token", name="Acme Coffee")
    bot.store.upsert_link(
        B, "101", now=1, page_name="Acme Coffee", api_key=A_KEY, linked_by=INSTALLER[B], status="active"
    )
    vonage.reset_log()
    command(bot, B, INSTALLER[B], "unlink Acme Coffee")
    assert f"`{A_KEY}` is no longer configured" in answer_to(bot, INSTALLER[B], "no longer configured")
    assert vonage.calls() == [] and "101" in vonage.accounts[A_KEY]


# -- admins -------------------------------------------------------------------------------------
def test_admins_are_per_workspace(two, slack) -> None:  # type: ignore[no-untyped-def]
    bot = two
    mine = said(command(bot, A, INSTALLER[A], "admins"))
    assert f"<@{INSTALLER[A]}> installed fblink" in mine and INSTALLER[B] not in mine
    # A's installer, sending from B: no admin there
    refused = said(command(bot, B, INSTALLER[A], "admins add <@U0EVE|eve>"))
    assert "Only fblink admins" in refused and f"<@{INSTALLER[B]}>" in refused and INSTALLER[A] not in refused
    assert "Only fblink admins" in said(command(bot, B, INSTALLER[A], "keys list"))

    assert "is now an fblink admin" in said(command(bot, A, INSTALLER[A], "admins add <@U0CAROL|carol>"))
    assert "keys" in said(command(bot, A, "U0CAROL", "keys list")).lower()
    assert "Only fblink admins" not in said(command(bot, A, "U0CAROL", "keys list"))
    assert "Only fblink admins" in said(command(bot, B, "U0CAROL", "keys list"))  # an admin in A only
    theirs = said(command(bot, B, INSTALLER[B], "admins"))
    assert "U0CAROL" not in theirs and INSTALLER[A] not in theirs and f"<@{INSTALLER[B]}>" in theirs
    audit = bot.store.select("SELECT team_id, action, detail FROM audit WHERE action LIKE 'admin_%'")
    assert audit == [{"team_id": A, "action": "admin_add", "detail": "user U0CAROL"}]

    assert "no longer an added fblink admin" in said(command(bot, A, INSTALLER[A], "admins remove <@U0CAROL>"))
    assert "Only fblink admins" in said(command(bot, A, "U0CAROL", "keys list"))


def test_slack_admins_and_owners_are_fblink_admins_of_their_own_workspace_only(two, slack) -> None:  # type: ignore[no-untyped-def]
    bot, token = two, tokens(slack)
    slack.roles.update(
        {"U0BOSS": Person(B, "admin"), "U0OWNER": Person(B, "primary_owner"), "U0GUEST": Person(B, "guest")}
    )
    before = len(slack.calls(path="/api/users.info"))
    for _ in range(2):
        assert "Only fblink admins" not in said(command(bot, B, "U0BOSS", "keys list"))
    asked = slack.calls(path="/api/users.info")[before:]
    assert [(r.params["user"], r.headers["authorization"]) for r in asked] == [("U0BOSS", token[B])]  # cached
    assert "Only fblink admins" not in said(command(bot, B, "U0OWNER", "keys list"))
    assert "Only fblink admins" in said(command(bot, B, "U0GUEST", "keys list"))
    # B's Slack admin, in a payload crafted to come from A: A's token does not know them
    refused = said(command(bot, A, "U0BOSS", "admins"))
    assert "Only fblink admins" in refused and f"<@{INSTALLER[A]}>" in refused
    last = slack.calls(path="/api/users.info")[-1]
    assert last.params["user"] == "U0BOSS" and last.headers["authorization"] == token[A]
    listed = said(command(bot, B, "U0BOSS", "admins"))
    assert "Slack admins and owners of this workspace are fblink admins too" in listed


def test_the_add_key_button_and_modal_refuse_a_non_admin(two, slack) -> None:  # type: ignore[no-untyped-def]
    bot = two
    slack.wait_message("Add a Vonage key")
    click(bot, A, "U0MALLORY", "keys_add_open", "add", "D0MAL")
    slack.wait_message("Only fblink admins")
    assert slack.calls(path="/api/views.open") == []
    crafted = submit(bot, A, "U0MALLORY", "keys_add_modal", key_values(A_KEY, A_SECRET))
    assert "Only fblink admins" in crafted.json()["errors"]["api_key"]
    assert bot.store.select("SELECT * FROM vonage_keys") == []


# -- the default reminder channel ---------------------------------------------------------------
def test_the_default_reminder_channel_is_each_workspaces_own(two, slack) -> None:  # type: ignore[no-untyped-def]
    bot = two
    set_a = said(command(bot, A, INSTALLER[A], "remind <#C0AOPS|ops>"))
    assert "now go to <#C0AOPS>" in set_a
    assert "Workspace default: <#C0AOPS>" in said(command(bot, A, "U0ANY", "remind"))
    assert "Workspace default: none" in said(command(bot, B, "U0ANY", "remind"))
    refused = said(command(bot, B, INSTALLER[A], "remind <#C0AOPS|ops>"))  # A's admin, from B
    assert "Only fblink admins" in refused
    assert bot.store.select("SELECT team_id, reminder_channel FROM team_settings") == [
        {"team_id": A, "reminder_channel": "C0AOPS"}
    ]


# -- one workspace, as before -------------------------------------------------------------------
def test_single_workspace_admins_are_fblink_admins_as_set_where_it_runs(bot: Running) -> None:
    assert "Only fblink admins" in bot.command("admins").text
    listed = text_of(bot.command("admins", user="UADMIN").json())
    assert "(set where fblink runs): <@UADMIN>" in listed
    add = text_of(bot.command("admins add <@U0NEW|new>", user="UADMIN").json())
    assert "set where fblink runs" in add
    assert bot.store.select("SELECT * FROM team_admins") == []
    assert bot.slack.calls(path="/api/users.info") == []  # FBLINK_ADMINS alone decides
