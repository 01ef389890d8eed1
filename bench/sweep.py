"""Benchmark: the database part of one reminder sweep (find + claim due rows, no posting), on
SQLite and on PostgreSQL side by side.

    python bench/sweep.py [--sizes 1000,10000,100000,1000000] [--repeat 15] [--engines sqlite,postgresql]

Each engine gets one database through fblink's own Store and migrations: a temporary SQLite
file, and a PostgreSQL schema of its own (created for this run, brought up with
`fblink migrate`, dropped at the end) on ``BENCH_DATABASE_URL`` (default: the local server,
database ``test``). Both grow through the sizes: at N links, 100 are due (the rest are either
finished for this period, ``next_due_at`` NULL, or due later), plus N/2 posted reminders;
rows are bulk-loaded outside the Store (SQLite ``executemany``, PostgreSQL ``COPY``), then
``ANALYZE``. At each size the two engines take turns: one timed ``claim_due`` through the
Store on SQLite, one on PostgreSQL, and so on; the 100 claims are undone between runs,
outside the timed part. Median and p95 per engine and size, then each engine's query plans
of the claim queries (SQLite ``EXPLAIN QUERY PLAN``; PostgreSQL ``EXPLAIN`` of the plan the
pool's prepared statement settles on, the generic one, and of the one-off custom plan), to
show the due rows are read through the partial index ``links_due``.

Budgets: on each engine, the largest size within 2x of the smallest (flat); on SQLite, also
the largest under 5 ms, as before. A script that prints figures, never a test.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.crypto import Vault, generate_key
from bot.store import Store, open_engine

DAY = 86400
NOW = 1_800_000_000
THRESHOLDS = (14, 7, 3, 1)
DUE = 100
SQLITE_BUDGET_MS = 5.0
FLAT = 2.0  # the largest size's median within this factor of the smallest's
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
MIGRATE_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-bench",
    "SLACK_SIGNING_SECRET": "bench",
    "FACEBOOK_APP_ID": "1",
    "FACEBOOK_APP_SECRET": "bench",
    "VONAGE_API_KEY": "bench",
    "VONAGE_API_SECRET": "bench",
    "FBLINK_PUBLIC_URL": "https://fblink.bench.test",
}

LINK_COLS = (
    "id, team_id, page_id, page_name, api_key, application_id, application_name, linked_by, linked_at, channel_id,"
    " expires_at, status, period, next_due_at, checked_at, updated_at"
)
REMINDER_COLS = "link_id, team_id, kind, period, threshold, status, claimed_at, claim_id, posted_at, finished_at"

# The claim queries as the ledger runs them (bot/store/ledger.py, ReminderLedger.claim_batch).
DUE_SQL = (
    "SELECT * FROM links WHERE status = 'active' AND next_due_at IS NOT NULL AND next_due_at <= ?"
    " ORDER BY next_due_at LIMIT ?"
)
STALE_SQL = (
    "SELECT id, link_id, kind, period, threshold, attempts, claimed_at FROM reminders"
    " WHERE status = 'claimed' AND claimed_at <= {clock} - ? ORDER BY attempts, claimed_at LIMIT ?"
)


def link_rows(start: int, stop: int) -> Iterator[tuple[Any, ...]]:
    """Links ``start`` .. ``stop - 1`` (id = i + 1): the first DUE are due now, then alternately
    due in 46 days and done for this period."""
    for i in range(start, stop):
        if i < DUE:
            expires, next_due = NOW + 5 * DAY, NOW - 9 * DAY  # 14-day threshold passed
        elif i % 2:
            expires, next_due = NOW + 60 * DAY, NOW + 46 * DAY  # due later
        else:
            expires, next_due = NOW + 2 * DAY, None  # every threshold of this period already sent
        yield (
            i + 1,
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
            0,
            NOW,
        )


def reminder_rows(start: int, stop: int) -> Iterator[tuple[Any, ...]]:
    """A posted reminder for every other link that is not due (links DUE+1, DUE+3, ...)."""
    first = max(start, DUE)
    first += (first - DUE) % 2
    for i in range(first, stop, 2):
        yield (i + 1, f"T{i % 7}", "expiry", 1, 14, "posted", NOW - DAY, "x", NOW - DAY, NOW - DAY)


# -- the two engines --------------------------------------------------------------------------


class Bench:
    name: str
    store: Store

    async def grow(self, start: int, stop: int) -> None: ...

    async def plans(self) -> list[str]: ...

    async def close(self) -> None:
        await self.store.close()

    async def undo(self) -> None:
        async with self.store.transaction():
            await self.store.execute("DELETE FROM reminders WHERE link_id <= ? AND status = 'claimed'", [DUE])
            await self.store.execute("UPDATE links SET next_due_at = ? WHERE id <= ?", [NOW - 9 * DAY, DUE])

    async def claim(self) -> float:
        t = time.perf_counter()
        claims = await self.store.reminders.claim_due(now=NOW, thresholds=THRESHOLDS, lease=600)
        ms = (time.perf_counter() - t) * 1000
        assert len(claims) == DUE, (self.name, len(claims))
        await self.undo()
        return ms


class SqliteBench(Bench):
    name = "SQLite"

    def __init__(self, tmp: Path, n: int) -> None:
        self.path = str(tmp / f"bench-{n}.db")
        self.store = Store(open_engine(self.path), Vault(generate_key()))

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.engine.db.conn  # type: ignore[attr-defined, no-any-return]

    async def grow(self, start: int, stop: int) -> None:
        conn = self.conn
        marks = ", ".join("?" * 16)
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO links ({LINK_COLS}) VALUES ({marks})", link_rows(start, stop))
        conn.executemany(
            f"INSERT INTO reminders ({REMINDER_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", reminder_rows(start, stop)
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")

    async def plans(self) -> list[str]:
        out = []
        for sql, params in (
            (DUE_SQL, [NOW, 200]),
            (STALE_SQL.format(clock="?"), [NOW, 600, 200]),
        ):
            out.append(sql.split(" WHERE ")[0].replace("SELECT ", "", 1)[:60] + " ...")
            out += ["  " + r[-1] for r in self.conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()]
        return out


class PostgresBench(Bench):
    name = "PostgreSQL"

    def __init__(self, base: str, n: int) -> None:
        import psycopg

        self.base = base
        self.schema = f"fblink_bench_{n}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        self.url = with_schema(base, self.schema)
        done = subprocess.run(  # the operator's way: `fblink migrate` (settings it does not use are dummies)
            [sys.executable, "-m", "bot.cli", "migrate"],
            cwd=tempfile.gettempdir(),  # no .env read
            env={**os.environ, **MIGRATE_ENV, "FBLINK_DATABASE_URL": self.url, "FBLINK_SECRET_KEY": generate_key()},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            self.drop()
            raise RuntimeError(f"fblink migrate failed: {done.stdout}{done.stderr}")
        self.migrated = done.stdout.strip()
        self.store = Store(open_engine(self.url), Vault(generate_key()))

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    async def close(self) -> None:
        await self.store.close()
        self.drop()

    async def grow(self, start: int, stop: int) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            async with conn.transaction():
                for table, cols, rows in (
                    ("links", LINK_COLS, link_rows(start, stop)),
                    ("reminders", REMINDER_COLS, reminder_rows(start, stop)),
                ):
                    async with conn.cursor().copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                        buf = io.StringIO()
                        for row in rows:
                            buf.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
                            if buf.tell() > 1 << 20:
                                await copy.write(buf.getvalue())
                                buf = io.StringIO()
                        await copy.write(buf.getvalue())
            await conn.execute("ANALYZE links")
            await conn.execute("ANALYZE reminders")
        await self.store.engine.reset_sequences()

    async def plans(self) -> list[str]:
        return await pg_plans(self.store, self.url)


async def pg_plans(store: Store, url: str, now: int = NOW) -> list[str]:
    """EXPLAIN of the claim queries on PostgreSQL: the generic plan the pool's prepared statement
    settles on after a few runs, and the one-off custom plan."""
    import psycopg

    clock = store.dialect.now
    lock = store.dialect.skip_locked
    out = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for i, (sql, params) in enumerate(
            ((DUE_SQL + lock, [now, 200]), (STALE_SQL.format(clock=clock) + lock, [0, 600, 200]))
        ):
            pg = sql.replace("?", "%s")
            out.append(sql.split(" WHERE ")[0].replace("SELECT ", "", 1)[:60] + " ...")
            n = 0
            numbered = "".join(f"${(n := n + 1)}" if ch == "?" else ch for ch in sql)
            await conn.execute(f"PREPARE claim{i} AS {numbered}")
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            cur = await conn.execute(f"EXPLAIN EXECUTE claim{i} ({', '.join(map(str, params))})")
            out += ["  generic: " + r[0] for r in await cur.fetchall()]
            await conn.execute("RESET plan_cache_mode")
            cur = await conn.execute("EXPLAIN " + pg, params)
            out += ["  custom:  " + r[0] for r in await cur.fetchall()]
    return out


def with_schema(url: str, schema: str) -> str:
    """The URL with ``search_path`` set to ``schema`` (as tests/pg.py does)."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


# -- the run ----------------------------------------------------------------------------------


def stats(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


async def run(sizes: list[int], repeat: int, engines: list[str], tmp: Path) -> int:
    benches: dict[tuple[str, int], Bench] = {}
    names = [n for e, n in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")) if e in engines]
    try:
        for n in sizes:
            fills = []
            for name in names:
                if name == "SQLite":
                    b: Bench = SqliteBench(tmp, n)
                else:
                    b = PostgresBench(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL), n)
                benches[(name, n)] = b
                await b.store.open()
                t0 = time.perf_counter()
                await b.grow(0, n)
                fills.append(f"{name} {time.perf_counter() - t0:.1f} s")
            print(f"{n:>9,} links filled: {', '.join(fills)}", flush=True)
        pg = [b for b in benches.values() if isinstance(b, PostgresBench)]
        if pg:
            print(f"PostgreSQL: one schema per size ({', '.join(b.schema for b in pg)}): {pg[0].migrated}")
        for b in benches.values():  # warm-up (the pool's statements prepared), untimed
            for _ in range(6):
                await b.claim()
        timings: dict[tuple[str, int], list[float]] = {k: [] for k in benches}
        for _ in range(repeat):
            for k, b in benches.items():  # every engine and size takes a turn: the machine's noise hits all alike
                timings[k].append(await b.claim())
        results = {k: stats(t) for k, t in timings.items()}
        print(f"\nclaim {DUE} due reminders (claim_due through the Store), {repeat} runs each:")
        print(f"{'links':>11}" + "".join(f"{name + ' median':>20}{'p95':>9}{'min':>9}" for name in names))
        for n in sizes:
            print(
                f"{n:>11,}"
                + "".join(
                    f"{results[(name, n)][0]:>17.2f} ms{results[(name, n)][1]:>9.2f}{min(timings[(name, n)]):>9.2f}"
                    for name in names
                )
            )
        print()
        for name in names:
            print(f"{name} plans of the claim queries (at {sizes[-1]:,} links):")
            for line in await benches[(name, sizes[-1])].plans():
                print(f"    {line}")
        small, big = min(sizes), max(sizes)
        print("\nBudgets:")
        ok = True
        for name in names:
            lo, hi = results[(name, small)][0], results[(name, big)][0]
            flat = hi <= FLAT * lo
            ok &= flat
            print(
                f"  {name:<11} {big:,} links within {FLAT:g}x of {small:,} (median): {'PASS' if flat else 'MISS'}"
                f" (x{hi / lo:.2f}: {lo:.2f} -> {hi:.2f} ms)"
            )
            if name == "SQLite":
                under = hi < SQLITE_BUDGET_MS
                ok &= under
                print(
                    f"  {name:<11} {big:,} links under {SQLITE_BUDGET_MS:g} ms: {'PASS' if under else 'MISS'}"
                    f" ({hi:.2f} ms)"
                )
        if len(names) == 2:
            print(
                "  (information) PostgreSQL / SQLite, median: "
                + ", ".join(f"{n:,}: x{results[('PostgreSQL', n)][0] / results[('SQLite', n)][0]:.1f}" for n in sizes)
            )
        print(f"\nVERDICT: {'PASS' if ok else 'MISS'}")
        return 0  # a missed budget is a figure to report, not a failed run
    finally:
        for (name, n), b in benches.items():
            try:
                await b.close()
            except Exception as exc:  # the others are still closed
                print(f"closing {name} ({n}): {type(exc).__name__}: {exc}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    engines = [e.strip().lower() for e in args.engines.split(",")]
    print(
        f"fblink sweep benchmark: SQLite {sqlite3.sqlite_version}, {os.cpu_count()} cores, "
        f"{DUE} due links per size, {args.repeat} timed runs per engine and size (every engine and size taking turns)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="fblink-sweep-") as tmp:
        return asyncio.run(run(sizes, args.repeat, engines, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
