"""The store, from a test's own thread.

The Store is async and bound to the event loop it was opened on (PostgreSQL's pool lives
there). A test runs in its own thread, beside the app's loop (served by uvicorn in
another), so :class:`SyncStore` sends each call to that loop and waits for the answer:
the test reads and writes the very database the app uses, through fblink's real store
code, with nothing mocked. :func:`sync_store` opens a Store on a loop of its own, for
tests that need one without an app.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bot.clock import Clock
from bot.crypto import Vault
from bot.store import Store, open_engine

T = TypeVar("T")
WAIT = 60.0


class LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="test-store-loop")
        self.thread.start()

    def run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(_wrap(coro), self.loop).result(WAIT)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def _wrap(aw: Awaitable[T]) -> T:
    return await aw


class SyncStore:
    """A Store (or its ledger) whose coroutine methods are called and awaited on ``loop``."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop, owner: LoopThread | None = None) -> None:
        self._target = target
        self._loop = loop
        self._owner = owner

    def run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``await fn(store)`` on the store's loop: several calls in one transaction, for example."""
        return asyncio.run_coroutine_threadsafe(_wrap(fn(self._target)), self._loop).result(WAIT)

    def batch(self, statements: list[tuple[str, list[Any]]]) -> None:
        """Run many writes in one transaction (fast set-ups on either engine)."""

        async def go(store: Any) -> None:
            async with store.transaction():
                for sql, params in statements:
                    await store.execute(sql, params)

        self.run(go)

    @property
    def db(self) -> Any:
        """SQLite's sqlite-utils Database (tests of SQLite-only behaviour)."""
        return self._target.engine.db

    @property
    def unwrapped(self) -> Any:
        return self._target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name == "reminders":
            return SyncStore(attr, self._loop)
        if inspect.iscoroutinefunction(attr):

            def call(*args: Any, **kwargs: Any) -> Any:
                return asyncio.run_coroutine_threadsafe(attr(*args, **kwargs), self._loop).result(WAIT)

            return call
        return attr

    def close(self) -> None:
        if self._owner is not None:
            self._owner.run(self._target.close())
            self._owner.stop()
            self._owner = None


def sync_store(target: str, vault: Vault, *, clock: Clock | None = None) -> SyncStore:
    """A Store on its own loop thread, opened (the caller closes it)."""
    runner = LoopThread()
    store = Store(open_engine(target), vault, clock=clock)
    runner.run(store.open())
    return SyncStore(store, runner.loop, runner)


def for_app(app: Any) -> SyncStore:
    """The running app's Store, called on the app's own loop."""
    services = app.services
    assert services.loop is not None, "the app has not started (no lifespan ran)"
    return SyncStore(services.store, services.loop)
