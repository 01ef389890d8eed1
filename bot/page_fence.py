"""Page work across processes that share one database: the (team, Page) lease says which
change may change a Page now (handlers/changes.py takes it, one owner per change); these
helpers let a change that ran long find out that another change, in any process, took the
Page over, and keep it from undoing or overwriting that change's work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

from bot import blocks
from bot.link_errors import Busy
from bot.services import Services
from bot.store import Link

_held: ContextVar[str | None] = ContextVar("fblink_page_lease", default=None)  # the lease this task's change holds


@contextmanager
def holding(owner: str) -> Iterator[None]:
    """The change running in this task holds the lease ``owner`` (handlers/changes.py sets it
    once the lease is taken). Each change has its own owner, so a second change in the same
    process that took the Page over counts as another holder."""
    token = _held.set(owner)
    try:
        yield
    finally:
        _held.reset(token)


async def taken_over(services: Services, team_id: str, page_id: str, *, lock: bool = False) -> bool:
    """Another change, in this process or another, holds the Page's lease now (ours ran out
    while Vonage was slow). ``lock``: inside a transaction, hold the lease row until it ends."""
    owner = await services.store.lease_owner(team_id, page_id, now=services.now(), lock=lock)
    return owner is not None and owner != _held.get()


async def still_ours(services: Services, team_id: str, page_id: str) -> bool:
    """The change running in this task still holds the Page's lease (unexpired, its own owner).
    Outside a leased change: only that no other change holds it."""
    owner = await services.store.lease_owner(team_id, page_id, now=services.now())
    held = _held.get()
    return owner is None if held is None else owner == held


async def before_destroying(services: Services, team_id: str, page_id: str, name: str) -> None:
    """Checked right before each Vonage call that deletes something (an account, an application):
    a change whose lease ran out while Vonage was slow must not delete what a newer change made."""
    if not await still_ours(services, team_id, page_id):
        raise busy(name)


async def recorded_since(services: Services, team_id: str, page_id: str, api_key: str, before: Link | None) -> bool:
    """Another change took the Page over, or something recorded the Page under this key after
    ``before`` was read. Its account at Vonage is then that change's, and must be neither
    deleted nor overwritten by us."""
    if await taken_over(services, team_id, page_id):
        return True
    now = await services.store.get_link(team_id, page_id)
    return now is not None and now.status == "active" and now.api_key == api_key and now != before


@asynccontextmanager
async def fenced(services: Services, team_id: str, page_id: str, name: str) -> AsyncIterator[None]:
    """Write our record only while no other change holds the Page's lease. The check and the
    write are one transaction that holds the lease row (SQLite's BEGIN IMMEDIATE takes the write
    lock first; PostgreSQL locks the row FOR UPDATE), so no change can take the lease over
    between them; one that took it earlier records its own outcome instead."""
    async with services.store.transaction():
        if await taken_over(services, team_id, page_id, lock=True):
            raise busy(name)
        yield


def busy(name: str) -> Busy:
    return Busy(
        f"Another change to *{blocks.escape(name)}* took over while this one waited for Vonage; "
        "fblink left that change in place. Check `/fblink status`, then try again if you still need to."
    )
