"""The sweep keeps full GC passes off the event loop (bench/sweep_acks.py measured 10-40 ms each)."""

from __future__ import annotations

import gc
from typing import Any

from bot import heap
from tests.conftest import START
from tests.sweep_helpers import run_sweep, seed


def test_a_sweep_runs_no_full_collection_and_restores_the_thresholds(bot):
    seed(bot, 400)
    original = gc.get_threshold()
    seen: list[tuple[int, bool]] = []  # (generation, while a sweep was running)

    def watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append((info["generation"], gc.get_threshold()[2] == heap.NEVER))

    gc.collect()
    gc.freeze()  # as `fblink serve` does at start-up
    gc.collect()  # the long-lived heap outside the frozen one is now tiny: full passes come often
    gc.set_threshold(50, 1, 1)  # and sooner still, so 400 claims (800 objects) would cause several
    gc.callbacks.append(watch)
    try:
        report, _ = run_sweep(bot, START)
        restored = gc.get_threshold()
        keep = [[i] for i in range(2_000)]  # after the sweep, full passes come back
    finally:
        gc.callbacks.remove(watch)
        gc.set_threshold(*original)
        gc.unfreeze()
    assert sum(int(r.split()[3]) for r in report if r.startswith("posted digest")) == 400
    during = [gen for (gen, sweeping) in seen if sweeping]
    assert during and set(during) <= {0, 1}  # young collections ran during the sweep; no full one
    assert (2, False) in seen and len(keep) == 2_000
    assert restored == (50, 1, 1)


def test_overlapping_sweeps_restore_the_thresholds_when_the_last_one_ends():
    before = gc.get_threshold()
    with heap.no_full_collections():
        with heap.no_full_collections():
            assert gc.get_threshold()[2] == heap.NEVER
        assert gc.get_threshold()[2] == heap.NEVER  # the other sweep is still running
    assert gc.get_threshold() == before
