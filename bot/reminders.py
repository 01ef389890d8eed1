"""Expiry reminders: sweep(now) finds due links, claims, posts, confirms.

The right to post is claimed in the database before posting and confirmed
after; see :meth:`bot.store.ReminderLedger.claim_due`. A crash between claim and post is
retried once the claim's lease runs out; a crash after the post costs at most
one duplicate, never a missed reminder.

The sweep runs on the event loop in short steps, each taking a turn first (:mod:`bot.turns`:
in `fblink serve`, one background step per loop iteration and requests started a few
milliseconds apart, so acks never wait behind a pile of sweep work; in a worker, no turns).
Not in a thread: the Store holds one SQLite connection shared by the ack path, and a second
writer in a thread would make the loop's own writes wait on its lock (busy_timeout). The
one slow SQLite step, the WAL checkpoint, runs in a worker thread (:mod:`bot.store.wal`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError

from bot import blocks, heap, probes, render, takeover
from bot.clock import DAY, Clock
from bot.pacing import Pacer
from bot.reminder_messages import digest_messages, digest_section, headline, reminder_message
from bot.reminder_routes import channel_for, fallbacks
from bot.services import Services, open_services
from bot.settings import Settings
from bot.shared_pace import RateLimited, answered, rate_limited, shared_slot
from bot.store import Claim, Link
from bot.turns import Turns

log = logging.getLogger(__name__)
LEASE = 10 * 60  # an unconfirmed claim older than this is retried (shorter when sweeps are more frequent)


def lease_for(sweep_minutes: int) -> int:
    """Long enough for a slow post (Slack's Retry-After), short enough that the next sweep retries."""
    return max(60, min(LEASE, sweep_minutes * 60 - 30))


DIGEST_OVER = 5  # more than this many reminders for one channel in one sweep -> one digest
CLAIM_BATCH = 10  # links per claim transaction: ~1 ms on the event loop (25 took 2.5 ms, up to 11 under load)
ROUND = 500  # claims held per round (~7 s of posts): another worker takes the next; a full round digests 2+
MAX_BATCHES = 100_000  # a guard: every batch moves its rows on, so the loop ends long before
YIELD_EVERY = 250  # claims handled between yields when grouping (~1-2 ms of work)
POST_CONCURRENCY = 8  # channels posted to at once (each channel stays sequential)
CHANNEL_REFUSED = {"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived"}


async def slot(services: Services, pacer: Pacer, channel: str) -> None:
    """Before every post of a sweep: a start apart from the sweep's other requests (answers that
    arrive together are parsed together), then the channel's own slot, last, so one channel's
    posts are a full gap apart (a wait there is rare: a busy channel is requeued after its gap);
    then the same slot across processes (:func:`shared_slot`)."""
    await services.turns.send()
    await pacer.slot(channel)
    await shared_slot(services, channel)


async def post(
    services: Services, pacer: Pacer, link: Link, channel: str, msg: dict[str, Any], claims: list[Claim]
) -> tuple[str, str]:
    """Post, falling back to the default channel or a DM when the channel refuses. Each send is
    recorded in the claims' rows first, and carries their ids as metadata (:mod:`bot.takeover`)."""
    candidates = [channel, *await fallbacks(services, link, channel)]
    slack = await services.slack_for(link.team_id)
    last: Exception | None = None
    msg = {**msg, "metadata": takeover.metadata(claims)}
    for target in candidates:
        await slot(services, pacer, target)
        await services.store.reminders.attempt(claims, channel=target, at=int(time.time()))
        try:
            resp = await slack.chat_postMessage(channel=target, **msg)
            return str(resp["channel"]), str(resp["ts"])
        except SlackApiError as exc:
            await takeover.refused(services, claims, exc)
            if exc.response.status_code == 429:
                await rate_limited(services, exc)
                raise
            error = exc.response.get("error", "")
            if error in CHANNEL_REFUSED:
                log.warning("reminder for page %s: channel %s refused (%s); falling back", link.page_id, target, error)
                last = exc
                continue
            raise
    assert last is not None
    raise last


def reason_of(exc: BaseException) -> str:
    """A short, secret-free reason for a failed post (Slack's error code, or the exception's type)."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    if isinstance(exc, RateLimited):
        return str(exc)  # how long Slack asked every process to wait
    return type(exc).__name__


@dataclass
class Run:
    """One sweep's shared state: its clock reading, its report, and a cache of team channels
    (so grouping 10,000 claims does not run 10,000 queries)."""

    services: Services
    now: int
    report: list[str] = field(default_factory=list)
    _team_channels: dict[str, str | None] = field(default_factory=dict)
    pacer: Pacer = field(init=False)  # every post of the sweep, to whatever channel, books a slot
    drained: bool = False  # the last claim batch found nothing due: no round after this one

    def __post_init__(self) -> None:
        self.pacer = Pacer(self.services.settings.fblink_channel_gap)

    async def channel_for(self, link: Link) -> str | None:
        return await channel_for(self.services, link, self._team_channels)


async def sweep(services: Services, *, probe: bool = True) -> list[str]:
    """One sweep: every due reminder first (claimed and posted in rounds until none is left), then the
    daily token probes (concurrent, within a time budget), then retention. Returns what was posted."""
    run = Run(services, services.now())
    with heap.no_full_collections() if services.turns.shared else contextlib.nullcontext():  # bot/heap.py
        for n in range(MAX_BATCHES):  # in rounds, so a second worker gets a share of a big sweep
            await deliver(run, await claim_all(run, ROUND, reclaim=n == 0))
            if run.drained:
                break
        if probe:
            await deliver(run, await probes.probe_tokens(services, run.now))
        await prune(services, run.now)
    return run.report


async def claim_all(run: Run, limit: int | None = None, *, reclaim: bool = True) -> list[Claim]:
    """Claim in short batches, yielding between them, until none is due (``run.drained``) or ``limit``
    are held; stale claims only with ``reclaim`` (one released in this sweep waits for the next)."""
    services, ledger = run.services, run.services.store.reminders
    lease = lease_for(services.settings.fblink_sweep_minutes)
    claims: list[Claim] = []
    for _ in range(MAX_BATCHES):
        await services.turns.take()
        batch = await ledger.claim_batch(
            now=run.now, thresholds=services.settings.reminder_days, lease=lease, limit=CLAIM_BATCH, reclaim=reclaim
        )
        for link_id in batch.bad:
            log.error("link %s cannot be read; skipped and shown as broken", link_id)
            services.metrics.unreadable_rows.labels("links").inc()
        if batch.superseded:
            services.metrics.reminders.labels("superseded").inc(batch.superseded)
        claims += batch.claims
        run.drained = not batch.touched
        if run.drained or (limit and len(claims) >= limit):
            break
    return await most_urgent(run, claims)


async def most_urgent(run: Run, claims: list[Claim]) -> list[Claim]:
    """Downtime catch-up: one expiry reminder per link and period, the most urgent threshold."""
    best: dict[tuple[int, int], Claim] = {}
    out: list[Claim] = []
    for i, c in enumerate(claims):
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            await run.services.turns.take()
        if c.kind != "expiry":
            out.append(c)
            continue
        key = (c.link.id, c.link.period)
        keep, drop = (c, best.get(key)) if key not in best or c.threshold < best[key].threshold else (best[key], c)
        best[key] = keep
        if drop is not None:
            await run.services.store.reminders.drop(drop, why="superseded", now=run.now)
            run.services.metrics.reminders.labels("superseded").inc()
    return out + list(best.values())


Batch = tuple[str, bool, list[list[Claim]]]  # (channel, as digests?, the messages still to post)


async def deliver(run: Run, claims: list[Claim]) -> None:
    """Post grouped by channel: a digest for busy channels, each channel's messages at least
    FBLINK_CHANNEL_GAP seconds apart (Slack allows about one message per second per channel),
    and POST_CONCURRENCY posts in flight across channels. A channel with more to post goes
    back in the queue after its pause, so the pause holds up no other channel; a few workers
    and a queue, not a task per channel (10,000 tasks waking at once held the loop)."""
    by_channel: dict[str, list[Claim]] = defaultdict(list)
    for i, claim in enumerate(claims):
        by_channel[await run.channel_for(claim.link) or ""].append(claim)
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            await run.services.turns.take()
    if not by_channel:
        return
    queue: asyncio.Queue[Batch] = asyncio.Queue()
    for i, (channel, group) in enumerate(by_channel.items()):
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            await run.services.turns.take()
        digest = bool(channel) and len(group) > (DIGEST_OVER if run.drained else 1)  # a full round: every 2+
        per = blocks.MAX_MESSAGE_BLOCKS - 2 if digest else 1
        queue.put_nowait((channel, digest, [group[k : k + per] for k in range(0, len(group), per)]))
    # From here each claim lives only in its message's chunk, freed once that message is done:
    # freeing 10,000 claims at once, when the sweep ended, held the loop ~10 ms.
    channels = len(by_channel)
    del claims, by_channel, group
    workers = [asyncio.ensure_future(_post_worker(run, queue)) for _ in range(min(POST_CONCURRENCY, channels))]
    try:
        await queue.join()
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def _post_worker(run: Run, queue: asyncio.Queue[Batch]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        channel, digest, left = await queue.get()
        if digest:  # 48 sections to render: a step of its own (a single message is rendered in the step that sends it)
            await run.services.turns.take()
        try:
            worn = max(c.attempts for c in left[0])
            if worn >= run.services.settings.fblink_reminder_max_attempts:  # e.g. abandoned again and again
                await _give_up(run, channel, left[0], "abandoned", worn)
            elif not channel:
                log.warning("reminder for page %s has nowhere to go", left[0][0].link.page_id)
                await _failed(run, "", left[0], "no channel")
            elif digest:
                await _post_digest(run, channel, left[0])
            else:
                await _post_one(run, channel, left[0][0])
        except Exception:  # never lose the other channels to one bug
            log.exception("delivering reminders to %s failed", channel or "(no channel)")
        if len(left) > 1:  # the rest after the channel's pause; counted as unfinished until then
            gap = run.services.settings.fblink_channel_gap if channel else 0
            loop.call_later(gap, _requeue, queue, (channel, digest, left[1:]))
        else:
            queue.task_done()


def _requeue(queue: asyncio.Queue[Batch], batch: Batch) -> None:
    queue.put_nowait(batch)
    queue.task_done()  # the earlier item of this channel, finished only now that its rest is queued


async def _post_in_turn(run: Run, claims: list[Claim], channel: str, msg: dict[str, Any]) -> tuple[str, str] | str:
    """Post, then take a turn for what follows (its commit): (channel, ts), or why it failed. Once
    Slack has answered, the channel's next post from any process counts its gap from now."""
    try:
        async with answered(run.services):
            result: tuple[str, str] | str = await post(run.services, run.pacer, claims[0].link, channel, msg, claims)
    except Exception as exc:
        result = reason_of(exc)
    await run.services.turns.take()
    return result


async def _post_one(run: Run, channel: str, claim: Claim) -> None:
    services = run.services
    if not await services.store.reminders.renew([claim], now=services.now()):
        run.report.append(f"claim on {claim.link.page_name} ({claim.link.page_id}) taken over; not posted here")
        return
    if not await takeover.unposted(services, [claim], run.report):
        return
    result = await _post_in_turn(run, [claim], channel, reminder_message(claim, run.now))
    if isinstance(result, str):
        await _failed(run, channel, [claim], result)
        return
    where, ts = result
    await services.store.reminders.confirm(claim, channel_id=where, message_ts=ts, now=services.now())
    services.metrics.reminders.labels("posted").inc()
    run.report.append(
        f"posted {claim.kind} {claim.threshold} for {claim.link.page_name} ({claim.link.page_id}) to {where}"
    )


async def _post_digest(run: Run, channel: str, chunk: list[Claim]) -> None:
    """One digest message of up to 48 claims, built just before it is posted (building 100
    sections at once held the event loop for ~30 ms)."""
    services = run.services
    chunk = await takeover.unposted(
        services, await services.store.reminders.renew(chunk, now=services.now()), run.report
    )
    if len(chunk) < 2:  # what is left of a digest after claims were taken over: never a digest of one
        return await _post_one(run, channel, chunk[0]) if chunk else None
    (msg,) = digest_messages(chunk, run.now)
    result = await _post_in_turn(run, chunk, channel, msg)
    if isinstance(result, str):
        await _failed(run, channel, chunk, result)
        return
    where, ts = result
    await services.store.reminders.confirm_many(chunk, channel_id=where, message_ts=ts, now=services.now())
    services.metrics.reminders.labels("posted").inc(len(chunk))
    run.report.append(f"posted digest of {len(chunk)} to {where}")


async def _failed(run: Run, channel: str, claims: list[Claim], reason: str) -> None:
    """Count the attempt; after FBLINK_REMINDER_MAX_ATTEMPTS escalate once and never retry."""
    services = run.services
    attempts = max([await services.store.reminders.release(c, error=reason) for c in claims])
    services.metrics.reminders.labels("failed").inc(len(claims))
    if attempts < services.settings.fblink_reminder_max_attempts:
        log.warning("reminder for page %s not posted (%s); retried next sweep", claims[0].link.page_id, reason)
        return
    await _give_up(run, channel, claims, reason, attempts)


async def _give_up(run: Run, channel: str, claims: list[Claim], reason: str, attempts: int) -> None:
    """Escalate once, then mark failed: never retried."""
    services = run.services
    await escalate(run, channel, claims, reason, attempts)
    for c in claims:
        await services.store.reminders.give_up(c, error=reason, now=run.now)
    services.metrics.reminders.labels("gave_up").inc(len(claims))
    log.error("reminder for page %s given up after %d attempts (%s)", claims[0].link.page_id, attempts, reason)


async def escalate(run: Run, channel: str, claims: list[Claim], reason: str, attempts: int) -> bool:
    """Tell someone once: the first fallback channel that takes it, else a DM to the linker and each admin."""
    services, link = run.services, claims[0].link
    where = f"<#{channel}>" if channel.startswith(("C", "G")) else "any channel"
    lines = "\n".join(f"• {headline(c, run.now)}" for c in claims[: blocks.MAX_MESSAGE_BLOCKS - 5])
    text = (
        f":warning: fblink could not post {len(claims)} reminder{'s' if len(claims) != 1 else ''} to {where}"
        f" after {attempts} attempts (`{blocks.escape(reason)}`) and will not retry:\n{lines}"
    )
    msg = blocks.message(text[:2900], [blocks.section(text[:2900])], ephemeral=False)
    rooms = [c for c in await fallbacks(services, link, channel) if not c.startswith(("U", "W"))]
    slack = await services.slack_for(link.team_id)
    people = [u for u in dict.fromkeys([*(c.link.linked_by for c in claims), *sorted(services.settings.admins)]) if u]
    for room in rooms:
        await slot(services, run.pacer, room)
        with contextlib.suppress(Exception):
            await slack.chat_postMessage(channel=room, **msg)
            return True
    told = False
    for user in people:
        await slot(services, run.pacer, user)
        try:
            await slack.chat_postMessage(channel=user, **msg)
            told = True
        except Exception as exc:
            log.warning("could not escalate to %s: %s", user, reason_of(exc))
    return told


async def prune(services: Services, now: int) -> None:
    """Retention: small DELETE batches, yielding between them, until nothing old is left."""
    before = now - services.settings.fblink_retention_days * DAY
    for _ in range(MAX_BATCHES):
        await services.turns.take()
        audit, reminders = await services.store.reminders.prune(before=before)
        services.metrics.pruned.labels("audit").inc(audit)
        services.metrics.pruned.labels("reminders").inc(reminders)
        if not audit and not reminders:
            break


async def after_relink(services: Services, old: Link, new: Link, user_id: str) -> None:
    """Update the reminders of the old period to say who re-linked and the new expiry.

    A digest is rebuilt from the current state of every Page it lists, so the other
    Pages keep their Re-link buttons.
    """
    text = render.relinked_text(new, user_id)
    for row in await services.store.reminders.posted_for_period(old.id, old.period):
        channel, ts = row["channel_id"], row["message_ts"]
        msg: dict[str, Any] = {"text": text, "blocks": [blocks.section(text)]}
        if row["shared"] > 1:
            msg = await digest_update(services, channel, ts, new, user_id)
        try:
            await (await services.slack_for(new.team_id)).chat_update(channel=channel, ts=ts, **msg)
        except Exception as exc:
            log.warning("could not update reminder message for page %s: %s", new.page_id, type(exc).__name__)


async def digest_update(services: Services, channel: str, ts: str, relinked: Link, user_id: str) -> dict[str, Any]:
    now = services.now()
    sections = []
    for r in await services.store.reminders.reminders_in_message(channel, ts):
        link = await services.store.get_link_by_id(r["link_id"])
        if link is None:
            continue
        if link.period > r["period"]:  # this Page was re-linked since the digest went out
            sections.append(blocks.section(render.relinked_text(link, user_id if link.id == relinked.id else None)))
        else:
            sections.append(digest_section(Claim(0, "", r["kind"], r["threshold"], link), now))
    head = f":alarm_clock: {len(sections)} Facebook Page links needed attention"
    return {"text": head, "blocks": [blocks.section(f"*{head}*"), *sections][: blocks.MAX_MESSAGE_BLOCKS]}


async def run_sweep_once(settings: Settings, clock: Clock, *, probe: bool = True) -> list[str]:
    """`fblink sweep`: build the services, sweep once, close."""
    async with open_services(settings, clock) as services:
        services.turns = Turns(shared=False)  # its own process: no acks share the loop
        return await sweep(services, probe=probe)
