"""VonageClient against a real-socket FakeVonage: wire formats, error mapping, retries, secrecy."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from bot.fakes.vonage import HOSTILE_APP_NAMES, FakeVonage
from bot.http import RetryPolicy, UpstreamUnavailable
from bot.vonage import (
    Application,
    Credentials,
    ExternalAccount,
    VonageAuthError,
    VonageClient,
    VonageConflict,
    VonageError,
    VonageForbidden,
    VonageInvalid,
    VonageNotFound,
)

T = TypeVar("T")

KEY = "abcd1234"
SECRET = "s3cr3t-Sup3r-Vonage"
TOKEN = "EAAPageToken-0123456789"
PAGE = "100200300"
APP = "78d335fa-323d-0114-9c3d-d6f0d48968cf"
CREDS = Credentials(KEY, SECRET)
FAST = RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.05, wait_jitter=0, total_timeout=5.0)
MESSENGER = "/beta/chatapp-accounts/messenger"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVonage]:
    # One server per module: stopping one costs ~0.5 s (the base server's poll interval).
    fake = FakeVonage()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeVonage) -> FakeVonage:
    server.clear()
    server.add_key(KEY, SECRET)
    server.add_application(KEY, APP, "Support bot")
    return server


def run(fake: FakeVonage, fn: Callable[[VonageClient], Awaitable[T]], **kwargs: Any) -> T:
    """Run ``fn(client)`` in a fresh loop with a fresh httpx client."""

    async def main() -> T:
        async with httpx.AsyncClient() as http:
            client = VonageClient(http, base_url=fake.url + "/", policy=kwargs.pop("policy", FAST), **kwargs)
            return await fn(client)

    return asyncio.run(main())


def link(fake: FakeVonage, page: str = PAGE, token: str = TOKEN, name: str | None = "Acme Coffee") -> ExternalAccount:
    return run(fake, lambda c: c.link_account(CREDS, page_id=page, access_token=token, name=name))


# -- external accounts ----------------------------------------------------------
def test_link_account_posts_spec_body_and_returns_account_without_token(fake: FakeVonage) -> None:
    acct = link(fake)

    assert acct == ExternalAccount(external_id=PAGE, name="Acme Coffee", applications=(), api_key=KEY)
    (call,) = fake.calls("POST", MESSENGER)
    assert call.json == {"external_id": PAGE, "access_token": TOKEN, "name": "Acme Coffee"}
    assert fake.accounts[KEY][PAGE] == {
        "external_id": PAGE,
        "name": "Acme Coffee",
        "access_token": TOKEN,
        "applications": [],
    }
    # Vonage echoes the Page token; the client must not keep it around.
    assert TOKEN not in repr(acct)


def test_link_account_can_attach_application_in_one_call(fake: FakeVonage) -> None:
    acct = run(fake, lambda c: c.link_account(CREDS, page_id=PAGE, access_token=TOKEN, name=None, application_id=APP))
    assert acct.applications == (APP,)
    assert acct.application == APP
    assert fake.calls("POST", MESSENGER)[0].json["applications"] == [APP]


def test_basic_auth_header_is_sent(fake: FakeVonage) -> None:
    link(fake)
    expected = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert all(r.headers["authorization"] == expected for r in fake.requests)
    assert fake.requests


def test_update_get_and_unlink_account(fake: FakeVonage) -> None:
    link(fake)

    updated = run(fake, lambda c: c.update_account(CREDS, PAGE, access_token="EAANewToken", name="Acme Tea"))
    assert updated.name == "Acme Tea"
    assert fake.calls("PATCH", f"{MESSENGER}/{PAGE}")[0].json == {"access_token": "EAANewToken", "name": "Acme Tea"}
    assert fake.accounts[KEY][PAGE]["access_token"] == "EAANewToken"

    got = run(fake, lambda c: c.get_account(CREDS, PAGE))
    assert got == ExternalAccount(PAGE, "Acme Tea", (), KEY)

    assert run(fake, lambda c: c.unlink_account(CREDS, PAGE)) is None
    assert PAGE not in fake.accounts[KEY]
    assert run(fake, lambda c: c.get_account(CREDS, PAGE)) is None


def test_update_account_token_only_leaves_name(fake: FakeVonage) -> None:
    link(fake)
    updated = run(fake, lambda c: c.update_account(CREDS, PAGE, access_token="EAANewToken"))
    assert updated.name == "Acme Coffee"
    assert fake.calls("PATCH")[0].json == {"access_token": "EAANewToken"}


def test_update_account_with_nothing_is_a_local_error(fake: FakeVonage) -> None:
    with pytest.raises(ValueError):
        run(fake, lambda c: c.update_account(CREDS, PAGE))
    assert fake.calls("PATCH") == []


def test_unlink_missing_account_raises_not_found(fake: FakeVonage) -> None:
    with pytest.raises(VonageNotFound) as info:
        run(fake, lambda c: c.unlink_account(CREDS, "999"))
    assert info.value.status == 404
    assert info.value.api_key == KEY


def test_update_missing_account_raises_not_found(fake: FakeVonage) -> None:
    with pytest.raises(VonageNotFound):
        run(fake, lambda c: c.update_account(CREDS, "999", name="x"))


def test_duplicate_account_is_conflict(fake: FakeVonage) -> None:
    link(fake)
    with pytest.raises(VonageConflict) as info:
        link(fake)
    assert info.value.status == 409
    assert PAGE in (info.value.detail or "")
    assert len(fake.calls("POST", MESSENGER)) == 2  # no retry on a 409


def test_page_id_is_path_escaped(fake: FakeVonage) -> None:
    assert run(fake, lambda c: c.get_account(CREDS, "1/../x")) is None
    assert fake.requests[-1].path == f"{MESSENGER}/1%2F..%2Fx"


# -- validation errors ----------------------------------------------------------
def test_rejected_token_is_invalid_with_params(fake: FakeVonage) -> None:
    fake.reject_token(TOKEN)
    with pytest.raises(VonageInvalid) as info:
        link(fake)
    err = info.value
    assert err.status == 400
    assert err.type == "https://www.nexmo.com/messages/Errors#InvalidParams"
    assert err.title == "Your request parameters didn't validate."
    assert [p["name"] for p in err.invalid_params] == ["access_token"]
    assert "access_token" in str(err)
    assert PAGE not in fake.accounts[KEY]


def test_rejected_token_on_update_is_invalid(fake: FakeVonage) -> None:
    link(fake)
    fake.reject_token("EAADead")
    with pytest.raises(VonageInvalid) as info:
        run(fake, lambda c: c.update_account(CREDS, PAGE, access_token="EAADead"))
    assert info.value.invalid_params[0]["name"] == "access_token"
    assert fake.accounts[KEY][PAGE]["access_token"] == TOKEN


def test_missing_fields_name_each_param(fake: FakeVonage) -> None:
    async def raw(client: VonageClient) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.post(fake.url + MESSENGER, json={}, auth=(KEY, SECRET))

    response = run(fake, raw)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    names = {p["name"] for p in response.json()["invalid_params"]}
    assert names == {"external_id", "access_token"}


def test_application_api_invalid_parameters_spelling_is_normalised(fake: FakeVonage) -> None:
    with pytest.raises(VonageInvalid) as info:
        run(fake, lambda c: c.list_applications(CREDS, page_size=500))
    assert info.value.invalid_params == [{"name": "page_size", "reason": "must be between 1 and 100"}]


def test_422_maps_to_invalid(fake: FakeVonage) -> None:
    fake.fail_problem(f"POST {MESSENGER}", 422)
    with pytest.raises(VonageInvalid) as info:
        link(fake)
    assert info.value.status == 422 and info.value.title == "Invalid parameters"
    assert info.value.invalid_params == [
        {"name": "access_token", "reason": "The access token could not be validated with Facebook"}
    ]
    assert TOKEN not in str(info.value)


# -- auth -----------------------------------------------------------------------
def test_wrong_secret_is_auth_error_and_secret_stays_hidden(fake: FakeVonage) -> None:
    bad = Credentials(KEY, "wrong-secret-value")
    with pytest.raises(VonageAuthError) as info:
        run(fake, lambda c: c.get_account(bad, PAGE))
    err = info.value
    assert err.status == 401
    assert err.upstream == "Vonage"
    assert err.title == "Unauthorised"
    assert len(fake.requests) == 1  # 401 is not retried
    for text in (str(err), repr(err), repr(bad), str(bad), repr(err.__dict__)):
        assert "wrong-secret-value" not in text
    assert KEY in repr(bad)


def test_auth_error_on_applications_has_problem_type(fake: FakeVonage) -> None:
    with pytest.raises(VonageAuthError) as info:
        run(fake, lambda c: c.list_applications(Credentials("nokey", "x")))
    assert info.value.type == "https://developer.nexmo.com/api-errors#unauthorized"
    assert info.value.detail == "You did not provide correct credentials."
    assert info.value.instance


def test_credentials_repr_hides_secret() -> None:
    assert SECRET not in repr(CREDS)
    assert SECRET not in str(CREDS)
    assert "abcd1234" in repr(CREDS)


def test_secret_and_token_scrubbed_from_echoed_error_text(fake: FakeVonage) -> None:
    fake.fail(
        f"POST {MESSENGER}",
        status=400,
        body={
            "title": f"Bad token {TOKEN}",
            "detail": f"key {KEY} secret {SECRET}",
            "invalid_params": [{"name": "access_token", "reason": f"{TOKEN} is dead"}],
        },
    )
    with pytest.raises(VonageInvalid) as info:
        link(fake)
    err = info.value
    for text in (str(err), repr(err), err.title or "", err.detail or "", repr(err.invalid_params)):
        assert TOKEN not in text
        assert SECRET not in text
    assert "[redacted]" in str(err)


def test_no_secret_or_token_in_logs(fake: FakeVonage, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail(f"POST {MESSENGER}", status=500)
    fake.reject_token("EAADead")
    link(fake)
    with pytest.raises(VonageInvalid):
        run(fake, lambda c: c.update_account(CREDS, PAGE, access_token="EAADead"))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP 500" in logged
    for secret in (SECRET, TOKEN, "EAADead", base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()):
        assert secret not in logged


# -- applications on accounts -----------------------------------------------------
def test_link_and_unlink_application(fake: FakeVonage) -> None:
    link(fake)
    acct = run(fake, lambda c: c.link_application(CREDS, PAGE, APP))
    assert acct.applications == (APP,)
    assert fake.calls("POST", f"{MESSENGER}/{PAGE}/applications")[0].json == {"application": APP}
    assert fake.accounts[KEY][PAGE]["applications"] == [APP]

    assert run(fake, lambda c: c.unlink_application(CREDS, PAGE, APP)) is None
    assert fake.calls("DELETE", f"{MESSENGER}/{PAGE}/applications/{APP}")
    assert fake.accounts[KEY][PAGE]["applications"] == []


def test_second_application_on_page_is_conflict(fake: FakeVonage) -> None:
    fake.add_application(KEY, "app-2", "Other bot")
    link(fake)
    run(fake, lambda c: c.link_application(CREDS, PAGE, APP))
    with pytest.raises(VonageConflict) as info:
        run(fake, lambda c: c.link_application(CREDS, PAGE, "app-2"))
    assert info.value.detail == "Unable to link application"
    assert info.value.title == "Application conflict"
    assert fake.accounts[KEY][PAGE]["applications"] == [APP]


def test_same_application_twice_is_conflict_too(fake: FakeVonage) -> None:
    link(fake)
    run(fake, lambda c: c.link_application(CREDS, PAGE, APP))
    with pytest.raises(VonageConflict):
        run(fake, lambda c: c.link_application(CREDS, PAGE, APP))


def test_non_messages_application_is_forbidden(fake: FakeVonage) -> None:
    fake.add_application(KEY, "voice-app", "IVR", capabilities=("voice",))
    link(fake)
    with pytest.raises(VonageForbidden) as info:
        run(fake, lambda c: c.link_application(CREDS, PAGE, "voice-app"))
    assert info.value.status == 403
    assert info.value.detail == "Cannot link application"
    assert fake.accounts[KEY][PAGE]["applications"] == []


def test_other_keys_application_is_forbidden(fake: FakeVonage) -> None:
    fake.add_key("other", "othersecret")
    fake.add_application("other", "their-app", "Theirs")
    link(fake)
    with pytest.raises(VonageForbidden):
        run(fake, lambda c: c.link_application(CREDS, PAGE, "their-app"))


def test_link_application_to_missing_account_is_not_found(fake: FakeVonage) -> None:
    with pytest.raises(VonageNotFound):
        run(fake, lambda c: c.link_application(CREDS, "404404", APP))


def test_unlink_application_not_linked_is_conflict_per_spec(fake: FakeVonage) -> None:
    link(fake)
    with pytest.raises(VonageConflict) as info:
        run(fake, lambda c: c.unlink_application(CREDS, PAGE, APP))
    assert info.value.detail == "Unable to unlink application"


# -- pagination -------------------------------------------------------------------
def test_list_applications_follows_all_pages(fake: FakeVonage) -> None:
    for i in range(24):  # plus the fixture's one = 25
        fake.add_application(KEY, f"app-{i:02d}", f"App {i}", capabilities=("voice",) if i % 2 else ("messages", "rtc"))
    apps = run(fake, lambda c: c.list_applications(CREDS, page_size=10))

    assert len(apps) == 25
    assert len({a.id for a in apps}) == 25
    pages = [r.query for r in fake.calls("GET", "/v2/applications")]
    assert pages == [{"page_size": "10", "page": str(n)} for n in (1, 2, 3)]
    by_id = {a.id: a for a in apps}
    assert by_id[APP] == Application(APP, "Support bot", frozenset({"messages"}))
    assert by_id["app-00"].capabilities == frozenset({"messages", "rtc"})
    assert by_id["app-00"].messages_capable
    assert not by_id["app-01"].messages_capable


def test_list_applications_empty(fake: FakeVonage) -> None:
    fake.add_key("empty", "pw")
    assert run(fake, lambda c: c.list_applications(Credentials("empty", "pw"))) == []
    assert len(fake.calls("GET", "/v2/applications")) == 1


def test_list_accounts_follows_all_pages(fake: FakeVonage) -> None:
    for i in range(45):
        fake.add_account(KEY, str(1000 + i), f"tok{i}", name=f"Page {i}")
    fake.add_key("other", "pw")
    fake.add_account("other", "9999", "othertok")

    accounts = run(fake, lambda c: c.list_accounts(CREDS))

    assert [a.external_id for a in accounts] == [str(1000 + i) for i in range(45)]
    assert all(a.api_key == KEY for a in accounts)
    queries = [r.query for r in fake.calls("GET", "/beta/chatapp-accounts")]
    assert queries == [{"provider": "messenger", "page_number": str(n), "page_size": "20"} for n in (1, 2, 3)]


def test_list_accounts_without_links_stops_on_short_page(fake: FakeVonage) -> None:
    fake.list_links = False
    for i in range(20):
        fake.add_account(KEY, str(i), "t")
    accounts = run(fake, lambda c: c.list_accounts(CREDS, page_size=10))
    assert len(accounts) == 20
    # two full pages, then an empty third one ends it
    assert len(fake.calls("GET", "/beta/chatapp-accounts")) == 3


def test_list_accounts_empty(fake: FakeVonage) -> None:
    assert run(fake, lambda c: c.list_accounts(CREDS)) == []
    assert len(fake.calls("GET", "/beta/chatapp-accounts")) == 1


# -- retries ----------------------------------------------------------------------
def test_500_then_ok(fake: FakeVonage) -> None:
    statuses: list[int | None] = []
    fake.fail(f"POST {MESSENGER}", status=500)
    acct = run(
        fake,
        lambda c: c.link_account(CREDS, page_id=PAGE, access_token=TOKEN, name=None),
        on_attempt=lambda u, s: statuses.append(s),
    )
    assert acct.external_id == PAGE
    assert statuses == [500, 201]


def test_429_retry_after_then_ok(fake: FakeVonage) -> None:
    fake.fail_problem("GET /v2/applications", 429, retry_after=0)
    apps = run(fake, lambda c: c.list_applications(CREDS))
    assert [a.id for a in apps] == [APP]
    assert len(fake.calls("GET", "/v2/applications")) == 2


def test_connection_reset_then_ok(fake: FakeVonage) -> None:
    link(fake)
    fake.fail(f"GET {MESSENGER}/{PAGE}", reset=True)
    calls: list[int | None] = []
    acct = run(fake, lambda c: c.get_account(CREDS, PAGE), on_attempt=lambda u, s: calls.append(s))
    assert acct is not None and acct.external_id == PAGE
    assert calls == [None, 200]


def test_malformed_json_then_ok(fake: FakeVonage) -> None:
    link(fake)
    fake.fail(f"PATCH {MESSENGER}/{PAGE}", malformed=True)
    acct = run(fake, lambda c: c.update_account(CREDS, PAGE, name="New"))
    assert acct.name == "New"
    assert len(fake.calls("PATCH")) == 2


def test_slow_response_times_out_then_ok(fake: FakeVonage) -> None:
    fake.fail("GET /v2/applications", delay=0.5, status=200, body={})
    policy = RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.05, wait_jitter=0, read_timeout=0.2)
    apps = run(fake, lambda c: c.list_applications(CREDS), policy=policy)
    assert [a.id for a in apps] == [APP]


def test_persistent_503_is_unavailable(fake: FakeVonage) -> None:
    fake.fail_problem(f"POST {MESSENGER}", 503, times=10)
    with pytest.raises(UpstreamUnavailable) as info:
        link(fake)
    assert info.value.upstream == "Vonage"
    assert info.value.status == 503
    assert len(fake.calls("POST", MESSENGER)) == 3
    assert SECRET not in str(info.value)


def test_non_json_error_body_maps_by_status(fake: FakeVonage) -> None:
    fake.fail(f"GET {MESSENGER}/{PAGE}", status=403, body="<html>nope</html>")
    with pytest.raises(VonageForbidden) as info:
        run(fake, lambda c: c.get_account(CREDS, PAGE))
    assert info.value.title == "Forbidden"
    assert info.value.detail is None
    assert info.value.invalid_params == []


def test_bare_404_means_no_account(fake: FakeVonage) -> None:
    fake.fail(f"GET {MESSENGER}/{PAGE}", status=404, body=None)
    assert run(fake, lambda c: c.get_account(CREDS, PAGE)) is None


def test_unexpected_status_is_plain_vonage_error(fake: FakeVonage) -> None:
    fake.fail(f"DELETE {MESSENGER}/{PAGE}", status=405, body={"title": "Request method not allowed"})
    with pytest.raises(VonageError) as info:
        run(fake, lambda c: c.unlink_account(CREDS, PAGE))
    assert type(info.value) is VonageError
    assert info.value.status == 405


# -- writes that landed but whose answer was lost -------------------------------------
def test_retried_link_account_that_landed_returns_account(fake: FakeVonage) -> None:
    fake.fail_after(f"POST {MESSENGER}", status=502)
    acct = link(fake)
    assert acct.external_id == PAGE
    assert len(fake.calls("POST", MESSENGER)) == 2  # 502 (applied), then 409
    assert len(fake.accounts[KEY]) == 1


def test_retried_link_account_conflict_with_other_token_still_raises(fake: FakeVonage) -> None:
    fake.add_account(KEY, PAGE, "someone-elses-token")
    fake.fail(f"POST {MESSENGER}", status=500)
    with pytest.raises(VonageConflict):
        link(fake)
    assert fake.accounts[KEY][PAGE]["access_token"] == "someone-elses-token"


def test_retried_unlink_account_that_landed_is_done(fake: FakeVonage) -> None:
    link(fake)
    fake.fail_after(f"DELETE {MESSENGER}/{PAGE}", status=502)
    assert run(fake, lambda c: c.unlink_account(CREDS, PAGE)) is None
    assert PAGE not in fake.accounts[KEY]


def test_retried_link_application_that_landed_returns_account(fake: FakeVonage) -> None:
    link(fake)
    fake.fail_after(f"POST {MESSENGER}/{PAGE}/applications", status=504)
    acct = run(fake, lambda c: c.link_application(CREDS, PAGE, APP))
    assert acct.applications == (APP,)


def test_retried_unlink_application_that_landed_is_done(fake: FakeVonage) -> None:
    link(fake)
    run(fake, lambda c: c.link_application(CREDS, PAGE, APP))
    fake.fail_after(f"DELETE {MESSENGER}/{PAGE}/applications/{APP}", status=502)
    assert run(fake, lambda c: c.unlink_application(CREDS, PAGE, APP)) is None
    assert fake.accounts[KEY][PAGE]["applications"] == []


# -- the fake's wire format, checked against the specs -------------------------------


def _raw(fake: FakeVonage, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, fake.url + path, auth=(KEY, SECRET), timeout=5, **kwargs)


def test_fake_account_has_every_messenger_account_field(fake: FakeVonage) -> None:
    created = _raw(
        fake, "POST", MESSENGER, json={"external_id": PAGE, "access_token": TOKEN, "name": HOSTILE_APP_NAMES[0]}
    )
    assert created.status_code == 201
    assert set(created.json()) == {"external_id", "api_key", "provider", "access_token", "name", "applications"}
    listed = _raw(fake, "GET", "/beta/chatapp-accounts").json()
    assert set(listed) == {"page_number", "page_size", "_embedded", "_links"}
    assert set(listed["_links"]) == {"self", "first", "last"}


@pytest.mark.parametrize("status", [401, 403, 404, 409, 422, 429, 500, 502, 503])
def test_fake_error_bodies_are_problem_json(fake: FakeVonage, status: int) -> None:
    fake.fail_problem(f"GET {MESSENGER}/{PAGE}", status, retry_after=7)
    r = _raw(fake, "GET", f"{MESSENGER}/{PAGE}")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["title"]
    if status in (401, 403):  # External Accounts' 401Response / 403Response
        assert "type" not in body
    else:
        assert body["type"].startswith("https://") and body["detail"]
    assert ("invalid_params" in body) == (status == 422)
    assert (r.headers.get("retry-after") == "7") == (status == 429)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, VonageAuthError),
        (403, VonageForbidden),
        (404, VonageNotFound),
        (409, VonageConflict),
        (422, VonageInvalid),
    ],
)
def test_each_real_error_body_maps_to_its_error(fake: FakeVonage, status: int, error: type[VonageError]) -> None:
    fake.fail_problem(f"POST {MESSENGER}/{PAGE}/applications", status)
    fake.add_account(KEY, PAGE, TOKEN)
    with pytest.raises(error) as info:
        run(fake, lambda c: c.link_application(CREDS, PAGE, APP))
    assert info.value.status == status
    assert len(fake.calls("POST", f"{MESSENGER}/{PAGE}/applications")) == 1  # not retried


def test_forbidden_key_gets_the_spec_403(fake: FakeVonage) -> None:
    fake.forbid_key(KEY)
    with pytest.raises(VonageForbidden) as info:
        link(fake)
    assert info.value.title == "Wrong authentication - You are not authorised to access this resource"
    assert fake.accounts[KEY] == {}


def test_application_api_refuses_a_non_json_accept(fake: FakeVonage) -> None:
    r = _raw(fake, "GET", "/v2/applications", headers={"Accept": "text/html"})
    assert r.status_code == 406 and r.json()["type"].endswith("#accept-header")


def test_hostile_application_names_round_trip(fake: FakeVonage) -> None:
    fake.add_hostile_applications(KEY)
    apps = run(fake, lambda c: c.list_applications(CREDS, page_size=3))
    names = {a.name for a in apps}
    assert set(HOSTILE_APP_NAMES) <= names and len(apps) == len(HOSTILE_APP_NAMES) + 1
    assert max(len(n) for n in names) == 80
