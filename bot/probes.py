"""Daily token probes: ask Facebook whether the Page token Vonage holds still works.

Run after the sweep's reminders, so a slow or down Graph delays no reminder. Probes run
concurrently (FBLINK_PROBE_CONCURRENCY) within a time budget per sweep
(FBLINK_PROBE_BUDGET); links not reached keep their old ``checked_at`` and so come
first in the next sweep. Rows are read and decrypted in small batches that yield to
the event loop, and a row that cannot be decrypted is flagged, counted and skipped.
"""

from __future__ import annotations

import asyncio
import logging

from bot.graph import TokenInfo
from bot.services import Services
from bot.store import Claim, Link
from bot.store.ledger import ProbeRow

log = logging.getLogger(__name__)
READ_BATCH = 10  # rows read and decrypted per step: ~1 ms (25 took 3-7 ms under load, 50 up to 9 ms)


async def probe_tokens(services: Services, now: int) -> list[Claim]:
    """Probe links not checked for a day; returns the alert claims of newly broken tokens."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + services.settings.fblink_probe_budget
    slots = asyncio.Semaphore(services.settings.fblink_probe_concurrency)
    ledger = services.store.reminders
    claims: list[Claim] = []
    running: set[asyncio.Task[None]] = set()
    after = (-1, 0)
    out_of_time = False
    while not out_of_time:
        await services.turns.take()
        rows = await ledger.probe_batch(now=now, after=after, limit=READ_BATCH)
        if not rows:
            break
        after = (rows[-1].checked_at, rows[-1].link_id)
        for row in rows:
            if row.unreadable:
                await ledger.mark_checked(row.link_id, now=now)  # looked at again tomorrow, not every sweep
                if await ledger.mark_unreadable(row.link_id, now=now):
                    log.error("link %s: stored token cannot be decrypted; skipped and shown as broken", row.link_id)
                    services.metrics.unreadable_rows.labels("links").inc()
                continue
            try:
                await asyncio.wait_for(slots.acquire(), timeout=max(0.0, deadline - loop.time()))
            except TimeoutError:
                out_of_time = True
                break
            task = asyncio.ensure_future(_probe_one(services, row, now, claims))
            task.add_done_callback(lambda _t: slots.release())
            running.add(task)
            task.add_done_callback(running.discard)
    if running:
        _, late = await asyncio.wait(set(running), timeout=max(0.0, deadline - loop.time()))
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
            services.metrics.probes.labels("deferred").inc(len(late))
    if out_of_time:
        log.info(
            "token probes: time budget of %.0f s used; the rest carry over to the next sweep",
            services.settings.fblink_probe_budget,
        )
    return claims


async def _probe_one(services: Services, row: ProbeRow, now: int, claims: list[Claim]) -> None:
    ledger, link = services.store.reminders, row.link
    assert link is not None
    token = row.token
    if token is None:
        await services.turns.take()  # a database read and a decrypt: one step of its own
        try:
            token = await ledger.page_token_of(link.team_id, link.linked_by, link.page_id)
        except Exception:
            log.warning("token probe for page %s: the linker's stored Page token cannot be read", link.page_id)
            token = None
    if token is None:
        await ledger.mark_checked(link.id, now=now)
        services.metrics.probes.labels("no_token").inc()
        return
    await services.turns.send()  # 20 probes sent together are answered together: start them apart
    try:
        info = await services.graph.debug_token(token)
    except Exception as exc:  # Facebook down: try again next sweep, never a false alarm
        log.warning("token probe for page %s failed: %s", link.page_id, type(exc).__name__)
        services.metrics.probes.labels("error").inc()
        return
    await services.turns.take()
    if info.is_valid:
        await ledger.mark_checked(link.id, now=now)
        services.metrics.probes.labels("valid").inc()
        await _note_permissions(services, link, info, now)
        return
    services.metrics.probes.labels("dead").inc()
    claim = await ledger.claim_breakage(link, now=now)
    if claim:
        claims.append(claim)


async def _note_permissions(services: Services, link: Link, info: TokenInfo, now: int) -> None:
    """A Page token's scopes are what its person grants fblink now: store them on the linker's
    login, so a permission removed in Facebook's settings (``pages_messaging``) shows the link as
    broken everywhere links are shown, not only after the next login."""
    if not (link.linked_by and info.user_id and info.scopes):
        return
    if await services.store.record_granted_scopes(link.team_id, link.linked_by, info.user_id, info.scopes, now=now):
        log.info("token probe for page %s: the linker's Facebook permissions changed", link.page_id)
