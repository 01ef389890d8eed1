"""Issue 9 items 7 (the bad-row half) and 14: one bad row never stops the others; retention."""

from __future__ import annotations

import logging

from tests.conftest import START, TEAM
from tests.sweep_helpers import DAY, posts, rows, run_sweep, seed


def test_an_undecryptable_token_is_skipped_logged_once_counted_and_shown_broken(bot, caplog):
    good, bad = seed(bot, 2, channel="CX", token="EAAgood-token")
    garbage = "gAAAAAB-not-a-real-fernet-token-secretish"
    bot.store.execute("UPDATE links SET token_enc = ?, next_due_at = NULL WHERE id = ?", [garbage, bad])
    seed(bot, 1, channel="CY", prefix="9")  # a reminder due in another workspace's channel
    caplog.set_level(logging.INFO)
    report, metrics = run_sweep(bot, START + DAY, probe=True)
    assert any("to CY" in r for r in report)  # the old sweep raised before any reminder
    assert metrics["fblink_unreadable_rows_total{links}"] == 1
    hits = [r.getMessage() for r in caplog.records if f"link {bad}" in r.getMessage()]
    assert len(hits) == 1 and garbage not in caplog.text
    assert bot.store.get_link_by_id(bad).unreadable_at == START + DAY
    assert bot.store.get_link_by_id(good).unreadable_at is None
    status = bot.command("status").text
    assert "fblink cannot read this link's stored token" in status and ":boom: *broken*" in status
    caplog.clear()
    _, metrics = run_sweep(bot, START + 2 * DAY + 10, probe=True)
    assert f"link {bad}" not in caplog.text and metrics.get("fblink_unreadable_rows_total{links}", 0) == 0


def test_an_unparseable_due_row_is_skipped_and_the_rest_go_out(bot):
    ids = seed(bot, 3, channel="CX")
    bot.store.execute("UPDATE links SET expires_at = NULL WHERE id = ?", [ids[1]])  # due, but no expiry
    report, metrics = run_sweep(bot, START)
    assert len(report) == 2 and len(posts(bot)) == 2
    assert metrics["fblink_unreadable_rows_total{links}"] == 1
    assert bot.store.get_link_by_id(ids[1]).next_due_at is None
    assert run_sweep(bot, START + 900)[0] == []


def test_a_fixed_row_is_readable_again(bot):
    (bad,) = seed(bot, 1, channel="CX", token="EAAx")
    bot.store.execute("UPDATE links SET token_enc = 'junk', next_due_at = NULL WHERE id = ?", [bad])
    run_sweep(bot, START + DAY, probe=True)
    assert bot.store.get_link_by_id(bad).unreadable_at is not None
    bot.store.execute(
        "UPDATE links SET token_enc = ?, checked_at = 0 WHERE id = ?", [bot.store.vault.encrypt("EAAnew"), bad]
    )
    run_sweep(bot, START + DAY + 900, probe=True)
    assert bot.store.get_link_by_id(bad).unreadable_at is None


def test_retention_prunes_old_rows_in_batches_and_history_keeps_the_latest(bot):
    old, recent = START - 500 * DAY, START - DAY
    writes: list = []
    for i in range(1_200):
        writes.append(
            (
                "INSERT INTO audit (team_id, at, user_id, action, page_id, detail, result)"
                " VALUES (?, ?, 'U1', 'link', 'P1', ?, 'ok')",
                [TEAM, old + i, f"old {i}"],
            )
        )
    for i in range(3):
        writes.append(
            (
                "INSERT INTO audit (team_id, at, user_id, action, page_id, detail, result)"
                " VALUES (?, ?, 'U1', 'unlink', 'P2', ?, 'ok')",
                [TEAM, old + i, f"lone {i}"],
            )
        )
    writes.append(
        (
            "INSERT INTO audit (team_id, at, user_id, action, page_id, detail, result)"
            " VALUES (?, ?, 'U1', 'relink', 'P1', 'recent', 'ok')",
            [TEAM, recent],
        )
    )
    bot.store.batch(writes)
    writes = []
    (link_id,) = seed(bot, 1, channel="CX")
    bot.store.execute("UPDATE links SET next_due_at = NULL")
    for i in range(700):
        writes.append(
            (
                "INSERT INTO reminders (link_id, team_id, kind, period, threshold, status, claimed_at,"
                " posted_at, finished_at) VALUES (?, ?, 'expiry', ?, 14, 'posted', ?, ?, ?)",
                [link_id, TEAM, 100 + i, old, old, old],
            )
        )
    writes.append(
        (
            "INSERT INTO reminders (link_id, team_id, kind, period, threshold, status, claimed_at, posted_at,"
            " finished_at) VALUES (?, ?, 'expiry', 99, 7, 'posted', ?, ?, ?)",
            [link_id, TEAM, recent, recent, recent],
        )
    )
    writes.append(
        (
            "INSERT INTO reminders (link_id, team_id, kind, period, threshold, status, claimed_at)"
            " VALUES (?, ?, 'expiry', 98, 7, 'claimed', ?)",
            [link_id, TEAM, old],
        )
    )
    bot.store.batch(writes)
    _, metrics = run_sweep(bot, START)
    history = bot.store.history(TEAM, "P1")
    assert len(history) == 10 and history[0]["detail"] == "recent" and history[1]["detail"] == "old 1199"
    assert rows(bot, "SELECT COUNT(*) AS n FROM audit WHERE page_id = 'P1'")[0]["n"] == 10
    assert len(bot.store.history(TEAM, "P2")) == 3  # a Page's last entries stay, however old
    left = rows(bot, "SELECT status, period FROM reminders ORDER BY period")
    assert [(r["status"], r["period"]) for r in left] == [("dropped", 98), ("posted", 99)]  # moot, dropped now: kept
    assert metrics["fblink_pruned_rows_total{audit}"] == 1_191 and metrics["fblink_pruned_rows_total{reminders}"] == 700


def test_retention_days_is_configurable(bot):
    bot.store.audit(TEAM, "link", now=START - 40 * DAY, user_id="U1", page_id="P1")
    for i in range(10):
        bot.store.audit(TEAM, "link", now=START - DAY + i, user_id="U1", page_id="P1")
    run_sweep(bot, START)
    assert len(rows(bot, "SELECT id FROM audit")) == 11
    run_sweep(bot, START, fblink_retention_days=30)
    assert len(rows(bot, "SELECT id FROM audit")) == 10
