"""Event-loop instrumentation for bench/sweep_acks.py: who held the loop, and for how long.

- :func:`instrument` times every callback (wall, user and system CPU, GC, page faults),
  sums each loop iteration (all callbacks, and the part that was sweep work), and times
  WAL checkpoints;
- :func:`sample_stacks` (opt-in) samples the loop thread's stack inside long callbacks;
- :func:`run_steal` (a child process on the other CPU) samples the hypervisor's steal
  counter of the app's CPU, and :func:`thread_sched` reads the loop thread's own
  on-CPU and run-queue times, so a stall can be told apart from the VM or the scheduler.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any


def run_steal(cpu: int, out: str) -> None:
    """Every 2 ms, the hypervisor's steal counter of the app's CPU (/proc/stat, in ticks), written
    to ``out`` at SIGTERM: a stall during which the virtual CPU was not running is not fblink's."""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.time(), cpu_steal(cpu)))
            time.sleep(0.002)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    signal.sigwait({signal.SIGTERM})
    stop.set()
    t.join(1)
    Path(out).write_text(json.dumps(samples))


def stolen(samples: list[tuple[float, float]], a: float, b: float) -> float:
    """Steal (s) on the app's CPU between the last sample before ``a`` and the first after ``b``."""
    before = [v for (t, v) in samples if t <= a]
    after = [v for (t, v) in samples if t >= b]
    return (after[0] - before[-1]) if before and after else 0.0


# -- loop instrumentation -------------------------------------------------------------------

SLOW: list[tuple[float, float, str, float, str]] = []  # (wall time, ms, callback, on-CPU ms, detail), > 5 ms
GC_PAUSES: list[tuple[float, float, int]] = []  # (wall time, ms, generation)
SWEEP_STEPS = {"measure", "_post_worker", "_probe_one"}  # task coroutines whose steps are sweep work
ITERATIONS: list[tuple[float, float, float, int]] = []  # (wall time, sweep ms, all callbacks ms, sweep steps > 1 ms)
SWEEP_LONG: list[tuple[float, float, str]] = []  # sweep steps over 3 ms: (wall time, ms, "resumed at -> awaited at")
STACKS: list[tuple[float, str]] = []  # (wall time, stack) of the loop thread inside a long callback (BENCH_STACKS)
_running = [0.0]  # perf_counter at which the current callback started (0: none)
CHECKPOINTS: list[tuple[float, float, int]] = []  # (start, end) wall times of WAL checkpoints, frames copied
_iteration = [0.0, 0.0, 0]  # the current loop iteration: sweep seconds, all seconds, sweep steps > 1 ms


def instrument() -> None:
    """Time every event-loop callback (how long it held the loop) and every GC pass. The lag
    probe alone cannot tell a blocking sweep from 10 queued acks of 3 ms each, or from another
    process taking the CPU; these two can say which callback it was."""
    import gc

    original = asyncio.events.Handle._run

    def timed(self: asyncio.events.Handle) -> None:
        cb = getattr(self._callback, "__self__", None)
        coro = cb.get_coro() if isinstance(cb, asyncio.Task) else None
        name = getattr(coro, "__qualname__", None)
        resumed = suspended_at(coro) if name in SWEEP_STEPS else ""
        t, r0, g0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_THREAD), len(GC_PAUSES)
        _running[0] = t
        original(self)
        _running[0] = 0.0
        d = time.perf_counter() - t
        _iteration[1] += d
        if name in SWEEP_STEPS:
            _iteration[0] += d
            _iteration[2] += d > 0.001  # steps that did real work, not just take a turn
            if d > 0.003:
                SWEEP_LONG.append((time.time(), d * 1000, f"{resumed} -> {suspended_at(coro)}"))
        if d > 0.005:
            r1 = resource.getrusage(resource.RUSAGE_THREAD)
            user, system = (r1.ru_utime - r0.ru_utime) * 1000, (r1.ru_stime - r0.ru_stime) * 1000
            gc_ms = sum(ms for (_, ms, _) in GC_PAUSES[g0:])
            detail = f"user {user:.1f} + system {system:.1f} ms, GC {gc_ms:.1f} ms, {r1.ru_minflt - r0.ru_minflt} page faults"
            if coro is not None:
                detail += f"; then awaited at {suspended_at(coro)}"
            SLOW.append((time.time(), d * 1000, str(name or repr(self._callback)[:80]), user + system, detail))

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    run_once = asyncio.base_events.BaseEventLoop._run_once  # type: ignore[attr-defined]

    def one_iteration(self: asyncio.base_events.BaseEventLoop) -> None:
        """Sum what each loop iteration ran: the sweep's steps, and everything (acks included)."""
        _iteration[:] = [0.0, 0.0, 0]
        run_once(self)
        if _iteration[1] > 0.002:
            ITERATIONS.append((time.time(), _iteration[0] * 1000, _iteration[1] * 1000, int(_iteration[2])))

    asyncio.base_events.BaseEventLoop._run_once = one_iteration  # type: ignore[attr-defined]
    started: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            GC_PAUSES.append((time.time(), (time.perf_counter() - started[0]) * 1000, info["generation"]))

    gc.callbacks.append(on_gc)

    from bot.store import wal

    checkpoint = wal.checkpoint

    def timed_checkpoint(path: str) -> tuple[int, int]:
        t = time.time()
        log, copied = checkpoint(path)
        CHECKPOINTS.append((t, time.time(), copied))
        return log, copied

    wal.checkpoint = timed_checkpoint  # type: ignore[assignment]


def suspended_at(coro: Any) -> str:
    """Where a task's coroutine chain is suspended now (innermost three frames): the await that
    ended a long step says which part of the code the step ran."""
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return " > ".join(frames[-3:]) or "(finished)"


def sample_stacks(loop_thread: int) -> None:
    """BENCH_STACKS=1: every 2 ms, if the loop thread has been in one callback for 15 ms, record its
    stack (says where a long callback spends its time; costs some GIL hand-offs, so opt-in).
    BENCH_STACKS=N with N > 1: from N ms on instead of 15."""
    import traceback

    after = float(os.environ.get("BENCH_STACKS") or 1)
    after = (after if after > 1 else 15.0) / 1000

    def watch() -> None:
        while True:
            time.sleep(0.002)
            started = _running[0]
            if started and time.perf_counter() - started > after:
                frame = sys._current_frames().get(loop_thread)
                if frame is not None:
                    stack = traceback.extract_stack(frame)[-6:]
                    STACKS.append((time.time(), " < ".join(f"{f.name}:{f.lineno}" for f in reversed(stack))))

    threading.Thread(target=watch, daemon=True).start()


def checkpointing(a: float, b: float) -> int | None:
    """Frames a WAL checkpoint copied while it overlapped [a, b] (None: no checkpoint ran then)."""
    hits = [copied for (s, e, copied) in CHECKPOINTS if s <= b and e >= a]
    return sum(hits) if hits else None


def iterations(a: float, b: float) -> dict[str, Any]:
    """Loop iterations in [a, b]: the most sweep work any one ran (ms, and in how many steps),
    the longest (all its callbacks, and the sweep's share of it), and how many ran > 20 ms."""
    inside = [x for x in ITERATIONS if a <= x[0] <= b]
    most = max(inside, key=lambda x: x[1], default=(0.0, 0.0, 0.0, 0))
    longest = max(inside, key=lambda x: x[2], default=(0.0, 0.0, 0.0, 0))
    return {
        "sweep_ms": most[1],
        "sweep_steps": most[3],
        "max_steps": max((x[3] for x in inside), default=0),
        "longest_ms": longest[2],
        "longest_sweep_ms": longest[1],
        "over_20": sum(1 for x in inside if x[2] > 20),
        "sweep_over_20": sum(1 for x in inside if x[1] > 20),
    }


def held(a: float, b: float, only: set[str] | None = None) -> tuple[float, str, float, float, str, str]:
    """Longest callback in [a, b] (wall ms, name), the longest GC pause, and the callback that
    spent longest on the CPU (ms, name, user/system/GC/page faults): wall minus CPU is time
    this process was descheduled (2 CPUs shared with other work) or waiting on synchronous I/O.
    ``only``: callbacks of these task coroutines (the sweep's steps)."""
    inside = [x for x in SLOW if a <= x[0] <= b and (only is None or x[2] in only)]
    worst = max(inside, key=lambda x: x[1], default=(0.0, 0.0, "-", 0.0, ""))
    busiest = max(inside, key=lambda x: x[3], default=(0.0, 0.0, "-", 0.0, ""))
    gc_ms = max((ms for (t, ms, _) in GC_PAUSES if a <= t <= b), default=0.0)
    return worst[1], worst[2], gc_ms, busiest[3], busiest[2], busiest[4]


def thread_sched(fd: int) -> tuple[float, float]:
    """(ms on the CPU, ms runnable but waiting for it) of the thread that opened ``fd``
    (Linux /proc/thread-self/schedstat). A late wake-up's remainder, neither, is time the
    thread was blocked in a system call or its virtual CPU was not running (steal)."""
    cpu, wait, _ = os.pread(fd, 128, 0).split()
    return int(cpu) / 1e6, int(wait) / 1e6


def cpu_steal(cpu: int) -> float:
    """Seconds the hypervisor has taken from ``cpu`` since boot (/proc/stat's steal column)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            return int(line.split()[8]) / os.sysconf("SC_CLK_TCK")
    return 0.0
