"""A serving process checkpoints SQLite's WAL from a worker thread, not inside its commits."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from bot.services import open_services

pytestmark = pytest.mark.sqlite_only  # SQLite's own connection and file


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
            pragma = await store.one("PRAGMA wal_autocheckpoint")
            await store.execute("CREATE TABLE t (x TEXT)")
            await store.execute("INSERT INTO t VALUES ('one')")
            right_after = rows_in_the_file(path)
            for _ in range(50):  # the checkpointer runs every second
                await asyncio.sleep(0.1)
                if rows_in_the_file(path) == 1:
                    break
            await store.execute("INSERT INTO t VALUES ('two')")
            return pragma, right_after, rows_in_the_file(path)

    pragma, right_after, while_serving = asyncio.run(go())
    assert pragma == {"wal_autocheckpoint": 0}  # commits never checkpoint on the event loop
    assert right_after == 0  # the commit left its pages in the WAL
    assert while_serving == 1  # the worker thread copied them in while the services ran
    assert rows_in_the_file(path) == 2  # and the last ones at close
