"""Idempotency, graceful shutdown, observability."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from bot.clock import iso
from bot.crypto import Vault
from bot.fakes import slack_payloads as sp
from tests.conftest import START, TEAM, VONAGE_KEY, free_port
from tests.flows import log_in, text_of
from tests.store_sync import sync_store
from tests.test_reminders import cli_env, run_cli

DAY = 86400
PAGES = [{"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE"]}]


def test_slash_command_redelivered_links_once(bot, graph, vonage):
    log_in(bot, graph, pages=PAGES)
    body = sp.form_body(
        sp.slash_command(
            text="link 101",
            team_id=TEAM,
            user_id="U1",
            channel_id="C1",
            response_url=bot.slack.response_url("r", "C1", "U1"),
            trigger_id="same.trigger.1",
        )
    )
    bot.post_signed(body, "application/x-www-form-urlencoded")
    bot.slack.wait_response("Linked")
    bot.post_signed(
        body,
        "application/x-www-form-urlencoded",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    time.sleep(0.5)
    assert len(vonage.calls("POST", "/beta/chatapp-accounts/messenger")) == 1
    assert len([r for r in bot.slack.responses if "Linked" in text_of(r)]) == 1


def test_double_clicked_relink_runs_once(bot, graph, vonage):
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 365 * DAY)
    bot.command("link 101")
    bot.slack.wait_response("Linked")
    bot.slack.responses.clear()
    bot.click("page_relink", "101", message_ts="1700000000.000555")
    bot.click("page_relink", "101", message_ts="1700000000.000555")
    bot.slack.wait_response("Re-linked")
    time.sleep(0.5)
    assert bot.store.get_link(TEAM, "101").period == 2
    assert len(bot.slack.responses) == 1
    assert len(vonage.calls("PATCH", "/beta/chatapp-accounts/messenger/101")) == 1
    bot.clock.advance(31)  # a deliberate click later is a new request
    bot.click("page_relink", "101", message_ts="1700000000.000555")
    bot.slack.wait_for(lambda: len(bot.slack.responses) == 2)
    assert bot.store.get_link(TEAM, "101").period == 3


def test_modal_submitted_twice_links_once(bot, graph, vonage):
    log_in(bot, graph, pages=PAGES)
    bot.command("pages")
    bot.slack.wait_response("Acme")
    values = {
        "page": {"page": {"selected_option": {"value": "101"}}},
        "key": {"link_modal_key": {"selected_option": {"value": VONAGE_KEY}}},
    }
    bot.submit("link_modal", values, view_id="VSAME")
    bot.submit("link_modal", values, view_id="VSAME")
    bot.slack.wait_message("Linked *Acme Coffee*")
    time.sleep(0.5)
    assert len([m for m in bot.slack.messages if "Linked *Acme" in text_of(m)]) == 1
    assert len(vonage.calls("POST", "/beta/chatapp-accounts/messenger")) == 1


def test_request_id_and_metrics(bot, graph, vonage):
    r = bot.command("help")
    assert len(r.headers["x-request-id"]) == 12
    assert r.headers["x-request-id"] != bot.command("help").headers["x-request-id"]
    bot.store.upsert_link(
        TEAM, "9", now=START, page_name="P", api_key=VONAGE_KEY, expires_at=START - 1, status="active"
    )
    text = bot.http.get(bot.url + "/metrics").text
    assert 'fblink_links{state="expired"} 1.0' in text
    assert "fblink_ack_latency_seconds_bucket" in text
    log_in(bot, graph, pages=PAGES)
    text = bot.http.get(bot.url + "/metrics").text
    assert 'fblink_outbound_requests_total{status="200",upstream="Facebook"}' in text


def test_healthz_reports_a_broken_database(bot):
    bot.store.run(lambda store: store.engine.close())  # the connection (SQLite) or the pool (PostgreSQL) is gone
    r = bot.http.get(bot.url + "/healthz")
    assert r.status_code == 503 and r.json()["database"] == "error"


def test_sigterm_during_sweep_loses_and_doubles_nothing(tmp_path, make_settings, slack):
    settings = make_settings(fblink_database=str(tmp_path / "grace.db"))
    now = int(time.time())
    store = sync_store(settings.database, Vault(settings.fblink_secret_key))
    store.upsert_link(
        TEAM,
        "101",
        now=now,
        page_name="Acme",
        api_key=VONAGE_KEY,
        linked_by="U1",
        channel_id="C1",
        expires_at=now + 5 * DAY,
        status="active",
        next_due_at=now - 9 * DAY,
    )
    store.close()
    slack.fail(
        "POST /api/chat.postMessage",
        delay=1.0,
        status=200,
        body={"ok": True, "channel": "C1", "ts": "1700000099.000100"},
        times=1,
    )
    port = free_port()
    env = cli_env(settings)
    env["FBLINK_LOG_FORMAT"] = "json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        slack.wait_for(lambda: slack.calls("POST", "/api/chat.postMessage"), timeout=20)  # the post is in flight
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (0, -signal.SIGTERM), err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines and all("request_id" in line and "level" in line for line in lines)
    db = sync_store(settings.database, Vault(settings.fblink_secret_key))
    rows = db.select("SELECT status, message_ts FROM reminders")
    db.close()
    assert rows == [{"status": "posted", "message_ts": "1700000099.000100"}]  # the running sweep finished and confirmed
    out = run_cli(settings, "sweep", "--now", iso(now + 60))
    assert out.stdout.strip() == "nothing due", out.stderr
    assert len(slack.calls("POST", "/api/chat.postMessage")) == 1


def test_scheduler_runs_a_sweep_at_start(start_app, make_settings, slack, clock):
    settings = make_settings()
    store = sync_store(settings.database, Vault(settings.fblink_secret_key))
    store.upsert_link(
        TEAM,
        "101",
        now=clock.now(),
        page_name="Acme",
        api_key=VONAGE_KEY,
        linked_by="U1",
        channel_id="CSCHED",
        expires_at=clock.now() + 2 * DAY,
        status="active",
        next_due_at=clock.now() - DAY,
    )
    store.close()
    bot = start_app(scheduler=True, fblink_secret_key=settings.fblink_secret_key)
    msg = slack.wait_message("Acme", timeout=15)
    assert msg["channel"] == "CSCHED" and "expires in *2 days*" in text_of(msg)
    assert bot.store.get_link(TEAM, "101").next_due_at == clock.now() + 2 * DAY - DAY
