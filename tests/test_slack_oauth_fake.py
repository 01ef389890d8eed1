"""The fake Slack's OAuth speaks what slack_sdk and Bolt parse: installs, org installs, rotation.

Each test drives the fake with slack_sdk's own client (``AsyncWebClient.oauth_v2_access``,
Bolt's ``AsyncOAuthFlow.run_installation``, slack_sdk's ``AsyncTokenRotator``) and checks the
``Installation`` they build, so a test of fblink against this fake sees what real Slack sends.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import FileInstallationStore, Installation
from slack_sdk.oauth.state_store import FileOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from bot.fakes.slack import FakeSlack
from bot.fakes.slack_oauth import CODE_TTL, Installer, SlackOAuth

CLIENT_ID, CLIENT_SECRET = "1111.2222", "fake-client-secret"
REDIRECT = "https://fblink.example/slack/oauth_redirect"
WORKSPACE = Installer(team_id="T0AAA", team_name="Acme", user_id="U0ADA")
GRID_WORKSPACE = Installer(team_id="T0BBB", team_name="Acme EU", enterprise_id="E0ORG", enterprise_name="Acme Corp")
ORG = Installer(
    team_id=None, team_name=None, enterprise_id="E0ORG", enterprise_name="Acme Corp", org_install=True, user_id="W0ADM"
)


class Clock:
    def __init__(self) -> None:
        self.t = 1_790_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


def with_oauth(oauth: SlackOAuth) -> FakeSlack:
    """A started fake Slack whose OAuth side is ``oauth`` (client id, rotation, clock)."""
    fake = FakeSlack()
    fake.oauth = oauth
    fake.start()
    return fake


def make(rotation: bool, clock: Clock) -> FakeSlack:
    oauth = SlackOAuth(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, rotation=rotation, clock=clock)
    return with_oauth(oauth)


@pytest.fixture
def slack(clock: Clock) -> Iterator[FakeSlack]:
    fake = make(False, clock)
    yield fake
    fake.stop()


@pytest.fixture
def rotating(clock: Clock) -> Iterator[FakeSlack]:
    fake = make(True, clock)
    yield fake
    fake.stop()


def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(base_url=fake.url + "/api/")


def flow(fake: FakeSlack, tmp: Path) -> AsyncOAuthFlow:
    """Bolt's own OAuth flow (its file stores only because run_installation never touches them)."""
    settings = AsyncOAuthSettings(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scopes=["commands"],
        redirect_uri=REDIRECT,
        installation_store=FileInstallationStore(base_dir=str(tmp / "i")),
        state_store=FileOAuthStateStore(expiration_seconds=600, base_dir=str(tmp / "s")),
    )
    return AsyncOAuthFlow(client=client(fake), settings=settings)


def install(fake: FakeSlack, tmp: Path, who: Installer) -> Installation:
    code = fake.oauth.grant(who, redirect_uri=REDIRECT)
    got = asyncio.run(flow(fake, tmp).run_installation(code))
    assert got is not None
    return got


def test_a_workspace_install_parses_into_an_installation_whose_token_works(slack: FakeSlack, tmp_path: Path) -> None:
    got = install(slack, tmp_path, WORKSPACE)
    assert (got.team_id, got.team_name, got.enterprise_id, got.is_enterprise_install) == ("T0AAA", "Acme", None, False)
    assert got.user_id == "U0ADA" and got.user_token is None  # a bot-only install
    assert got.bot_token and got.bot_token.startswith("xoxb-") and got.bot_user_id and got.bot_id
    assert got.bot_scopes == ["commands", "chat:write", "users:read"] and got.token_type == "bot"
    assert got.bot_refresh_token is None and got.bot_token_expires_at is None  # no rotation
    test = asyncio.run(client(slack).auth_test(token=got.bot_token))
    assert (test["team_id"], test["user_id"], test["bot_id"]) == ("T0AAA", got.bot_user_id, got.bot_id)
    assert test["is_enterprise_install"] is False
    # and the token is accepted by every other method of the fake
    post = asyncio.run(client(slack).chat_postMessage(token=got.bot_token, channel="C1", text="hi"))
    assert post["ok"] and slack.messages[-1]["text"] == "hi"


def test_a_workspace_of_a_grid_org_names_its_enterprise(slack: FakeSlack, tmp_path: Path) -> None:
    got = install(slack, tmp_path, GRID_WORKSPACE)
    assert (got.enterprise_id, got.enterprise_name, got.team_id) == ("E0ORG", "Acme Corp", "T0BBB")
    assert got.is_enterprise_install is False
    test = asyncio.run(client(slack).auth_test(token=got.bot_token))
    assert (test["team_id"], test["enterprise_id"]) == ("T0BBB", "E0ORG")


def test_an_org_wide_install_has_no_team(slack: FakeSlack, tmp_path: Path) -> None:
    code = slack.oauth.grant(ORG)
    raw = asyncio.run(client(slack).oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code))
    assert raw["team"] is None and raw["enterprise"] == {"id": "E0ORG", "name": "Acme Corp"}
    assert raw["is_enterprise_install"] is True and raw["authed_user"] == {"id": "W0ADM"}
    got = install(slack, tmp_path, ORG)
    assert got.team_id is None and got.enterprise_id == "E0ORG" and got.is_enterprise_install is True
    assert got.enterprise_url and "enterprise" in got.enterprise_url  # Bolt reads it from auth.test


def test_a_user_scope_install_carries_the_installers_token(slack: FakeSlack, tmp_path: Path) -> None:
    got = install(slack, tmp_path, Installer(team_id="T0CCC", user_id="U0USR", user_scope="users:read"))
    assert got.user_token and got.user_token.startswith("xoxp-") and got.user_scopes == ["users:read"]
    test = asyncio.run(client(slack).auth_test(token=got.user_token))
    assert test["user_id"] == "U0USR" and "bot_id" not in test


def form(fake: FakeSlack, auth: tuple[str, str] | None = None, **data: str) -> dict[str, Any]:
    r = httpx.post(f"{fake.url}/api/oauth.v2.access", data=data, auth=auth, timeout=5)
    assert r.status_code == 200
    out: dict[str, Any] = r.json()
    return out


def test_codes_are_single_use_expire_and_need_the_right_client(slack: FakeSlack, clock: Clock) -> None:
    creds = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    code = slack.oauth.grant(WORKSPACE, redirect_uri=REDIRECT)
    assert form(slack, code=code, client_id=CLIENT_ID, client_secret="wrong")["error"] == "bad_client_secret"
    assert form(slack, code=code, client_id="9.9", client_secret=CLIENT_SECRET)["error"] == "invalid_client_id"
    assert form(slack, code=code, redirect_uri="https://evil.example/", **creds)["error"] == "bad_redirect_uri"
    assert form(slack, code=code, redirect_uri=REDIRECT, **creds)["ok"] is True  # form-encoded credentials
    assert form(slack, code=code, redirect_uri=REDIRECT, **creds)["error"] == "invalid_code"  # used
    late = slack.oauth.grant(WORKSPACE)
    clock.t += CODE_TTL
    assert form(slack, code=late, **creds)["error"] == "invalid_code"  # expired
    basic = slack.oauth.grant(WORKSPACE)
    assert form(slack, (CLIENT_ID, CLIENT_SECRET), code=basic)["ok"] is True  # HTTP Basic
    assert form(slack, code="nope", grant_type="client_credentials", **creds)["error"] == "invalid_grant_type"
    assert len(slack.oauth.exchanges) == 8
    assert all("client_secret" not in e for e in slack.oauth.exchanges)


def test_rotation_issues_expiring_tokens_and_single_use_refresh_tokens(rotating: FakeSlack, clock: Clock) -> None:
    async def go() -> None:
        c = client(rotating)
        first = await c.oauth_v2_access(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=rotating.oauth.grant(WORKSPACE)
        )
        assert first["expires_in"] == 43200 and first["refresh_token"].startswith("xoxe-1-")
        assert first["access_token"].startswith("xoxe.xoxb-") and first["token_type"] == "bot"
        installation = Installation(
            team_id="T0AAA",
            user_id="U0ADA",
            bot_token=first["access_token"],
            bot_user_id=first["bot_user_id"],
            bot_id="BBT0AAA",
            bot_refresh_token=first["refresh_token"],
            bot_token_expires_in=first["expires_in"],
            installed_at=clock.t,
        )
        installation.bot_token_expires_at = int(clock.t) + 60  # due within slack_sdk's window
        rotator = AsyncTokenRotator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, client=c)
        fresh = await rotator.perform_token_rotation(installation=installation, minutes_before_expiration=120)
        assert fresh is not None and fresh.bot_token != first["access_token"]
        assert fresh.bot_refresh_token and fresh.bot_refresh_token != first["refresh_token"]
        assert (await c.auth_test(token=fresh.bot_token))["team_id"] == "T0AAA"
        # the spent refresh token fails as Slack says, and kills nothing else
        with pytest.raises(SlackApiError) as spent:
            await c.oauth_v2_access(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                grant_type="refresh_token",
                refresh_token=first["refresh_token"],
            )
        assert spent.value.response["error"] == "invalid_refresh_token"
        # an access token ends after its 12 hours
        clock.t += 43200
        with pytest.raises(SlackApiError) as expired:
            await c.auth_test(token=fresh.bot_token)
        assert expired.value.response["error"] == "token_expired"

    asyncio.run(go())
    assert len(rotating.oauth.refresh_calls()) == 2


def test_revoked_and_unknown_tokens_fail_auth_test(slack: FakeSlack, tmp_path: Path) -> None:
    a = install(slack, tmp_path, WORKSPACE)
    b = install(slack, tmp_path, GRID_WORKSPACE)
    assert slack.oauth.revoke(team_id="T0AAA") == 1  # an uninstall of one workspace

    async def error_of(token: str) -> str:
        try:
            await client(slack).auth_test(token=token)
        except SlackApiError as e:
            return str(e.response["error"])
        return "ok"

    assert asyncio.run(error_of(str(a.bot_token))) == "token_revoked"
    assert asyncio.run(error_of(str(b.bot_token))) == "ok"
    assert asyncio.run(error_of("xoxb-made-up")) == "invalid_auth"
    assert asyncio.run(error_of(slack.bot_token)) == "ok"  # the single-workspace token still works


def test_the_authorize_page_sends_the_browser_back_with_a_code_and_the_state(slack: FakeSlack) -> None:
    slack.oauth.install_as(GRID_WORKSPACE)
    r = httpx.get(
        f"{slack.url}/oauth/v2/authorize",
        params={"client_id": CLIENT_ID, "scope": "commands", "redirect_uri": REDIRECT, "state": "s-1"},
    )
    assert r.status_code == 302
    where = urlsplit(r.headers["location"])
    assert f"{where.scheme}://{where.netloc}{where.path}" == REDIRECT
    q = {k: v[0] for k, v in parse_qs(where.query).items()}
    assert q["state"] == "s-1"
    got = form(slack, code=q["code"], redirect_uri=REDIRECT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert got["team"] == {"id": "T0BBB", "name": "Acme EU"} and got["enterprise"]["id"] == "E0ORG"
    assert httpx.get(f"{slack.url}/oauth/v2/authorize", params={"client_id": "other"}).status_code == 400


def test_basic_auth_header_is_what_slack_sdk_sends(slack: FakeSlack) -> None:
    code = slack.oauth.grant(WORKSPACE)
    asyncio.run(client(slack).oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code))
    sent = slack.calls("POST", "/api/oauth.v2.access")[-1]
    expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert sent.headers["authorization"] == expected
