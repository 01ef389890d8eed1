"""A serving process checkpoints SQLite's WAL from a worker thread, not inside its commits."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading

import pytest

from bot.services import open_services


def rows_in_the_file(path: str) -> int:
    """Rows of table t in the database file itself, ignoring the WAL (what checkpoints copied)."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])
    except sqlite3.DatabaseError:  # the table is not in the file yet
        return 0
    finally:
        conn.close()


def test_checkpoints_run_in_a_worker_thread_while_serving_and_at_close(bot, tmp_path):
    path = str(tmp_path / "wal.db")
    settings = bot.services.settings.model_copy(update={"fblink_database": path})

    async def go() -> tuple[dict[str, int] | None, int, int]:
        async with open_services(settings) as services:
            store = services.store
            pragma = store.one("PRAGMA wal_autocheckpoint")
            store.db.execute("CREATE TABLE t (x TEXT)")
            store.db.execute("INSERT INTO t VALUES ('one')")
            right_after = rows_in_the_file(path)
            for _ in range(50):  # the checkpointer runs every second
                await asyncio.sleep(0.1)
                if rows_in_the_file(path) == 1:
                    break
            store.db.execute("INSERT INTO t VALUES ('two')")
            return pragma, right_after, rows_in_the_file(path)

    pragma, right_after, while_serving = asyncio.run(go())
    assert pragma == {"wal_autocheckpoint": 0}  # commits never checkpoint on the event loop
    assert right_after == 0  # the commit left its pages in the WAL
    assert while_serving == 1  # the worker thread copied them in while the services ran
    assert rows_in_the_file(path) == 2  # and the last ones at close


def idle_policy_allowed() -> bool:
    """Whether this machine lets a thread lower itself to SCHED_IDLE (Linux; some sandboxes refuse)."""
    if not hasattr(os, "SCHED_IDLE"):
        return False
    ok: list[bool] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            ok.append(True)
        except OSError:
            ok.append(False)

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return ok[0]


@pytest.mark.skipif(not idle_policy_allowed(), reason="this machine refuses SCHED_IDLE")
def test_the_checkpoint_and_metrics_threads_give_way_to_the_event_loop(bot, tmp_path):
    """SQLite runs without the GIL, so these threads compete with the loop thread for the CPU:
    under SCHED_IDLE the loop thread preempts them whenever it wakes up."""
    settings = bot.services.settings.model_copy(update={"fblink_database": str(tmp_path / "idle.db")})

    async def go() -> tuple[int, int]:
        async with open_services(settings) as services:
            loop = asyncio.get_running_loop()
            assert services.checkpointer is not None
            checkpointer = await loop.run_in_executor(services.checkpointer, os.sched_getscheduler, 0)
            await services.metrics.refresh_link_states(services.store, services.now())  # a /metrics scrape's count
            assert services.metrics.worker is not None
            counter = await loop.run_in_executor(services.metrics.worker, os.sched_getscheduler, 0)
            return checkpointer, counter

    checkpointer, counter = asyncio.run(go())
    assert checkpointer == os.SCHED_IDLE and counter == os.SCHED_IDLE
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the loop's own thread keeps its normal policy
