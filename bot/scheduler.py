"""APScheduler 3 wiring: jobs are rebuilt from code at every boot (no job store).

State lives in the database, so nothing needs persisting here, and several
processes can run the scheduler against one database: the claim in
:meth:`bot.store.ReminderLedger.claim_due` keeps each reminder to one post.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.heap import freeze_startup_heap
from bot.reminders import sweep
from bot.revocation import prune_gone
from bot.services import Services

log = logging.getLogger(__name__)


def build_jobs(services: Services) -> AsyncIOScheduler:
    lock = asyncio.Lock()

    async def sweep_job() -> None:
        if lock.locked():
            log.info("previous sweep still running; skipping this one")
            return
        async with lock:
            try:
                # spawn + shield: APScheduler's shutdown cancels the job, not the sweep;
                # the app's shutdown waits for the sweep's task instead.
                report = await asyncio.shield(services.spawn(sweep(services)))
                for line in report:
                    log.info("%s", line)
            except Exception:
                log.exception("sweep failed; the next one retries")

    sched = AsyncIOScheduler(timezone=UTC)
    now = datetime.now(UTC)
    sched.add_job(
        sweep_job,
        "interval",
        minutes=services.settings.fblink_sweep_minutes,
        id="sweep",
        next_run_time=now,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=60,
    )
    sched.add_job(forget_gone, "interval", hours=24, args=[services], id="forget_gone", next_run_time=now)
    return sched


async def forget_gone(services: Services) -> None:
    """Daily: every row of a workspace fblink was removed from FBLINK_RETENTION_DAYS ago is deleted."""
    try:
        n = await prune_gone(services.store, now=services.now(), retention_days=services.settings.fblink_retention_days)
        if n:
            log.info("deleted the rows of %d workspace(s) fblink was removed from", n)
    except Exception:
        log.exception("pruning gone workspaces failed; tomorrow's run retries")


def start_scheduler(services: Services) -> AsyncIOScheduler:
    """Call inside the running event loop (the ASGI lifespan)."""
    freeze_startup_heap()
    sched = build_jobs(services)
    sched.start()
    log.info(
        "scheduler started: sweep every %d min (each link's token probed once a day)",
        services.settings.fblink_sweep_minutes,
    )
    return sched


async def stop_scheduler(sched: AsyncIOScheduler) -> None:
    """No new runs; a sweep already running finishes (the app waits for its task)."""
    sched.shutdown(wait=False)
