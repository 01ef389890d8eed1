"""Keeping Python's cyclic garbage collector off the event loop's critical path.

A full (generation 2) collection walks every tracked object and runs on whichever
callback happens to allocate: with 10,000 reminders claimed, each pass held the loop for
10-40 ms, several times per sweep (bench/sweep_acks.py). Two measures:

- :func:`freeze_startup_heap`: everything alive after start-up moves out of the collector's
  reach (it is never garbage);
- :func:`no_full_collections`: while a sweep runs, only young collections run. The sweep's
  claims are freed by reference counting when it ends; cyclic garbage that outlived two
  young collections waits for the first full pass after the sweep.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

NEVER = 1_000_000_000  # a generation-2 threshold no sweep reaches
_running = 0  # sweeps in progress in this process (tests may run several at once)
_saved: tuple[int, int, int] | None = None


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (Bolt, slack_sdk, pydantic models...) out of the GC's
    reach. A sweep allocates enough to trigger full collections, and each one otherwise walks
    that whole heap on the event loop: ~100 ms measured (bench/sweep_acks.py). Frozen objects
    are still freed by reference counting; only cycles among them would stay."""
    gc.collect()
    gc.freeze()


@contextmanager
def no_full_collections() -> Iterator[None]:
    """Young (generation 0 and 1) collections only, until the last overlapping caller leaves."""
    global _running, _saved
    if _running == 0:
        _saved = gc.get_threshold()
        gc.set_threshold(_saved[0], _saved[1], NEVER)
    _running += 1
    try:
        yield
    finally:
        _running -= 1
        if _running == 0 and _saved is not None:
            gc.set_threshold(*_saved)
            _saved = None
