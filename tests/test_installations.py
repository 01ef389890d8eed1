"""Installations and install states in fblink's own store, on both engines.

slack_sdk's ``AsyncInstallationStore`` / ``AsyncOAuthStateStore`` contract on SQLite and a real
PostgreSQL: workspace, Grid-workspace and org-wide installs saved and found the way Bolt
asks for them, deletes, and tokens that never reach the database in clear text.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import FixedClock
from bot.crypto import Vault
from bot.fakes.slack_oauth import Installer, SlackOAuth
from bot.installations import InstallationStore, StateStore
from bot.rotation import rotate_keys
from tests.store_sync import SyncStore, sync_store
from tests.test_slack_oauth_fake import with_oauth
from tests.test_store_contract import where  # noqa: F401  # the two-engine fixture

KEY = Fernet.generate_key().decode()
T0 = 1_790_000_000


@pytest.fixture
def store(where: str) -> Iterator[SyncStore]:
    s = sync_store(where, Vault(KEY), clock=FixedClock(T0))
    yield s
    s.close()


def workspace(
    team: str = "T0AAA", enterprise: str | None = None, token: str = "xoxb-aaa", **kw: object
) -> Installation:
    return Installation(
        app_id="A0FBLINK",
        enterprise_id=enterprise,
        enterprise_name="Acme Corp" if enterprise else None,
        team_id=team,
        team_name=f"Team {team}",
        bot_token=token,
        bot_id="B" + team,
        bot_user_id="UB" + team,
        bot_scopes="commands,chat:write",
        user_id="U0ADA",
        token_type="bot",
        installed_at=float(T0),
        **kw,  # type: ignore[arg-type]
    )


def org(enterprise: str = "E0ORG", token: str = "xoxb-org") -> Installation:
    return Installation(
        app_id="A0FBLINK",
        enterprise_id=enterprise,
        enterprise_name="Acme Corp",
        team_id=None,
        bot_token=token,
        bot_id="BORG",
        bot_user_id="UBORG",
        bot_scopes="commands",
        user_id="W0ADM",
        is_enterprise_install=True,
        token_type="bot",
        installed_at=float(T0),
    )


def installs(store: SyncStore) -> InstallationStore:
    return InstallationStore(store.unwrapped)


def test_a_workspace_install_is_saved_and_found_as_bolt_asks(store: SyncStore) -> None:
    s = installs(store)
    store.run(lambda _: s.async_save(workspace(user_token="xoxp-ada", user_scopes="users:read")))
    got = store.run(lambda _: s.async_find_installation(enterprise_id=None, team_id="T0AAA"))
    assert got is not None and got.bot_token == "xoxb-aaa" and got.user_token == "xoxp-ada"
    assert (got.team_name, got.bot_id, got.bot_user_id, got.bot_scopes) == (
        "Team T0AAA",
        "BT0AAA",
        "UBT0AAA",
        ["commands", "chat:write"],
    )
    assert got.user_scopes == ["users:read"] and got.installed_at == T0 and got.is_enterprise_install is False
    bot = store.run(lambda _: s.async_find_bot(enterprise_id=None, team_id="T0AAA"))
    assert bot is not None and bot.bot_token == "xoxb-aaa"
    # with a user id: only the installer's installation carries a user token
    assert store.run(lambda _: s.async_find_installation(enterprise_id=None, team_id="T0AAA", user_id="U0ADA"))
    assert store.run(lambda _: s.async_find_installation(enterprise_id=None, team_id="T0AAA", user_id="U0BOB")) is None
    assert store.run(lambda _: s.async_find_bot(enterprise_id=None, team_id="T0ZZZ")) is None


def test_a_reinstall_replaces_the_row_at_its_key(store: SyncStore) -> None:
    s = installs(store)
    store.run(lambda _: s.async_save(workspace(token="xoxb-old")))
    first = store.one("SELECT id FROM slack_installations")
    store.run(lambda _: s.async_save(workspace(token="xoxb-new")))
    rows = store.select("SELECT id FROM slack_installations")
    assert rows == [first]  # one row per key, same id
    bot = store.run(lambda _: s.async_find_bot(enterprise_id=None, team_id="T0AAA"))
    assert bot is not None and bot.bot_token == "xoxb-new"


def test_the_unique_index_refuses_a_second_row_for_one_key(store: SyncStore) -> None:
    installs_ = installs(store)
    store.run(lambda _: installs_.async_save(org()))
    insert = "INSERT INTO slack_installations (enterprise_id, team_id, installed_at, updated_at) VALUES (?, ?, ?, ?)"
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        store.execute(insert, ["E0ORG", None, T0, T0])  # NULL team: still the same org key
    store.execute(insert, ["E0ORG", "T0BBB", T0, T0])  # a workspace of that org is another key


def test_an_org_install_serves_every_workspace_of_its_org(store: SyncStore) -> None:
    s = installs(store)
    store.run(lambda _: s.async_save(org()))
    row = store.one("SELECT team_id, enterprise_id, is_enterprise_install FROM slack_installations")
    assert row == {"team_id": None, "enterprise_id": "E0ORG", "is_enterprise_install": 1}
    # Bolt asks with the workspace the request came from, flagged as an org install...
    for flag in (True, False):  # ...or without the flag (an event that does not carry it)
        bot = store.run(
            lambda _, f=flag: s.async_find_bot(enterprise_id="E0ORG", team_id="T0BBB", is_enterprise_install=f)
        )
        assert bot is not None and bot.bot_token == "xoxb-org" and bot.is_enterprise_install is True
        assert bot.team_id is None
    got = store.run(
        lambda _: s.async_find_installation(enterprise_id="E0ORG", team_id=None, is_enterprise_install=True)
    )
    assert got is not None and got.enterprise_name == "Acme Corp" and got.team_id is None
    # another org, or a workspace outside any org, finds nothing
    assert store.run(lambda _: s.async_find_bot(enterprise_id="E0OTHER", team_id="T0BBB")) is None
    assert store.run(lambda _: s.async_find_bot(enterprise_id=None, team_id="T0BBB")) is None


def test_an_org_install_given_a_team_id_is_still_keyed_by_its_org(store: SyncStore) -> None:
    """python-slack-sdk#1639: a team id saved on an org install breaks the lookup; it is not saved."""
    s = installs(store)
    odd = org()
    odd.team_id = "T0BBB"
    store.run(lambda _: s.async_save(odd))
    assert store.one("SELECT team_id FROM slack_installations") == {"team_id": None}
    assert store.run(lambda _: s.async_find_bot(enterprise_id="E0ORG", team_id="T0CCC", is_enterprise_install=True))


def test_a_grid_workspace_install_and_its_org_install_are_two_rows(store: SyncStore) -> None:
    s = installs(store)
    store.run(lambda _: s.async_save(org()))
    store.run(lambda _: s.async_save(workspace("T0BBB", "E0ORG", token="xoxb-bbb")))
    own = store.run(lambda _: s.async_find_bot(enterprise_id="E0ORG", team_id="T0BBB"))
    other = store.run(lambda _: s.async_find_bot(enterprise_id="E0ORG", team_id="T0CCC"))
    assert own is not None and own.bot_token == "xoxb-bbb"
    assert other is not None and other.bot_token == "xoxb-org"
    assert len(store.select("SELECT id FROM slack_installations")) == 2


def test_deletes(store: SyncStore) -> None:
    s = installs(store)
    store.run(lambda _: s.async_save(workspace(user_token="xoxp-ada")))
    store.run(lambda _: s.async_save(workspace("T0BBB", token="xoxb-bbb")))
    store.run(lambda _: s.async_save(org()))
    store.run(lambda _: s.async_delete_installation(enterprise_id=None, team_id="T0AAA", user_id="U0ADA"))
    got = store.run(lambda _: s.async_find_installation(enterprise_id=None, team_id="T0AAA"))
    assert got is not None and got.user_token is None and got.bot_token == "xoxb-aaa"  # only the user token went
    store.run(lambda _: s.async_delete_bot(enterprise_id=None, team_id="T0AAA"))
    assert store.run(lambda _: s.async_find_bot(enterprise_id=None, team_id="T0AAA")) is None
    store.run(lambda _: s.async_delete_all(enterprise_id=None, team_id="T0AAA"))
    store.run(lambda _: s.async_delete_all(enterprise_id="E0ORG", team_id=None))
    left = store.select("SELECT enterprise_id, team_id FROM slack_installations")
    assert left == [{"enterprise_id": None, "team_id": "T0BBB"}]  # the other workspace is untouched


def test_tokens_never_reach_the_database_in_clear_and_rotate_keys_covers_them(store: SyncStore, where: str) -> None:
    s = installs(store)
    secrets = {
        "bot_token": "xoxe.xoxb-secret-bot",
        "bot_refresh_token": "xoxe-1-secret-refresh",
        "user_token": "xoxp-secret-user",
        "user_refresh_token": "xoxe-1-secret-user-refresh",
        "incoming_webhook_url": "https://hooks.slack.com/services/T/B/secret",
    }
    inst = workspace(
        token=secrets["bot_token"],
        bot_refresh_token=secrets["bot_refresh_token"],
        bot_token_expires_at=T0 + 43200,
        user_token=secrets["user_token"],
        user_refresh_token=secrets["user_refresh_token"],
        incoming_webhook_url=secrets["incoming_webhook_url"],
    )
    store.run(lambda _: s.async_save(inst))
    raw = json.dumps(store.select("SELECT * FROM slack_installations"), default=str)
    for value in secrets.values():
        assert value not in raw
    columns = {(c.table, c.column) for c in store.run(lambda st: st.engine.encrypted_columns())}
    assert {("slack_installations", f"{name}_enc") for name in secrets} <= columns
    # a new key first: every install secret is rewritten and still reads back
    new_key = Fernet.generate_key().decode()
    rotated = sync_store(where, Vault(f"{new_key},{KEY}"), clock=FixedClock(T0))
    try:
        reports = rotated.run(lambda st: rotate_keys(st.engine, st.vault))
        by_name = {r.name: r for r in reports}
        assert by_name["slack_installations.bot_token_enc"].rewritten == 1
        only_new = sync_store(where, Vault(new_key), clock=FixedClock(T0))
        try:
            got = only_new.run(
                lambda st: InstallationStore(st).async_find_installation(enterprise_id=None, team_id="T0AAA")
            )
            assert got is not None and got.bot_refresh_token == secrets["bot_refresh_token"]
            assert got.incoming_webhook_url == secrets["incoming_webhook_url"]
        finally:
            only_new.close()
    finally:
        rotated.close()


def test_install_states_are_single_use_hashed_and_expire(store: SyncStore) -> None:
    states = StateStore(store.unwrapped, expiration_seconds=600)
    state = store.run(lambda _: states.async_issue())
    assert state not in json.dumps(store.select("SELECT * FROM slack_install_states"))
    assert store.run(lambda _: states.async_consume(state)) is True
    assert store.run(lambda _: states.async_consume(state)) is False  # used
    assert store.run(lambda _: states.async_consume("made-up")) is False
    late = store.run(lambda _: states.async_issue())
    store.clock.at = T0 + 601
    assert store.run(lambda _: states.async_consume(late)) is False  # expired


def test_an_install_from_the_fake_slack_round_trips(store: SyncStore, tmp_path: Path) -> None:
    """Bolt's own flow against the fake Slack builds the Installation; it is stored and read back whole."""
    oauth = SlackOAuth(rotation=True)
    fake = with_oauth(oauth)
    try:
        settings = AsyncOAuthSettings(
            client_id=oauth.client_id,
            client_secret=oauth.client_secret,
            installation_store=installs(store),
            state_store=StateStore(store.unwrapped),
        )
        code = oauth.grant(Installer(team_id="T0BBB", enterprise_id="E0ORG", enterprise_name="Acme Corp"))

        async def run() -> Installation | None:
            return await AsyncOAuthFlow(
                client=AsyncWebClient(base_url=fake.url + "/api/"), settings=settings
            ).run_installation(code)

        built = asyncio.run(run())
        assert built is not None and built.bot_refresh_token
        s = installs(store)
        store.run(lambda _: s.async_save(built))
        got = store.run(lambda _: s.async_find_installation(enterprise_id="E0ORG", team_id="T0BBB"))
        assert got is not None
        for attr in ("bot_token", "bot_refresh_token", "bot_token_expires_at", "bot_id", "bot_user_id", "team_name"):
            assert getattr(got, attr) == getattr(built, attr), attr
    finally:
        fake.stop()
