"""Benchmark: the database part of one reminder sweep (find + claim due rows, no posting).

    python bench/sweep.py [--sizes 1000,10000,100000,1000000] [--repeat 15]

For each size it builds a fresh SQLite file through fblink's own Store and
migrations, fills it with N links of which 100 are due (the rest are either
finished for this period, ``next_due_at`` NULL, or due later), plus N/2 posted
reminders, then times ``claim_due`` and prints the median and p95. Between runs
the 100 claims are undone outside the timed part. It also prints SQLite's query
plan, to show the due rows are read through the partial index.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.crypto import Vault, generate_key
from bot.store import Store

DAY = 86400
NOW = 1_800_000_000
THRESHOLDS = (14, 7, 3, 1)
DUE = 100
BUDGET_MS = 5.0


def fill(store: Store, n: int) -> None:
    conn = store.db.conn
    rows = []
    for i in range(n):
        if i < DUE:
            expires, next_due = NOW + 5 * DAY, NOW - 9 * DAY  # 14-day threshold passed
        elif i % 2:
            expires, next_due = NOW + 60 * DAY, NOW + 46 * DAY  # due later
        else:
            expires, next_due = NOW + 2 * DAY, None  # every threshold of this period already sent
        rows.append(
            (
                f"T{i % 7}",
                f"p{i}",
                f"Page {i}",
                "key1",
                None,
                None,
                "U1",
                NOW - 30 * DAY,
                "C1",
                expires,
                "active",
                1,
                next_due,
                NOW,
            )
        )
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO links (team_id, page_id, page_name, api_key, application_id, application_name, linked_by,"
        " linked_at, channel_id, expires_at, status, period, next_due_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.executemany(
        "INSERT INTO reminders (link_id, team_id, kind, period, threshold, status, claimed_at, claim_id, posted_at)"
        " VALUES (?, 'T0', 'expiry', 1, 14, 'posted', ?, 'x', ?)",
        [(i + 1, NOW - DAY, NOW - DAY) for i in range(DUE, n, 2)],
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")


def undo(store: Store) -> None:
    conn = store.db.conn
    conn.execute("BEGIN")
    conn.execute("DELETE FROM reminders WHERE link_id <= ? AND status = 'claimed'", [DUE])
    conn.execute("UPDATE links SET next_due_at = ? WHERE id <= ?", [NOW - 9 * DAY, DUE])
    conn.execute("COMMIT")


def plan(store: Store) -> list[str]:
    rows = store.db.conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM links WHERE status = 'active' AND next_due_at IS NOT NULL"
        " AND next_due_at <= ? ORDER BY next_due_at LIMIT 1000",
        [NOW],
    ).fetchall()
    rows += store.db.conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM reminders WHERE status = 'claimed' AND claimed_at <= ?"
        " ORDER BY claimed_at LIMIT 1000",
        [NOW],
    ).fetchall()
    return [r[-1] for r in rows]


def bench(n: int, repeat: int, tmp: Path) -> tuple[float, float]:
    path = tmp / f"bench-{n}.db"
    store = Store(str(path), Vault(generate_key()))
    t0 = time.perf_counter()
    fill(store, n)
    fill_s = time.perf_counter() - t0
    timings = []
    for _ in range(repeat):
        t = time.perf_counter()
        claims = store.reminders.claim_due(now=NOW, thresholds=THRESHOLDS, lease=600)
        timings.append((time.perf_counter() - t) * 1000)
        assert len(claims) == DUE, len(claims)
        undo(store)
    plans = plan(store)
    store.close()
    for suffix in ("", "-wal", "-shm", ".migrate-lock"):
        p = Path(str(path) + suffix)
        if p.exists():
            p.unlink()
    med = statistics.median(timings)
    p95 = sorted(timings)[max(0, int(len(timings) * 0.95) - 1)]
    print(f"{n:>9,} links  fill {fill_s:6.1f}s  claim {DUE} due: median {med:6.2f} ms  p95 {p95:6.2f} ms")
    for line in plans:
        print(f"{'':>12}plan: {line}")
    return med, p95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"fblink sweep benchmark: SQLite {__import__('sqlite3').sqlite_version}, {os.cpu_count()} cores, "
        f"{DUE} due links per size, {args.repeat} runs each"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            results[n] = bench(n, args.repeat, Path(tmp))
    small, big = min(sizes), max(sizes)
    ratio = results[big][0] / results[small][0]
    print(
        f"\nbudget: {big:,} links under {BUDGET_MS} ms: {'PASS' if results[big][0] < BUDGET_MS else 'MISS'} "
        f"({results[big][0]:.2f} ms)"
    )
    print(f"budget: {big:,} within 2x of {small:,}: {'PASS' if ratio <= 2 else 'MISS'} (x{ratio:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
