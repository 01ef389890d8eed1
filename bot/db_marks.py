"""Which kind of fblink a database belongs to: the demo's, or a real bot's.

Each side writes its own marker table and refuses the other's, in both directions, before
anything else opens the file. A demo database used by `fblink serve` would have the demo's
sweep "post" real reminders into the simulated Slack and mark them posted, so the real bot
never sends them; a real database opened by the demo would be changed by simulated users.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

DEMO_MARK = "demo_marker"  # written by `fblink demo` when it creates its database
REAL_MARK = "fblink_real_use"  # written by `fblink serve`, `sweep` and `rotate-keys`


class WrongDatabase(Exception):
    """The database belongs to the other kind of fblink; the message names the file and what to do."""


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def claim_for_real(path: str, command: str) -> None:
    """Refuse a demo database; otherwise record that a real command uses this one."""
    if path == ":memory:":
        return
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        if DEMO_MARK in tables(conn):
            raise WrongDatabase(
                f"{path} is a `fblink demo` database (it has the {DEMO_MARK} table): `fblink {command}` never "
                "uses one, or the demo's simulated Slack would get the real reminders. Point FBLINK_DATABASE at "
                "the real bot's database, or at a new file."
            )
        conn.execute(f"CREATE TABLE IF NOT EXISTS {REAL_MARK} (command TEXT PRIMARY KEY, last_at INTEGER NOT NULL)")
        conn.execute(f"INSERT OR REPLACE INTO {REAL_MARK} VALUES (?, ?)", (command, int(time.time())))
    finally:
        conn.close()


def check_for_demo(path: str) -> None:
    """Refuse a database a real command has used, or any non-empty one the demo did not make."""
    if not (Path(path).exists() and Path(path).stat().st_size > 0):
        return
    conn = sqlite3.connect(path)
    try:
        found = tables(conn)
    finally:
        conn.close()
    if REAL_MARK in found:
        raise WrongDatabase(
            f"{path} has been used by a real fblink (`fblink serve`, `sweep` or `rotate-keys`; table {REAL_MARK}); "
            "the demo never opens a real fblink database. Run `fblink demo` without --database, or give it a new file."
        )
    if DEMO_MARK not in found:
        raise WrongDatabase(
            f"{path} was not made by `fblink demo` (no {DEMO_MARK} table); the demo never opens a real fblink "
            "database. Run `fblink demo` without --database, or give it a new file."
        )
