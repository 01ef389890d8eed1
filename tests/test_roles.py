"""Issue 19 item 1: process roles. `fblink serve --role web` answers Slack and never sweeps;
`fblink worker` sweeps and serves /healthz and /metrics only; both in real processes on one
database, configured as an operator would, against the fake Slack/Graph/Vonage."""

from __future__ import annotations

import time

from bot.app import create_app
from bot.crypto import Vault
from tests.conftest import TEAM, VONAGE_KEY
from tests.processes import metric, start
from tests.store_sync import sync_store

DAY = 86400
POSTED = 'fblink_reminders_total{outcome="posted"}'


def due_link(db: str, key: str, page: str, channel: str) -> None:
    """One active link whose 7-day reminder is due now (the processes run on the real clock)."""
    now = int(time.time())
    store = sync_store(db, Vault(key))
    store.upsert_link(
        TEAM,
        page,
        now=now,
        page_name=f"Acme Coffee {page}",
        api_key=VONAGE_KEY,
        linked_by="U1",
        channel_id=channel,
        expires_at=now + 5 * DAY,
        status="active",
        next_due_at=now - 60,
    )
    store.close()


def reminder_rows(db: str, key: str) -> list[tuple[str, str | None]]:
    store = sync_store(db, Vault(key))
    try:
        return [
            (r["status"], r["channel_id"]) for r in store.select("SELECT status, channel_id FROM reminders ORDER BY id")
        ]
    finally:
        store.close()


def test_a_web_process_answers_slack_and_never_sweeps_a_worker_posts_the_reminder(make_settings, slack):
    settings = make_settings()
    db, key = settings.database, settings.fblink_secret_key
    due_link(db, key, "101", "CREMIND")
    web = start(settings, "serve", "--role", "web")
    worker = None
    try:
        health = web.get("/healthz")
        assert health.json() == {"ok": True, "role": "web", "database": "ok", "draining": False}
        assert web.get("/readyz").json() == {"ready": True, "role": "web", "draining": False}
        for _ in range(3):  # acks work
            ack = web.command("help")
            assert ack.status_code == 200 and "fblink commands" in ack.text
        # A scheduler would have swept at start (its first run is due at once): the web process
        # is up and has answered, and nothing was posted nor claimed.
        assert slack.calls("POST", "/api/chat.postMessage") == []
        assert reminder_rows(db, key) == []

        worker = start(settings, "worker")
        assert worker.get("/healthz").json() == {"ok": True, "role": "worker", "database": "ok", "draining": False}
        slack.wait_for(lambda: slack.messages, timeout=20)
        msg = slack.wait_message("Acme Coffee 101")
        assert msg["channel"] == "CREMIND"
        slack.wait_for(lambda: reminder_rows(db, key) == [("posted", "CREMIND")], timeout=10)
        assert metric(worker.get("/metrics").text, POSTED) == 1
        assert metric(web.get("/metrics").text, POSTED) == 0
        assert [m["channel"] for m in slack.messages if m["method"] == "chat.postMessage"] == ["CREMIND"]

        # The worker answers Slack nothing and has no browser pages nor readiness: /healthz and /metrics only.
        for path in ("/readyz", "/facebook/login", "/facebook/callback"):
            assert worker.get(path).status_code == 404, path
        assert worker.command("help").status_code == 404
        assert web.command("help").status_code == 200
    finally:
        codes = [p.stop() for p in (web, worker) if p is not None]
    assert codes == [0, 0], web.err + (worker.err if worker else "")
    assert "fblink started as web" in web.err and "scheduler started" not in web.err
    assert worker is not None and "scheduler started" in worker.err and "fblink started as worker" in worker.err


def test_plain_serve_still_answers_and_sweeps_in_one_process(make_settings, slack):
    settings = make_settings()
    db, key = settings.database, settings.fblink_secret_key
    due_link(db, key, "202", "CBOTH")
    both = start(settings, "serve")
    try:
        assert both.get("/healthz").json()["role"] == "all"
        assert both.command("help").status_code == 200
        msg = slack.wait_message("Acme Coffee 202", timeout=20)
        assert msg["channel"] == "CBOTH"
        assert both.get("/readyz").status_code == 200
    finally:
        code = both.stop()
    assert code == 0, both.err
    assert reminder_rows(db, key) == [("posted", "CBOTH")]


def test_only_a_loop_shared_with_acks_takes_turns(make_settings) -> None:  # type: ignore[no-untyped-def]
    """Turns, request pacing and the GC deferral protect acks from the sweep: a worker (and
    `fblink sweep`) has no acks on its loop, so it runs without them; `fblink serve` keeps them."""
    settings = make_settings()
    assert create_app(settings, role="all").services.turns.shared
    assert not create_app(settings, role="worker").services.turns.shared
