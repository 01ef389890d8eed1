"""The reminder ledger: claim before posting, confirm after (exactly once across processes).

The right to post a threshold is a row with a unique (link, kind, period, threshold)
key, inserted inside one write transaction; the post is confirmed with its message ts.
An unconfirmed claim is handed out again once its lease runs out, by the database's
clock. On SQLite the transaction is ``BEGIN IMMEDIATE`` (writers take turns); on
PostgreSQL (READ COMMITTED) each batch locks the rows it reads ``FOR UPDATE SKIP
LOCKED``, so two workers take different rows, and the unique key still refuses a second
claim should a row be read twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.clock import DAY
from bot.crypto import Vault
from bot.store.engine import Dialect, Params, Row
from bot.store.ledger_reads import LedgerReads
from bot.store.models import Claim, Link


class LedgerStore(Protocol):
    """What the ledger needs of the Store: statements, transactions, the clock and the vault.

    Stated here (rather than importing the Store, which owns a ledger) so the two modules do
    not depend on each other, even for type checking.
    """

    vault: Vault

    @property
    def dialect(self) -> Dialect: ...

    def transaction(self) -> AbstractAsyncContextManager[None]: ...

    async def select(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def one(self, sql: str, params: Params = ()) -> Row | None: ...

    async def execute(self, sql: str, params: Params = ()) -> int: ...

    def db_now(self, now: int) -> tuple[str, int]: ...

    async def get_link_by_id(self, link_id: int) -> Link | None: ...


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


class ReminderLedger(LedgerReads):
    """Reminder rows of one Store (``store.reminders``)."""

    store: LedgerStore

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    async def claim_due(self, *, now: int, thresholds: tuple[int, ...], lease: int, limit: int = 200) -> list[Claim]:
        """One batch of :meth:`claim_batch` (kept for callers that want a single capped batch)."""
        return (await self.claim_batch(now=now, thresholds=thresholds, lease=lease, limit=limit)).claims

    async def claim_batch(
        self, *, now: int, thresholds: tuple[int, ...], lease: int, limit: int = 200, reclaim: bool = True
    ) -> ClaimBatch:
        """Find due links through the partial index, claim the most urgent threshold of each.

        One short write transaction per batch (see the module's docstring for how two
        processes split the work). Every row it reads is moved on (next threshold, new claim
        time, dropped or marked unreadable), so calling it until ``touched`` is 0 ends. Claims
        older than ``lease`` by the database's clock that were never confirmed are handed out
        again, fewest failed attempts first; one superseded by a more urgent threshold that is
        now due is dropped. ``reclaim=False`` leaves stale claims alone (a sweep's later rounds: a
        claim released earlier in the same sweep waits for the next sweep, as it always has).
        """
        steps = sorted(set(thresholds) | {0}, reverse=True)
        out = ClaimBatch()
        clock, t = self.store.db_now(now)
        lock = self.store.dialect.skip_locked
        async with self.store.transaction():
            rows = await self.store.select(
                "SELECT * FROM links WHERE status = 'active' AND next_due_at IS NOT NULL AND next_due_at <= ?"
                " ORDER BY next_due_at LIMIT ?" + lock,
                [now, limit],
            )
            out.touched += len(rows)
            moves: dict[int, int | None] = {}  # link id -> its next due time
            wanted: list[tuple[Link, int]] = []  # (link, threshold) to claim
            for row in rows:
                try:
                    link, nxt, urgent = _plan(row, steps, thresholds, now)
                except Exception:  # one bad row never stops the others
                    moves[row["id"]] = None
                    if await self.mark_unreadable(row["id"], now=now):
                        out.bad.append(row["id"])
                    continue
                moves[link.id] = nxt
                if urgent is not None and not link.muted:
                    wanted.append((link, urgent))
            # A few statements per batch, whatever its size: on PostgreSQL each is a round trip.
            await self._move(moves)
            out.claims += await self._claim(wanted, clock, t)
            if not reclaim:
                return out
            stale = await self.store.select(
                "SELECT id, link_id, kind, period, threshold, attempts, claimed_at, attempt_at, attempt_channel"
                " FROM reminders"
                f" WHERE status = 'claimed' AND claimed_at <= {clock} - ? ORDER BY attempts, claimed_at LIMIT ?" + lock,
                [t, lease, limit],
            )
            out.touched += len(stale)
            if stale:
                await self._reclaim(stale, now, steps, out)
        return out

    async def _move(self, moves: dict[int, int | None]) -> None:
        """Every claimed row's next due time, in one statement."""
        if not moves:
            return
        cases = " ".join("WHEN ? THEN CAST(? AS BIGINT)" for _ in moves)
        params = [x for pair in moves.items() for x in pair]
        await self.store.execute(
            f"UPDATE links SET next_due_at = CASE id {cases} END WHERE id IN ({', '.join('?' for _ in moves)})",
            [*params, *moves],
        )

    async def _claim(self, wanted: list[tuple[Link, int]], clock: str, t: int) -> list[Claim]:
        """Insert the claims in one statement; the unique key refuses any already taken."""
        if not wanted:
            return []
        ids = {secrets.token_hex(8): (link, threshold) for link, threshold in wanted}
        values = ", ".join(f"(?, ?, 'expiry', ?, ?, 'claimed', {clock}, ?)" for _ in ids)
        params = [x for cid, (link, th) in ids.items() for x in (link.id, link.team_id, link.period, th, t, cid)]
        rows = await self.store.select(
            "INSERT INTO reminders (link_id, team_id, kind, period, threshold, status, claimed_at, claim_id)"
            f" VALUES {values} ON CONFLICT DO NOTHING RETURNING id, claim_id",
            params,
        )
        got = {r["claim_id"]: int(r["id"]) for r in rows}
        return [Claim(got[cid], cid, "expiry", th, link) for cid, (link, th) in ids.items() if cid in got]

    async def _reclaim(self, stale: list[Row], now: int, steps: list[int], out: ClaimBatch) -> None:
        """Hand stale claims out again under new claim ids. A released claim has claimed_at 0 and its
        attempt counted; any other stale claim was abandoned (its process stopped between claim and
        post), which counts as an attempt too (the SET expressions read the row's old values)."""
        clock, t = self.store.db_now(now)
        new_ids = {r["id"]: secrets.token_hex(8) for r in stale}
        marks = ", ".join("?" for _ in new_ids)
        await self.store.execute(
            f"UPDATE reminders SET claimed_at = {clock},"
            f" claim_id = CASE id {' '.join('WHEN ? THEN ?' for _ in new_ids)} END,"
            " attempts = attempts + CASE WHEN claimed_at > 0 THEN 1 ELSE 0 END,"
            f" last_error = CASE WHEN claimed_at > 0 THEN ? ELSE last_error END WHERE id IN ({marks})",
            [t, *(x for pair in new_ids.items() for x in pair), ABANDONED, *new_ids],
        )
        link_ids = sorted({r["link_id"] for r in stale})
        links = {
            r["id"]: r
            for r in await self.store.select(
                f"SELECT * FROM links WHERE id IN ({', '.join('?' for _ in link_ids)})", link_ids
            )
        }
        for r in stale:
            r["attempts"] += int(r["claimed_at"] > 0)
            try:
                row = links.get(r["link_id"])
                link = Link.from_row(row) if row is not None else None
            except Exception:
                await self.store.execute(
                    "UPDATE reminders SET status = 'failed', last_error = 'unreadable link', finished_at = ? WHERE id = ?",
                    [now, r["id"]],
                )
                if await self.mark_unreadable(r["link_id"], now=now):
                    out.bad.append(r["link_id"])
                continue
            why = _outdated(r, link, steps, now)
            if why:
                await self.store.execute(
                    "UPDATE reminders SET status = 'dropped', last_error = ?, finished_at = ? WHERE id = ?",
                    [why, now, r["id"]],
                )
                out.superseded += why == "superseded"
                continue
            assert link is not None
            out.claims.append(
                Claim(
                    r["id"],
                    new_ids[r["id"]],
                    r["kind"],
                    r["threshold"],
                    link,
                    r["attempts"],
                    r["attempt_at"],
                    r["attempt_channel"],
                )
            )

    async def mark_unreadable(self, link_id: int, *, now: int) -> bool:
        """Flag a link whose row could not be read; True only the first time (log and count once)."""
        n = await self.store.execute(
            "UPDATE links SET unreadable_at = ? WHERE id = ? AND unreadable_at IS NULL", [now, link_id]
        )
        return n == 1

    async def claim_breakage(self, link: Link, *, now: int) -> Claim | None:
        """Record a newly broken token and claim its alert (once per breakage)."""
        clock, t = self.store.db_now(now)
        async with self.store.transaction():
            row = await self.store.one(
                "SELECT broken_at, breakages FROM links WHERE id = ?" + self.store.dialect.row_lock, [link.id]
            )
            if row is None or row["broken_at"] is not None:
                await self.store.execute("UPDATE links SET checked_at = ? WHERE id = ?", [now, link.id])
                return None
            seq = row["breakages"] + 1
            await self.store.execute(
                "UPDATE links SET broken_at = ?, breakages = ?, checked_at = ? WHERE id = ?", [now, seq, now, link.id]
            )
            claim_id = secrets.token_hex(8)
            rows = await self.store.select(
                "INSERT INTO reminders (link_id, team_id, kind, period, threshold, status, claimed_at, claim_id)"
                f" VALUES (?, ?, 'broken', ?, ?, 'claimed', {clock}, ?) ON CONFLICT DO NOTHING RETURNING id",
                [link.id, link.team_id, link.period, seq, t, claim_id],
            )
            if not rows:
                return None
            fresh = await self.store.get_link_by_id(link.id)
            assert fresh is not None
            return Claim(int(rows[0]["id"]), claim_id, "broken", seq, fresh)

    async def mark_checked(self, link_id: int, *, now: int) -> None:
        await self.store.execute("UPDATE links SET checked_at = ? WHERE id = ?", [now, link_id])

    async def probe_batch(
        self, *, now: int, after: tuple[int, int], every: int = DAY, limit: int = 100
    ) -> list[ProbeRow]:
        """Active links not checked for ``every`` seconds, after ``after`` = (checked_at, id), with the
        token Vonage holds. Decrypted row by row: a row that fails is returned with ``unreadable`` set."""
        rows = await self.store.select(
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
                await self.store.execute("UPDATE links SET unreadable_at = NULL WHERE id = ?", [link.id])
            out.append(ProbeRow(link.id, r["checked_at"] or 0, link, token, False))
        return out

    async def renew(self, claims: list[Claim], *, now: int) -> list[Claim]:
        """Just before posting: the claims this process still holds, their lease started afresh. A claim
        whose lease ran out during a long delivery, and that another worker took, is not posted twice."""
        if not claims:
            return []
        clock, t = self.store.db_now(now)
        rows = await self.store.select(
            f"UPDATE reminders SET claimed_at = {clock} WHERE status = 'claimed' AND claim_id IN"
            f" ({', '.join('?' for _ in claims)}) RETURNING claim_id",
            [t, *(c.claim_id for c in claims)],
        )
        held = {r["claim_id"] for r in rows}
        return [c for c in claims if c.claim_id in held]

    async def attempt(self, claims: Sequence[Claim], *, channel: str | None, at: int | None) -> None:
        """Just before a post is sent (``channel`` and the wall clock's ``at``), or once Slack refused it
        (None: nothing was posted). A worker that takes these claims over after a crash reads that
        channel's history for the message before posting again (:mod:`bot.takeover`)."""
        if claims:
            await self.store.execute(
                "UPDATE reminders SET attempt_at = ?, attempt_channel = ? WHERE status = 'claimed' AND claim_id IN"
                f" ({', '.join('?' for _ in claims)})",
                [at, channel, *(c.claim_id for c in claims)],
            )

    async def confirm(self, claim: Claim, *, channel_id: str, message_ts: str, now: int) -> bool:
        """The post went out: record where, so a relink can update it. False if the claim was lost."""
        n = await self.store.execute(
            "UPDATE reminders SET status = 'posted', posted_at = ?, finished_at = ?, channel_id = ?, message_ts = ?"
            " WHERE id = ? AND claim_id = ?",
            [now, now, channel_id, message_ts, claim.reminder_id, claim.claim_id],
        )
        return n == 1

    async def confirm_many(self, claims: list[Claim], *, channel_id: str, message_ts: str, now: int) -> int:
        """A digest went out: confirm all its claims in one transaction."""
        async with self.store.transaction():
            done = 0
            for c in claims:
                done += await self.confirm(c, channel_id=channel_id, message_ts=message_ts, now=now)
            return done

    async def release(self, claim: Claim, *, error: str) -> int:
        """The post failed: count the attempt and make the claim stale at once so the next sweep
        retries it. Returns the attempts so far."""
        rows = await self.store.select(
            "UPDATE reminders SET claimed_at = 0, last_error = ?, attempts = attempts + 1"
            " WHERE id = ? AND claim_id = ? AND status = 'claimed' RETURNING attempts",
            [error[:200], claim.reminder_id, claim.claim_id],
        )
        return int(rows[0]["attempts"]) if rows else claim.attempts + 1

    async def give_up(self, claim: Claim, *, error: str, now: int) -> None:
        """Too many failed posts: never retried (a failed row is not 'claimed', so no sweep sees it)."""
        await self.store.execute(
            "UPDATE reminders SET status = 'failed', last_error = ?, finished_at = ? WHERE id = ? AND claim_id = ?",
            [error[:200], now, claim.reminder_id, claim.claim_id],
        )

    async def drop(self, claim: Claim, *, why: str, now: int) -> None:
        await self.store.execute(
            "UPDATE reminders SET status = 'dropped', last_error = ?, finished_at = ? WHERE id = ? AND claim_id = ?",
            [why, now, claim.reminder_id, claim.claim_id],
        )


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


def _plan(row: Row, steps: list[int], thresholds: tuple[int, ...], now: int) -> tuple[Link, int | None, int | None]:
    """(link, its next due time, the threshold to claim now or None). A row whose next due time came
    from other thresholds (FBLINK_REMINDER_DAYS changed) is only rescheduled."""
    link = Link.from_row(row)
    if link.expires_at is None:
        raise ValueError("a due link without an expiry")
    due = [t for t in steps if link.expires_at - t * DAY <= now]
    if not due:
        return link, link.expires_at - steps[0] * DAY, None
    urgent = min(due)
    return link, next_threshold_due(link.expires_at, thresholds, urgent)[1], urgent


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
