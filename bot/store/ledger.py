"""The reminder ledger: claim before posting, confirm after (exactly once across processes).

The right to post a threshold is a row with a unique (link, kind, period, threshold)
key, inserted inside a ``BEGIN IMMEDIATE`` transaction; the post is confirmed with
its message ts. An unconfirmed claim is handed out again once its lease runs out.
"""

from __future__ import annotations

import secrets
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlite_utils import Database

from bot.clock import DAY
from bot.crypto import Vault
from bot.store.models import Claim, Link


class LedgerStore(Protocol):
    """What the ledger needs of the Store: its connection, transactions, reads and vault.

    Stated here (rather than importing the Store, which owns a ledger) so the two modules do
    not depend on each other, even for type checking.
    """

    db: Database
    vault: Vault

    def transaction(self) -> AbstractContextManager[None]: ...

    def select(self, sql: str, params: Any = ()) -> list[dict[str, Any]]: ...

    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None: ...

    def get_link_by_id(self, link_id: int) -> Link | None: ...


def next_threshold_due(
    expires_at: int, thresholds: tuple[int, ...], below: int | None
) -> tuple[int | None, int | None]:
    """The next threshold (days) after ``below`` in this period and when it falls due; (None, None) when done."""
    steps = sorted(set(thresholds) | {0}, reverse=True)
    later = [t for t in steps if below is None or t < below]
    if not later:
        return None, None
    return later[0], expires_at - later[0] * DAY


ABANDONED = "abandoned: the process stopped between claim and post"


class ReminderLedger:
    """Reminder rows of one Store (``store.reminders``)."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    def claim_due(self, *, now: int, thresholds: tuple[int, ...], lease: int, limit: int = 200) -> list[Claim]:
        """One batch of :meth:`claim_batch` (kept for callers that want a single capped batch)."""
        return self.claim_batch(now=now, thresholds=thresholds, lease=lease, limit=limit).claims

    def claim_batch(self, *, now: int, thresholds: tuple[int, ...], lease: int, limit: int = 200) -> ClaimBatch:
        """Find due links through the partial index, claim the most urgent threshold of each.

        One short IMMEDIATE transaction per batch: two processes sweeping the same file
        serialize here, and the unique (link, kind, period, threshold) key makes a second
        claim impossible. Every row it reads is moved on (next threshold, new claim time,
        dropped or marked unreadable), so calling it until ``touched`` is 0 ends. Claims
        older than ``lease`` that were never confirmed are handed out again, fewest failed
        attempts first; one superseded by a more urgent threshold that is now due is dropped.
        """
        steps = sorted(set(thresholds) | {0}, reverse=True)
        out = ClaimBatch()
        with self.store.transaction():
            rows = self.store.select(
                "SELECT * FROM links WHERE status = 'active' AND next_due_at IS NOT NULL AND next_due_at <= ?"
                " ORDER BY next_due_at LIMIT ?",
                [now, limit],
            )
            out.touched += len(rows)
            for row in rows:
                try:
                    claim = self._claim_row(row, steps, thresholds, now)
                except Exception:  # one bad row never stops the others
                    self.store.db.execute("UPDATE links SET next_due_at = NULL WHERE id = ?", [row["id"]])
                    if self.mark_unreadable(row["id"], now=now):
                        out.bad.append(row["id"])
                    continue
                if claim is not None:
                    out.claims.append(claim)
            stale = self.store.select(
                "SELECT id, link_id, kind, period, threshold, attempts, claimed_at FROM reminders"
                " WHERE status = 'claimed' AND claimed_at <= ? ORDER BY attempts, claimed_at LIMIT ?",
                [now - lease, limit],
            )
            out.touched += len(stale)
            for r in stale:
                claim_id = secrets.token_hex(8)
                # A released claim has claimed_at 0 and its attempt counted; any other stale claim was
                # abandoned (its process stopped between claim and post), which counts as an attempt too.
                abandoned = r["claimed_at"] > 0
                r["attempts"] += abandoned
                self.store.db.execute(
                    "UPDATE reminders SET claimed_at = ?, claim_id = ?, attempts = ?,"
                    " last_error = CASE WHEN ? THEN ? ELSE last_error END WHERE id = ?",
                    [now, claim_id, r["attempts"], abandoned, ABANDONED, r["id"]],
                )
                try:
                    link = self.store.get_link_by_id(r["link_id"])
                except Exception:
                    self.store.db.execute(
                        "UPDATE reminders SET status = 'failed', last_error = 'unreadable link',"
                        " finished_at = ? WHERE id = ?",
                        [now, r["id"]],
                    )
                    if self.mark_unreadable(r["link_id"], now=now):
                        out.bad.append(r["link_id"])
                    continue
                why = _outdated(r, link, steps, now)
                if why:
                    self.store.db.execute(
                        "UPDATE reminders SET status = 'dropped', last_error = ?, finished_at = ? WHERE id = ?",
                        [why, now, r["id"]],
                    )
                    out.superseded += why == "superseded"
                    continue
                assert link is not None
                out.claims.append(Claim(r["id"], claim_id, r["kind"], r["threshold"], link, r["attempts"]))
        return out

    def _claim_row(self, row: dict[str, Any], steps: list[int], thresholds: tuple[int, ...], now: int) -> Claim | None:
        link = Link.from_row(row)
        if link.expires_at is None:
            raise ValueError("a due link without an expiry")
        due = [t for t in steps if link.expires_at - t * DAY <= now]
        if not due:  # next_due_at came from other thresholds (FBLINK_REMINDER_DAYS changed): reschedule
            self.store.db.execute(
                "UPDATE links SET next_due_at = ? WHERE id = ?", [link.expires_at - steps[0] * DAY, link.id]
            )
            return None
        urgent = min(due)
        _, nxt = next_threshold_due(link.expires_at, thresholds, urgent)
        self.store.db.execute("UPDATE links SET next_due_at = ? WHERE id = ?", [nxt, link.id])
        if link.muted:
            return None
        claim_id = secrets.token_hex(8)
        cur = self.store.db.execute(
            "INSERT INTO reminders (link_id, team_id, kind, period, threshold, status, claimed_at, claim_id)"
            " VALUES (?, ?, 'expiry', ?, ?, 'claimed', ?, ?) ON CONFLICT DO NOTHING",
            [link.id, link.team_id, link.period, urgent, now, claim_id],
        )
        return Claim(int(cur.lastrowid or 0), claim_id, "expiry", urgent, link) if cur.rowcount == 1 else None

    def mark_unreadable(self, link_id: int, *, now: int) -> bool:
        """Flag a link whose row could not be read; True only the first time (log and count once)."""
        cur = self.store.db.execute(
            "UPDATE links SET unreadable_at = ? WHERE id = ? AND unreadable_at IS NULL", [now, link_id]
        )
        return cur.rowcount == 1

    def claim_breakage(self, link: Link, *, now: int) -> Claim | None:
        """Record a newly broken token and claim its alert (once per breakage)."""
        with self.store.transaction():
            row = self.store.one("SELECT broken_at, breakages FROM links WHERE id = ?", [link.id])
            if row is None or row["broken_at"] is not None:
                self.store.db.execute("UPDATE links SET checked_at = ? WHERE id = ?", [now, link.id])
                return None
            seq = row["breakages"] + 1
            self.store.db.execute(
                "UPDATE links SET broken_at = ?, breakages = ?, checked_at = ? WHERE id = ?", [now, seq, now, link.id]
            )
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
            return Claim(int(cur.lastrowid or 0), claim_id, "broken", seq, fresh)

    def mark_checked(self, link_id: int, *, now: int) -> None:
        self.store.db.execute("UPDATE links SET checked_at = ? WHERE id = ?", [now, link_id])

    def probe_batch(self, *, now: int, after: tuple[int, int], every: int = DAY, limit: int = 100) -> list[ProbeRow]:
        """Active links not checked for ``every`` seconds, after ``after`` = (checked_at, id), with the
        token Vonage holds. Decrypted row by row: a row that fails is returned with ``unreadable`` set."""
        rows = self.store.select(
            "SELECT * FROM links WHERE status = 'active' AND checked_at <= ? AND (checked_at, id) > (?, ?)"
            " ORDER BY checked_at, id LIMIT ?",
            [now - every, after[0], after[1], limit],
        )
        out = []
        for r in rows:
            try:
                link = Link.from_row(r)
                token = self.store.vault.decrypt(r["token_enc"]) if r.get("token_enc") else None
            except Exception:
                out.append(ProbeRow(r["id"], r["checked_at"] or 0, None, None, True))
                continue
            if link.unreadable_at is not None:  # readable again (re-linked, or the key was restored)
                self.store.db.execute("UPDATE links SET unreadable_at = NULL WHERE id = ?", [link.id])
            out.append(ProbeRow(link.id, r["checked_at"] or 0, link, token, False))
        return out

    def links_to_probe(self, *, now: int, every: int = DAY, limit: int = 1000) -> list[tuple[Link, str | None]]:
        """The readable rows of one :meth:`probe_batch` (for scripts)."""
        return [
            (p.link, p.token)
            for p in self.probe_batch(now=now, after=(-1, 0), every=every, limit=limit)
            if p.link is not None
        ]

    def confirm(self, claim: Claim, *, channel_id: str, message_ts: str, now: int) -> bool:
        """The post went out: record where, so a relink can update it. False if the claim was lost."""
        cur = self.store.db.execute(
            "UPDATE reminders SET status = 'posted', posted_at = ?, finished_at = ?, channel_id = ?, message_ts = ?"
            " WHERE id = ? AND claim_id = ?",
            [now, now, channel_id, message_ts, claim.reminder_id, claim.claim_id],
        )
        return cur.rowcount == 1

    def confirm_many(self, claims: list[Claim], *, channel_id: str, message_ts: str, now: int) -> int:
        """A digest went out: confirm all its claims in one transaction."""
        with self.store.transaction():
            return sum(self.confirm(c, channel_id=channel_id, message_ts=message_ts, now=now) for c in claims)

    def release(self, claim: Claim, *, error: str) -> int:
        """The post failed: count the attempt and make the claim stale at once so the next sweep
        retries it. Returns the attempts so far."""
        rows = self.store.db.execute(
            "UPDATE reminders SET claimed_at = 0, last_error = ?, attempts = attempts + 1"
            " WHERE id = ? AND claim_id = ? AND status = 'claimed' RETURNING attempts",
            [error[:200], claim.reminder_id, claim.claim_id],
        ).fetchall()
        return int(rows[0][0]) if rows else claim.attempts + 1

    def give_up(self, claim: Claim, *, error: str, now: int) -> None:
        """Too many failed posts: never retried (a failed row is not 'claimed', so no sweep sees it)."""
        self.store.db.execute(
            "UPDATE reminders SET status = 'failed', last_error = ?, finished_at = ? WHERE id = ? AND claim_id = ?",
            [error[:200], now, claim.reminder_id, claim.claim_id],
        )

    def drop(self, claim: Claim, *, why: str, now: int) -> None:
        self.store.db.execute(
            "UPDATE reminders SET status = 'dropped', last_error = ?, finished_at = ? WHERE id = ? AND claim_id = ?",
            [why, now, claim.reminder_id, claim.claim_id],
        )

    def prune(self, *, before: int, keep_audit: int = 10, limit: int = 500) -> tuple[int, int]:
        """Retention, one small batch: audit rows older than ``before`` (each Page keeps its
        ``keep_audit`` latest, so `history` still shows them) and finished reminder rows."""
        audit = self.store.db.execute(
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit a WHERE a.at < ? AND a.id < COALESCE(("
            " SELECT b.id FROM audit b WHERE b.team_id = a.team_id AND b.page_id IS a.page_id"
            " ORDER BY b.id DESC LIMIT 1 OFFSET ?), -1) LIMIT ?)",
            [before, keep_audit - 1, limit],
        ).rowcount
        reminders = self.store.db.execute(
            "DELETE FROM reminders WHERE id IN (SELECT id FROM reminders WHERE status != 'claimed'"
            " AND finished_at < ? LIMIT ?)",
            [before, limit],
        ).rowcount
        return audit, reminders

    def posted_for_period(self, link_id: int, period: int) -> list[dict[str, Any]]:
        """Messages posted for a link period; ``shared`` > 1 marks a digest covering other Pages too."""
        return list(
            self.store.db.query(
                "SELECT id, kind, threshold, channel_id, message_ts,"
                " (SELECT COUNT(*) FROM reminders r2 WHERE r2.message_ts = reminders.message_ts"
                "  AND r2.channel_id = reminders.channel_id) AS shared"
                " FROM reminders WHERE link_id = ? AND period = ? AND status = 'posted' AND message_ts IS NOT NULL",
                [link_id, period],
            )
        )

    def reminders_in_message(self, channel_id: str, message_ts: str) -> list[dict[str, Any]]:
        return list(
            self.store.db.query(
                "SELECT link_id, kind, period, threshold FROM reminders WHERE channel_id = ? AND message_ts = ? ORDER BY id",
                [channel_id, message_ts],
            )
        )

    def page_token_of(self, team_id: str, user_id: str | None, page_id: str) -> str | None:
        """The Page token we hold from the linker's login (None after they logged out)."""
        if not user_id:
            return None
        row = self.store.one(
            "SELECT token_enc FROM fb_pages WHERE team_id = ? AND user_id = ? AND page_id = ?",
            [team_id, user_id, page_id],
        )
        return self.store.vault.decrypt(row["token_enc"]) if row else None


@dataclass
class ClaimBatch:
    """What one claim batch did: the claims, how many rows it moved on, unreadable link ids."""

    claims: list[Claim] = field(default_factory=list)
    touched: int = 0
    superseded: int = 0
    bad: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ProbeRow:
    link_id: int
    checked_at: int
    link: Link | None  # None when the row could not be read
    token: str | None
    unreadable: bool


def _outdated(r: dict[str, Any], link: Link | None, steps: list[int], now: int) -> str:
    """Why a stale claim should not be posted any more ('' when it should)."""
    if link is None or link.status != "active" or link.muted:
        return "link gone or muted"
    if r["period"] != link.period:
        return "re-linked"  # re-linked since: that reminder is moot
    if r["kind"] == "broken" and link.broken_at is None:
        return "mended"
    if (
        r["kind"] == "expiry"
        and link.expires_at is not None
        and any(t < r["threshold"] and link.expires_at - t * DAY <= now for t in steps)
    ):
        return "superseded"  # a more urgent threshold is due now: post only that one
    return ""
