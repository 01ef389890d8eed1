"""Secrets never reach a log record, at any level, from any logger.

Every logger is opened to DEBUG and every record captured at the root (propagation),
through whole journeys against the fakes: login, link, keys add (a modal with a typed
secret, over HTTP and over Socket Mode), a failed keys add, and a sweep with probes.
Each record's message, arguments, traceback and stack are checked for every secret
the run handled: configured ones and the ones the fakes issued on the way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest

from bot.clock import FixedClock
from bot.logs import redact, scrub
from bot.reminders import run_sweep_once
from tests.conftest import APP_SECRET, BOT_TOKEN, SIGNING_SECRET, START, TEAM, VONAGE_SECRET
from tests.flows import log_in
from tests.test_socket_mode import APP_TOKEN, socket_bot, socket_slack  # noqa: F401  (fixtures)

DAY = 86400
PAGES = [{"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]}]
TYPED_KEY, TYPED_SECRET = "newkey99", "Typed-Vonage-Secret-7f3a"
WRONG_SECRET = "Wrong-Typed-Secret-0c1d"


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> Iterator[tuple[str, str]]:
        for r in self.records:
            yield r.name, "\n".join([self.format(r), str(r.msg), repr(r.args), r.exc_text or "", r.stack_info or ""])


@pytest.fixture
def captured() -> Iterator[Everything]:
    """Root at DEBUG, every existing logger reset to inherit it and propagate."""
    manager = logging.root.manager
    saved = {
        name: (lg.level, lg.propagate, lg.disabled)
        for name, lg in manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    root_level = logging.root.level
    handler = Everything()
    logging.root.addHandler(handler)
    logging.root.setLevel(logging.DEBUG)
    for name in saved:
        lg = logging.getLogger(name)
        lg.setLevel(logging.NOTSET)
        lg.propagate, lg.disabled = True, False
    yield handler
    logging.root.removeHandler(handler)
    logging.root.setLevel(root_level)
    for name, (level, propagate, disabled) in saved.items():
        lg = logging.getLogger(name)
        lg.setLevel(level)
        lg.propagate, lg.disabled = propagate, disabled


def issued_secrets(graph) -> set[str]:  # type: ignore[no-untyped-def]
    """Every token and code the fake Graph handed out during the run."""
    return set(graph.tokens) | {str(c) for c in getattr(graph, "codes", {})}


def assert_clean(handler: Everything, secrets: set[str]) -> None:
    secrets = {s for s in secrets if s}
    assert len(handler.records) > 50, "capture is not working"
    leaks = [(name, s) for name, text in handler.texts() for s in secrets if s in text]
    assert not leaks, leaks[:5]


def key_values(key: str, secret: str) -> dict[str, dict[str, dict[str, str]]]:
    return {
        "api_key": {"api_key": {"type": "plain_text_input", "value": key}},
        "api_secret": {"api_secret": {"type": "plain_text_input", "value": secret}},
    }


def test_no_secret_in_any_record_through_login_link_keys_and_sweep(captured, bot, graph, vonage):
    vonage.add_key(TYPED_KEY, TYPED_SECRET)
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 365 * DAY)
    bot.slack.wait_message("Connected to Facebook")
    bot.command("link 101", channel="CLINK")
    bot.slack.wait_response("Linked *Acme Coffee*")
    assert bot.command("keys add", user="UADMIN").status_code == 200
    bot.slack.wait_for(lambda: bot.slack.calls("POST", "/api/views.open"), timeout=5)
    assert bot.submit("keys_add_modal", key_values(TYPED_KEY, TYPED_SECRET), user="UADMIN").status_code == 200
    bot.slack.wait_message(":key: Added Vonage API key")
    refused = bot.submit("keys_add_modal", key_values("otherkey1", WRONG_SECRET), user="UADMIN")
    assert "api_secret" in refused.json()["errors"] and WRONG_SECRET not in refused.text  # refused by Vonage
    graph.kill_page_token("101")  # the probe finds a dead token and alerts
    report = asyncio.run(run_sweep_once(bot.services.settings, FixedClock(START + 80 * DAY), probe=True))
    assert report, "the sweep posted nothing"
    assert bot.store.key_secret(TEAM, TYPED_KEY) == TYPED_SECRET
    names = {name for name, _ in captured.texts()}
    assert {"slack_bolt.AsyncApp", "httpx", "httpcore.http11", "slack_sdk.web.async_base_client"} <= names
    secrets = {
        APP_SECRET,
        SIGNING_SECRET,
        BOT_TOKEN,
        VONAGE_SECRET,
        TYPED_SECRET,
        WRONG_SECRET,
        bot.services.settings.fblink_secret_key,
        *issued_secrets(graph),
        # the login prompt's response_url: kept with the login state, used to mark the prompt done
        f"{bot.slack.url}/response/r",
    }
    assert bot.slack.wait_response("Connected to Facebook as")["replace_original"] is True
    assert_clean(captured, secrets)


def test_no_typed_secret_in_any_record_over_socket_mode(captured, socket_bot, vonage):
    vonage.add_key(TYPED_KEY, TYPED_SECRET)
    socket_bot.command("keys add", user="UADMIN")
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "fake"},
        "user": {"id": "UADMIN", "username": "admin", "team_id": TEAM},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "trigger_id": "1.2.trigger",
        "view": {
            "id": "VSOCK1",
            "type": "modal",
            "callback_id": "keys_add_modal",
            "private_metadata": "",
            "state": {"values": key_values(TYPED_KEY, TYPED_SECRET)},
            "hash": "h1",
        },
    }
    envelope = socket_bot.socket.send_envelope("interactive", payload)
    socket_bot.socket.wait_ack(envelope, timeout=5)
    socket_bot.slack.wait_message(":key: Added Vonage API key")
    # The Socket Mode client dumped the envelope, modal state and all, at DEBUG: redacted.
    dumps = [text for name, text in captured.texts() if name.startswith("slack_bolt") and "plain_text_input" in text]
    assert dumps and all("[redacted]" in text for text in dumps)
    assert_clean(captured, {TYPED_SECRET, APP_TOKEN, BOT_TOKEN, VONAGE_SECRET, APP_SECRET, "legacy-verification-token"})


def test_child_logger_under_its_own_handler_is_redacted():
    """The case a parent-logger filter misses: a child logger with a handler of its own."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    child = logging.getLogger("httpcore.http11.redaction-test")
    child.addHandler(Keep(logging.DEBUG))
    child.setLevel(logging.DEBUG)
    child.propagate = False
    try:
        child.debug(
            "GET %s with %r", "https://g.test/me?access_token=EAAsecretsecret1", {"Authorization": "Bearer abc.def-ghi"}
        )
        try:
            raise RuntimeError("upstream said client_secret=hunter2hunter2")
        except RuntimeError:
            child.exception("failed")
    finally:
        child.handlers.clear()
    text = " ".join(f"{r.getMessage()} {r.args!r} {r.exc_text}" for r in records)
    assert "EAAsecretsecret1" not in text and "abc.def-ghi" not in text and "hunter2hunter2" not in text
    assert "access_token=[redacted]" in text and "'Authorization': '[redacted]'" in text and "RuntimeError" in text


@pytest.mark.parametrize(
    "line,secret",
    [
        ("GET /me?access_token=EAAabc123456&appsecret_proof=ff01", "EAAabc123456"),
        ("GET /me?access_token=EAAabc123456&appsecret_proof=ff01", "ff01"),
        ("xoxb-1-2-abc xapp-1-A1-xyz xoxp-9-8-7", "xoxb-1-2-abc"),
        ("xoxb-1-2-abc xapp-1-A1-xyz xoxp-9-8-7", "xapp-1-A1-xyz"),
        ("xoxb-1-2-abc xapp-1-A1-xyz xoxp-9-8-7", "xoxp-9-8-7"),
        ("token EAAGm0PX4ZCpsBAKj9 seen", "EAAGm0PX4ZCpsBAKj9"),
        ("/oauth/access_token?client_id=1&client_secret=s3cr3t&code=AQfake00112233", "s3cr3t"),
        ("/oauth/access_token?client_id=1&client_secret=s3cr3t&code=AQfake00112233", "AQfake00112233"),
        ("/facebook/callback?code=AQabcdefgh&state=Zx9-Ab_cdEFghij", "Zx9-Ab_cdEFghij"),
        ("grant_type=fb_exchange_token&fb_exchange_token=shortlived99", "shortlived99"),
        ("debug_token?input_token=EAAx1y2z3w4&access_token=123%7Capp-secret-x", "app-secret-x"),
        ("Authorization: Basic YWJjZDEyMzQ6c2VjcmV0", "YWJjZDEyMzQ6c2VjcmV0"),
        ("{'Authorization': 'Bearer tok.en-value'}", "tok.en-value"),
        ('{"access_token": "opaque-value-1", "token_type": "bearer"}', "opaque-value-1"),
        ('{"state": "oauthstatevalue1", "code": "AQcodevalue22"}', "oauthstatevalue1"),
        ('{"state": "oauthstatevalue1", "code": "AQcodevalue22"}', "AQcodevalue22"),
        ("{'api_secret': {'type': 'plain_text_input', 'value': 'typed \\' words'}}", "words"),
        ('{"value": "typed-in", "type": "plain_text_input"}', "typed-in"),
        ("payload=%7B%22type%22%3A%22plain_text_input%22%2C%22value%22%3A%22pct-secret%22%7D", "pct-secret"),
        ("Credentials(api_key='k1', api_secret='repr-secret')", "repr-secret"),
        ("POST https://hooks.slack.com/actions/T0001/1234/AbCdEfGh123 done", "1234/AbCdEfGh123"),
        ('{"response_url": "https://hooks.slack.com/commands/T1/22/Zz9"}', "22/Zz9"),
        ("token=x&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1%2F22%2FZz9&x=1", "Zz9"),
        ("response_url=http%3A%2F%2F127.0.0.1%3A9%2Fresponse%2Fhook-abc&text=", "hook-abc"),
    ],
)
def test_redact_patterns(line, secret):
    assert secret not in redact(line)


def test_redact_is_idempotent():
    for line in (
        "GET /me?access_token=EAAabc123456&code=AQabcdefgh1",
        '{"api_secret": "x"} Bearer abc',
        "{'type': 'plain_text_input', 'value': 'v'}",
    ):
        once = redact(line)
        assert redact(once) == once


def test_formatters_that_read_args_keep_working():
    """uvicorn's access log unpacks record.args: the arguments stay a tuple, each one redacted."""
    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/facebook/callback?code=AQcode12345678&state=st4t3v4lu3xx", "1.1", 200),
        None,
    )
    _client, _method, path, _version, status = record.args
    assert path == "/facebook/callback?code=[redacted]&state=[redacted]" and status == 200
    assert (
        record.getMessage() == '127.0.0.1:5000 - "GET /facebook/callback?code=[redacted]&state=[redacted] HTTP/1.1" 200'
    )
    plain = logging.getLogger("x").makeRecord("x", logging.INFO, __file__, 1, "linked %s in %d ms", ("P1", 5), None)
    assert plain.args == ("P1", 5) and plain.msg == "linked %s in %d ms"


def test_redact_keeps_harmless_text():
    line = 'Graph error code=190 subcode=460 state=ok "token_type": "bearer" linked Page 101 in 0.2 s'
    assert redact(line) == line


def test_records_made_without_the_factory_are_scrubbed_by_the_handler_filter():
    record = logging.makeLogRecord({"msg": "secret %s", "args": ("xoxb-9-9-leak",), "levelno": logging.INFO})
    from bot.logs import RedactingFilter

    assert RedactingFilter().filter(record) is True
    assert "xoxb-9-9-leak" not in record.getMessage() and "xoxb-9-9-leak" not in repr(record.args)
    again = scrub(record)
    assert again is record and record.request_id == "-"


def test_serve_at_debug_writes_no_secret(tmp_path, slack):
    """The real entry point, FBLINK_LOG_LEVEL=DEBUG, JSON lines: nothing configured leaks at start-up."""
    import socket
    import subprocess
    import sys

    import httpx

    from tests.test_store_settings_cli import BASE_ENV, KEY, clean_env

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = clean_env(
        **{
            **BASE_ENV,
            "SLACK_API_URL": slack.url + "/api/",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "FACEBOOK_APP_SECRET": APP_SECRET,
            "VONAGE_API_SECRET": VONAGE_SECRET,
            "FBLINK_METRICS_TOKEN": "metrics-token-0123456789",
            "FBLINK_DATABASE": str(tmp_path / "d.db"),
            "FBLINK_LOG_LEVEL": "DEBUG",
            "FBLINK_LOG_FORMAT": "json",
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/metrics",
                    headers={"Authorization": "Bearer metrics-token-0123456789"},
                    timeout=1,
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
                time.sleep(0.1)
        assert r.status_code == 200
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert '"level": "debug"' in err
    for secret in (KEY, BOT_TOKEN, SIGNING_SECRET, APP_SECRET, VONAGE_SECRET, "metrics-token-0123456789"):
        assert secret not in err


def test_response_url_is_redacted_from_the_webhook_clients_debug_records(captured, bot, graph):
    """Issue 17, item 7: slack_sdk.webhook.async_client logs the response_url it posts to at DEBUG;
    whoever holds one can post into the user's conversation for 30 minutes."""
    log_in(bot, graph, pages=PAGES)
    hook = "hook-7f3a9c2b"
    bot.command("pages", response=hook)
    answer = bot.slack.wait_response("Acme Coffee")
    assert answer  # fblink answered through that response_url
    webhook = [r for r in captured.records if r.name.startswith("slack_sdk.webhook")]
    assert webhook, "the webhook client logged nothing at DEBUG: the test would prove nothing"
    assert any("[redacted]" in r.getMessage() for r in webhook)
    leaks = [(name, text) for name, text in captured.texts() if f"response/{hook}" in text]
    assert not leaks, leaks[:3]
