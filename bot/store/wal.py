"""WAL checkpoints off the event loop.

In WAL mode SQLite copies the log back into the database file (a checkpoint) inside
whichever commit pushes the log past 1,000 pages: that commit then copies ~4 MB and
fsyncs, for 10-40 ms, on the event loop when the serving process made it. A serving
process therefore turns that off for its own connection and checkpoints from a worker
thread with a connection of its own; SQLite's C code runs without the GIL, so the loop
keeps answering. :class:`bot.services.Services` does this from ``start()`` (so ``fblink
serve`` and ``fblink sweep`` both do); connections of their own (``rotate-keys``, the
migrations) keep SQLite's default.
"""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database

EVERY = 1.0  # seconds between checkpoints in a serving process: small ones, never a 4 MB one


def hand_over(db: Database) -> None:
    """This connection's commits stop checkpointing; :func:`checkpoint` must be called instead."""
    db.execute("PRAGMA wal_autocheckpoint=0")


def checkpoint(path: str) -> tuple[int, int]:
    """Copy what it can of the WAL into the database file (PASSIVE: never waits for a reader or
    writer). Blocking; meant for a worker thread. Returns (frames in the log, frames copied)."""
    conn = sqlite3.connect(path, timeout=5, isolation_level=None)
    try:
        _busy, log, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(log), int(copied)
    finally:
        conn.close()
