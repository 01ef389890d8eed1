"""Worker threads that give way to the event loop.

The serving process runs some blocking work in threads of its own: WAL checkpoints
(:mod:`bot.store.wal`) and the /metrics link count (:mod:`bot.metrics`). SQLite runs
without the GIL, so such a thread competes with the event loop for the CPU itself: on a
busy core a checkpoint kept the loop thread waiting, runnable, for 13 ms
(bench/sweep_acks.py). On Linux these threads run under SCHED_IDLE: whenever the loop
thread wakes up it preempts them at once, and they use only CPU time nothing else wants
(CFS still gives them a small share, so a busy core does not starve them).
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor


def background_pool(name: str) -> ThreadPoolExecutor:
    """One worker thread, at background priority; its work runs in order."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=give_way)


def give_way() -> None:
    """Put the calling thread under SCHED_IDLE (Linux; a thread may always lower its own
    priority). Where the policy does not exist, or is refused, the thread stays as it was."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: the calling thread
