"""GraphClient against a real FakeGraph server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bot.fakes.graph import LONG_LIVED, FakeGraph
from bot.fakes.graph_data import HOSTILE_NAMES
from bot.graph import REQUIRED_SCOPES, GraphAppError, GraphClient, GraphError, LongLivedToken, Page
from bot.http import RetryPolicy, UpstreamUnavailable

T = TypeVar("T")

APP_ID = "123"
APP_SECRET = "s3cr3t"
VERSION = "v25.0"
REDIRECT = "https://fblink.example/fb/callback"
FAST = RetryPolicy(attempts=3, total_timeout=10.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0, read_timeout=2.0)


@pytest.fixture(scope="module")
def graph_server() -> Iterator[FakeGraph]:
    fake = FakeGraph(app_id=APP_ID, app_secret=APP_SECRET, api_version=VERSION, redirect_uri=REDIRECT)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def graph(graph_server: FakeGraph) -> FakeGraph:
    graph_server.reset()
    return graph_server


def make_client(http: httpx.AsyncClient, graph: FakeGraph, **overrides: Any) -> GraphClient:
    options: dict[str, Any] = dict(
        graph_url=graph.url,
        login_url="https://www.facebook.example",
        api_version=VERSION,
        app_id=APP_ID,
        app_secret=APP_SECRET,
        redirect_uri=REDIRECT,
        policy=FAST,
    )
    options.update(overrides)
    return GraphClient(http, **options)


def run(graph: FakeGraph, action: Callable[[GraphClient], Awaitable[T]], **overrides: Any) -> T:
    """Run one async action with a fresh httpx client and GraphClient."""

    async def main() -> T:
        async with httpx.AsyncClient() as http:
            return await action(make_client(http, graph, **overrides))

    return asyncio.run(main())


def add_shop_owner(graph: FakeGraph, user_id: str = "1001", *, n_pages: int = 2, **kwargs: Any) -> None:
    pages = [
        {
            "id": f"90{i:04d}",
            "name": f"{HOSTILE_NAMES[i % len(HOSTILE_NAMES)]} {i}"[:80],
            "category": "Retail",
            "tasks": ["MANAGE", "MESSAGING"],
        }
        for i in range(n_pages)
    ]
    graph.add_user(user_id, "Ada Lovelace", pages=pages, **kwargs)


def query_of(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


# -- login URL ----------------------------------------------------------------


def test_login_url_asks_for_required_scopes(graph: FakeGraph) -> None:
    async def action(client: GraphClient) -> str:
        return client.login_dialog_url("st4te")

    url = run(graph, action)
    assert url.startswith(f"https://www.facebook.example/{VERSION}/dialog/oauth?")
    q = query_of(url)
    assert q == {
        "client_id": APP_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "state": "st4te",
        "scope": ",".join(REQUIRED_SCOPES),
    }
    assert APP_SECRET not in url


def test_login_url_with_config_id_and_rerequest(graph: FakeGraph) -> None:
    async def action(client: GraphClient) -> tuple[str, str]:
        return client.login_dialog_url("abc"), client.login_dialog_url("abc", rerequest=True)

    plain, again = run(graph, action, login_config_id="777")
    assert query_of(plain)["config_id"] == "777"
    assert "scope" not in query_of(plain)
    assert "auth_type" not in query_of(plain)
    assert query_of(again)["auth_type"] == "rerequest"
    assert query_of(again)["state"] == "abc"


# -- the happy path -------------------------------------------------------------


def test_full_login_flow(graph: FakeGraph) -> None:
    add_shop_owner(graph, n_pages=2)
    code = graph.issue_code("1001")

    async def action(client: GraphClient) -> dict[str, Any]:
        short = await client.exchange_code(code)
        long = await client.long_lived(short)
        info = await client.debug_token(long.access_token)
        me = await client.me(long.access_token)
        pages = await client.pages(long.access_token)
        page_info = await client.debug_token(pages[0].access_token)
        return dict(short=short, long=long, info=info, me=me, pages=pages, page_info=page_info)

    r = run(graph, action)
    assert r["short"].startswith("EAA")
    long: LongLivedToken = r["long"]
    assert long.access_token != r["short"]
    assert long.expires_in == LONG_LIVED
    assert long.access_token not in repr(long)

    info = r["info"]
    assert info.is_valid and info.user_id == "1001"
    assert set(REQUIRED_SCOPES) <= set(info.scopes)
    assert info.missing_scopes == ()
    assert info.expires_at is not None and abs(info.expires_at - (time.time() + LONG_LIVED)) < 60
    assert info.data_access_expires_at is not None and info.data_access_expires_at > time.time()
    assert info.error_code is None

    assert r["me"] == {"id": "1001", "name": "Ada Lovelace"}

    pages: list[Page] = r["pages"]
    assert [p.id for p in pages] == ["900000", "900001"]
    assert pages[0].name == f"{HOSTILE_NAMES[0]} 0" and pages[0].category == "Retail"
    assert pages[0].tasks == ("MANAGE", "MESSAGING")
    assert pages[0].access_token.startswith("EAA")
    assert pages[0].access_token not in repr(pages[0])

    # A Page token from a long-lived user token never expires.
    assert r["page_info"].is_valid and r["page_info"].expires_at is None

    # The code was exchanged with our credentials and redirect URI.
    exchange = graph.calls("GET", f"/{VERSION}/oauth/access_token")[0]
    assert exchange.query["client_secret"] == APP_SECRET
    assert exchange.query["redirect_uri"] == REDIRECT
    assert graph.calls("GET", f"/{VERSION}/debug_token")[0].query["access_token"] == f"{APP_ID}|{APP_SECRET}"


def test_declined_scope_shows_in_debug_token(graph: FakeGraph) -> None:
    add_shop_owner(graph, declined={"pages_messaging"})
    token = graph.user_token("1001")
    info = run(graph, lambda c: c.debug_token(token))
    assert info.is_valid
    assert info.missing_scopes == ("pages_messaging",)


def test_code_can_be_used_once(graph: FakeGraph) -> None:
    add_shop_owner(graph)
    code = graph.issue_code("1001")

    async def action(client: GraphClient) -> GraphError:
        await client.exchange_code(code)
        with pytest.raises(GraphError) as excinfo:
            await client.exchange_code(code)
        return excinfo.value

    err = run(graph, action)
    assert (err.code, err.subcode, err.status) == (100, 36009, 400)
    assert not err.token_dead


# -- paging ---------------------------------------------------------------------


def test_pages_follows_paging_next(graph: FakeGraph) -> None:
    add_shop_owner(graph, n_pages=230)
    token = graph.user_token("1001")

    pages = run(graph, lambda c: c.pages(token))

    assert len(pages) == 230
    assert [p.id for p in pages] == [f"90{i:04d}" for i in range(230)]
    assert len({p.access_token for p in pages}) == 230
    calls = graph.calls("GET", f"/{VERSION}/me/accounts")
    assert len(calls) == 3
    assert all(c.query["limit"] == "100" for c in calls)
    assert "after" not in calls[0].query and "after" in calls[1].query and "after" in calls[2].query


def test_pages_stops_exactly_at_page_boundary(graph: FakeGraph) -> None:
    add_shop_owner(graph, n_pages=100)
    token = graph.user_token("1001")
    pages = run(graph, lambda c: c.pages(token))
    assert len(pages) == 100
    assert len(graph.calls("GET", f"/{VERSION}/me/accounts")) == 1


def test_pages_empty(graph: FakeGraph) -> None:
    graph.add_user("1002", "No Pages")
    token = graph.user_token("1002")
    assert run(graph, lambda c: c.pages(token)) == []


# -- appsecret_proof ------------------------------------------------------------


def test_appsecret_proof_is_hmac_sha256_of_token(graph: FakeGraph) -> None:
    add_shop_owner(graph, n_pages=120)
    token = graph.user_token("1001")
    expected = hmac.new(APP_SECRET.encode(), token.encode(), hashlib.sha256).hexdigest()

    async def action(client: GraphClient) -> str:
        await client.me(token)
        await client.pages(token)
        return client.appsecret_proof(token)

    assert run(graph, action) == expected
    user_calls = graph.calls("GET", f"/{VERSION}/me") + graph.calls("GET", f"/{VERSION}/me/accounts")
    assert len(user_calls) == 3  # /me plus two pages of accounts
    assert all(c.query.get("appsecret_proof") == expected for c in user_calls)


def test_fake_rejects_missing_or_wrong_appsecret_proof(graph: FakeGraph) -> None:
    add_shop_owner(graph)
    token = graph.user_token("1001")
    missing = httpx.get(f"{graph.url}/{VERSION}/me", params={"access_token": token})
    wrong = httpx.get(f"{graph.url}/{VERSION}/me", params={"access_token": token, "appsecret_proof": "00" * 32})
    for response in (missing, wrong):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == 100 and error["type"] == "GraphMethodException"
        assert "appsecret_proof" in error["message"]


# -- dead tokens and other errors -----------------------------------------------


def test_dead_token(graph: FakeGraph) -> None:
    add_shop_owner(graph)
    token = graph.user_token("1001")
    page_token = graph.page_token("1001", "900000")
    graph.kill_token("1001", subcode=460)

    async def action(client: GraphClient) -> tuple[GraphError, GraphError, Any, Any]:
        with pytest.raises(GraphError) as me_err:
            await client.me(token)
        with pytest.raises(GraphError) as pages_err:
            await client.pages(token)
        return me_err.value, pages_err.value, await client.debug_token(token), await client.debug_token(page_token)

    me_err, pages_err, info, page_info = run(graph, action)
    for err in (me_err, pages_err):
        assert err.token_dead and not err.permission_error
        assert (err.code, err.subcode, err.status, err.type) == (190, 460, 400, "OAuthException")
        assert err.fbtrace_id
        assert token not in str(err)
    assert len(graph.calls("GET", f"/{VERSION}/me")) == 1  # not retried
    assert not info.is_valid and (info.error_code, info.error_subcode) == (190, 460)
    assert info.user_id == "1001"
    assert not page_info.is_valid and page_info.error_code == 190


def test_new_login_after_kill_works_again(graph: FakeGraph) -> None:
    add_shop_owner(graph)
    graph.kill_token("1001")
    code = graph.issue_code("1001")

    async def action(client: GraphClient) -> dict[str, str]:
        long = await client.long_lived(await client.exchange_code(code))
        return await client.me(long.access_token)

    assert run(graph, action)["id"] == "1001"


def test_killed_page_token_is_replaced_on_next_listing(graph: FakeGraph) -> None:
    add_shop_owner(graph)
    token = graph.user_token("1001")
    old = graph.page_token("1001", "900000")
    graph.kill_page_token("900000")

    async def action(client: GraphClient) -> tuple[Any, list[Page]]:
        return await client.debug_token(old), await client.pages(token)

    info, pages = run(graph, action)
    assert not info.is_valid and info.error_code == 190
    assert pages[0].access_token != old


def test_expired_short_lived_token(graph: FakeGraph) -> None:
    add_shop_owner(graph)
    code = graph.issue_code("1001")
    short = run(graph, lambda c: c.exchange_code(code))
    graph.clock = lambda: time.time() + 3601

    with pytest.raises(GraphError) as excinfo:
        run(graph, lambda c: c.me(short))
    assert excinfo.value.token_dead and excinfo.value.subcode == 463


def test_unknown_code(graph: FakeGraph) -> None:
    with pytest.raises(GraphError) as excinfo:
        run(graph, lambda c: c.exchange_code("nonsense"))
    err = excinfo.value
    assert (err.code, err.status) == (100, 400)
    assert not err.token_dead and not isinstance(err, GraphAppError)
    assert len(graph.calls()) == 1  # a permanent error is not retried


def test_redirect_uri_mismatch(graph: FakeGraph) -> None:
    add_shop_owner(graph)
    code = graph.issue_code("1001")
    with pytest.raises(GraphError) as excinfo:
        run(graph, lambda c: c.exchange_code(code), redirect_uri="https://elsewhere.example/cb")
    assert (excinfo.value.code, excinfo.value.subcode) == (100, 36008)


def test_wrong_app_secret_is_an_app_error_not_retried(graph: FakeGraph) -> None:
    add_shop_owner(graph)
    code = graph.issue_code("1001")
    token = graph.user_token("1001")

    with pytest.raises(GraphAppError) as exchange_err:
        run(graph, lambda c: c.exchange_code(code), app_secret="wrong-secret")
    assert exchange_err.value.code == 1
    assert len(graph.calls()) == 1  # Graph's code 1 is "unknown error", but not here

    with pytest.raises(GraphAppError) as debug_err:
        run(graph, lambda c: c.debug_token(token), app_secret="wrong-secret")
    # Graph reports the bad app token as code 190; that says nothing about the user's token.
    assert debug_err.value.code == 190 and not debug_err.value.token_dead
    for err in (exchange_err.value, debug_err.value):
        assert "wrong-secret" not in str(err) and token not in str(err)


def test_wrong_api_version_is_404(graph: FakeGraph) -> None:
    add_shop_owner(graph)
    token = graph.user_token("1001")
    with pytest.raises(GraphError) as excinfo:
        run(graph, lambda c: c.me(token), api_version="v1.0")
    assert excinfo.value.status == 404


def test_error_classification() -> None:
    assert GraphError("x", code=190, subcode=467).token_dead
    assert GraphError("x", code=102).token_dead
    assert not GraphError("x", code=100).token_dead
    assert GraphError("x", code=10).permission_error
    assert GraphError("x", code=200).permission_error and GraphError("x", code=299).permission_error
    assert not GraphError("x", code=300).permission_error
    assert not GraphError("x").permission_error and not GraphError("x").token_dead
    assert GraphError("x").upstream == "Facebook"


# -- retries --------------------------------------------------------------------


def _me_with_attempts(graph: FakeGraph, **overrides: Any) -> tuple[dict[str, str], list[int | None]]:
    attempts: list[int | None] = []
    token = graph.user_token("1001")
    result = run(graph, lambda c: c.me(token), on_attempt=lambda upstream, status: attempts.append(status), **overrides)
    return result, attempts


@pytest.mark.parametrize(
    "fault, first_status",
    [
        (dict(status=500, body="oops"), 500),
        (dict(status=429, headers={"Retry-After": "0"}, body={"error": {"message": "slow down", "code": 4}}), 429),
        (
            dict(
                status=400,
                body={
                    "error": {"message": "(#4) Application request limit reached", "type": "OAuthException", "code": 4}
                },
            ),
            400,
        ),
        (
            dict(
                status=400,
                body={
                    "error": {"message": "Please retry", "type": "OAuthException", "code": 9000, "is_transient": True}
                },
            ),
            400,
        ),
        (dict(malformed=True), 200),
        (dict(reset=True), None),
    ],
    ids=["500", "429-retry-after", "graph-code-4", "is_transient", "malformed-json", "connection-reset"],
)
def test_transient_failure_then_success(graph: FakeGraph, fault: dict[str, Any], first_status: int | None) -> None:
    add_shop_owner(graph)
    graph.fail(f"GET /{VERSION}/me", times=1, **fault)

    me, attempts = _me_with_attempts(graph)

    assert me == {"id": "1001", "name": "Ada Lovelace"}
    assert attempts == [first_status, 200]
    assert len(graph.calls("GET", f"/{VERSION}/me")) == 2


def test_transient_during_paging_retries_that_page_only(graph: FakeGraph) -> None:
    add_shop_owner(graph, n_pages=150)
    token = graph.user_token("1001")
    run(graph, lambda c: c.pages(token))  # learn the second page's URL
    second_page_query = graph.calls("GET", f"/{VERSION}/me/accounts")[1].query
    graph.reset_log()
    graph.fail(f"GET /{VERSION}/me/accounts", times=1, status=502)  # hits the first request

    pages = run(graph, lambda c: c.pages(token))

    assert len(pages) == 150
    calls = graph.calls("GET", f"/{VERSION}/me/accounts")
    assert len(calls) == 3
    assert calls[2].query["after"] == second_page_query["after"]


def test_persistent_503_gives_up(graph: FakeGraph) -> None:
    add_shop_owner(graph)
    graph.fail(f"GET /{VERSION}/me", times=10, status=503, body="busy")

    with pytest.raises(UpstreamUnavailable) as excinfo:
        _me_with_attempts(graph)

    assert excinfo.value.upstream == "Facebook"
    assert excinfo.value.status == 503
    assert len(graph.calls("GET", f"/{VERSION}/me")) == FAST.attempts


def test_persistent_rate_limit_gives_up(graph: FakeGraph) -> None:
    add_shop_owner(graph)
    body = {
        "error": {
            "message": "(#613) Calls to this api have exceeded the rate limit.",
            "type": "OAuthException",
            "code": 613,
        }
    }
    graph.fail(f"GET /{VERSION}/me", times=10, status=400, body=body)
    with pytest.raises(UpstreamUnavailable):
        _me_with_attempts(graph)
    assert len(graph.calls("GET", f"/{VERSION}/me")) == FAST.attempts


def test_timeouts_give_up(graph: FakeGraph) -> None:
    add_shop_owner(graph)
    graph.fail(f"GET /{VERSION}/me", times=10, delay=0.5, status=200, body={"id": "1001", "name": "late"})
    quick = RetryPolicy(
        attempts=3, total_timeout=10.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0, read_timeout=0.1
    )

    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as excinfo:
        _me_with_attempts(graph, policy=quick)

    assert "Facebook" in str(excinfo.value)
    assert time.monotonic() - started < 5
    assert len(graph.calls("GET", f"/{VERSION}/me")) == 3


def test_non_json_error_page(graph: FakeGraph) -> None:
    add_shop_owner(graph)
    graph.fail(f"GET /{VERSION}/me", times=1, status=403, body="<html>Forbidden</html>")
    with pytest.raises(GraphError) as excinfo:
        _me_with_attempts(graph)
    assert excinfo.value.code is None and excinfo.value.status == 403
    assert len(graph.calls()) == 1


# -- secrets stay out of logs ---------------------------------------------------


def test_no_secrets_in_bot_logs(graph: FakeGraph, caplog: pytest.LogCaptureFixture) -> None:
    add_shop_owner(graph)
    token = graph.user_token("1001")
    graph.fail(f"GET /{VERSION}/me", times=2, status=500)
    graph.fail(f"GET /{VERSION}/debug_token", times=1, reset=True)
    graph.kill_token("1001")

    async def action(client: GraphClient) -> None:
        with pytest.raises(GraphError):
            await client.me(token)
        await client.debug_token(token)

    with caplog.at_level(logging.DEBUG, logger="bot"):
        run(graph, action)

    bot_records = [r for r in caplog.records if r.name.startswith("bot")]
    assert bot_records, "the retries should have been logged"
    for record in bot_records:
        text = record.getMessage()
        assert token not in text and APP_SECRET not in text
