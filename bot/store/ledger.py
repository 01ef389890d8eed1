"""The reminder ledger: claim before posting, confirm after (exactly once across processes).

The right to post a threshold is a row with a unique (link, kind, period, threshold)
key, inserted inside a ``BEGIN IMMEDIATE`` transaction; the post is confirmed with
its message ts. An unconfirmed claim is handed out again once its lease runs out.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from bot.clock import DAY
from bot.store.models import Claim, Link

if TYPE_CHECKING:
    from bot.store.core import Store


def next_threshold_due(expires_at: int, thresholds: tuple[int, ...], below: int | None) -> tuple[int | None, int | None]:
    """The next threshold (days) after ``below`` in this period and when it falls due; (None, None) when done."""
    steps = sorted(set(thresholds) | {0}, reverse=True)
    later = [t for t in steps if below is None or t < below]
    if not later:
        return None, None
    return later[0], expires_at - later[0] * DAY



class ReminderLedger:
    """Reminder rows of one Store (``store.reminders``)."""

    def __init__(self, store: "Store") -> None:
        self.store = store

    def claim_due(self, *, now: int, thresholds: tuple[int, ...], lease: int, limit: int = 1000) -> list[Claim]:
        """Find due links through the partial index, claim the most urgent threshold of each.

        One IMMEDIATE transaction: two processes sweeping the same file serialize here,
        and the unique (link, kind, period, threshold) key makes a second claim impossible.
        Claims older than ``lease`` that were never confirmed (a crash, a failed post) are
        handed out again.
        """
        steps = sorted(set(thresholds) | {0}, reverse=True)
        claims: list[Claim] = []
        with self.store.transaction():
            rows = list(self.store.db.query(
                "SELECT * FROM links WHERE status = 'active' AND next_due_at IS NOT NULL AND next_due_at <= ?"
                " ORDER BY next_due_at LIMIT ?", [now, limit]))
            for row in rows:
                link = Link.from_row(row)
                assert link.expires_at is not None
                due = [t for t in steps if link.expires_at - t * DAY <= now]
                if not due:  # next_due_at came from other thresholds (FBLINK_REMINDER_DAYS changed): reschedule
                    self.store.db.execute("UPDATE links SET next_due_at = ? WHERE id = ?",
                                     [link.expires_at - steps[0] * DAY, link.id])
                    continue
                urgent = min(due)
                _, nxt = next_threshold_due(link.expires_at, thresholds, urgent)
                self.store.db.execute("UPDATE links SET next_due_at = ? WHERE id = ?", [nxt, link.id])
                if link.muted:
                    continue
                claim_id = secrets.token_hex(8)
                cur = self.store.db.execute(
                    "INSERT INTO reminders (link_id, team_id, kind, period, threshold, status, claimed_at, claim_id)"
                    " VALUES (?, ?, 'expiry', ?, ?, 'claimed', ?, ?) ON CONFLICT DO NOTHING",
                    [link.id, link.team_id, link.period, urgent, now, claim_id],
                )
                if cur.rowcount == 1:
                    claims.append(Claim(cur.lastrowid, claim_id, "expiry", urgent, link))
            stale = list(self.store.db.query(
                "SELECT id, link_id, kind, period, threshold FROM reminders WHERE status = 'claimed' AND claimed_at <= ?"
                " ORDER BY claimed_at LIMIT ?", [now - lease, limit]))
            for r in stale:
                link = self.store.get_link_by_id(r["link_id"])
                claim_id = secrets.token_hex(8)
                self.store.db.execute("UPDATE reminders SET claimed_at = ?, claim_id = ?, attempts = attempts + 1 WHERE id = ?",
                                 [now, claim_id, r["id"]])
                outdated = (
                    link is None or link.status != "active" or link.muted
                    or r["period"] != link.period  # re-linked since: that reminder is moot
                    or (r["kind"] == "broken" and link.broken_at is None)  # mended since
                )
                if outdated:
                    self.store.db.execute("UPDATE reminders SET status = 'dropped' WHERE id = ?", [r["id"]])
                    continue
                claims.append(Claim(r["id"], claim_id, r["kind"], r["threshold"], link))
        return claims


    def claim_breakage(self, link: Link, *, now: int) -> Claim | None:
        """Record a newly broken token and claim its alert (once per breakage)."""
        with self.store.transaction():
            row = self.store.one("SELECT broken_at, breakages FROM links WHERE id = ?", [link.id])
            if row is None or row["broken_at"] is not None:
                self.store.db.execute("UPDATE links SET checked_at = ? WHERE id = ?", [now, link.id])
                return None
            seq = row["breakages"] + 1
            self.store.db.execute("UPDATE links SET broken_at = ?, breakages = ?, checked_at = ? WHERE id = ?",
                             [now, seq, now, link.id])
            claim_id = secrets.token_hex(8)
            cur = self.store.db.execute(
                "INSERT INTO reminders (link_id, team_id, kind, period, threshold, status, claimed_at, claim_id)"
                " VALUES (?, ?, 'broken', ?, ?, 'claimed', ?, ?) ON CONFLICT DO NOTHING",
                [link.id, link.team_id, link.period, seq, now, claim_id],
            )
            if cur.rowcount != 1:
                return None
            fresh = self.store.get_link_by_id(link.id)
            assert fresh is not None
            return Claim(cur.lastrowid, claim_id, "broken", seq, fresh)


    def mark_checked(self, link_id: int, *, now: int) -> None:
        self.store.db.execute("UPDATE links SET checked_at = ? WHERE id = ?", [now, link_id])


    def links_to_probe(self, *, now: int, every: int = DAY, limit: int = 1000) -> list[tuple[Link, str | None]]:
        """Active links not checked for ``every`` seconds (partial index), with the token Vonage holds."""
        rows = self.store.db.query(
            "SELECT * FROM links WHERE status = 'active' AND checked_at <= ? ORDER BY checked_at LIMIT ?",
            [now - every, limit])
        return [(Link.from_row(r), self.store.vault.decrypt(r["token_enc"]) if r.get("token_enc") else None) for r in rows]


    def confirm(self, claim: Claim, *, channel_id: str, message_ts: str, now: int) -> bool:
        """The post went out: record where, so a relink can update it. False if the claim was lost."""
        cur = self.store.db.execute(
            "UPDATE reminders SET status = 'posted', posted_at = ?, channel_id = ?, message_ts = ? WHERE id = ? AND claim_id = ?",
            [now, channel_id, message_ts, claim.reminder_id, claim.claim_id])
        return cur.rowcount == 1


    def release(self, claim: Claim, *, error: str) -> None:
        """The post failed: make the claim stale at once so the next sweep retries it."""
        self.store.db.execute(
            "UPDATE reminders SET claimed_at = 0, last_error = ? WHERE id = ? AND claim_id = ? AND status = 'claimed'",
            [error[:200], claim.reminder_id, claim.claim_id])


    def posted_for_period(self, link_id: int, period: int) -> list[dict[str, Any]]:
        """Messages posted for a link period; ``shared`` > 1 marks a digest covering other Pages too."""
        return list(self.store.db.query(
            "SELECT id, kind, threshold, channel_id, message_ts,"
            " (SELECT COUNT(*) FROM reminders r2 WHERE r2.message_ts = reminders.message_ts"
            "  AND r2.channel_id = reminders.channel_id) AS shared"
            " FROM reminders WHERE link_id = ? AND period = ? AND status = 'posted' AND message_ts IS NOT NULL",
            [link_id, period]))


    def reminders_in_message(self, channel_id: str, message_ts: str) -> list[dict[str, Any]]:
        return list(self.store.db.query(
            "SELECT link_id, kind, period, threshold FROM reminders WHERE channel_id = ? AND message_ts = ? ORDER BY id",
            [channel_id, message_ts]))


    def page_token_of(self, team_id: str, user_id: str | None, page_id: str) -> str | None:
        """The Page token we hold from the linker's login (None after they logged out)."""
        if not user_id:
            return None
        row = self.store.one("SELECT token_enc FROM fb_pages WHERE team_id = ? AND user_id = ? AND page_id = ?",
                         [team_id, user_id, page_id])
        return self.store.vault.decrypt(row["token_enc"]) if row else None
