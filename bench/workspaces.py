"""Distributed mode at 10,000 installed workspaces on PostgreSQL, against one workspace's scale.

    python bench/workspaces.py [--workspaces 10000] [--pages 100] [--spread 1000] [--seconds 8] [--runs 5]
                               [--repeat 30] [--database-url postgresql://postgres@127.0.0.1:5432/test]

(needs `wrk`: apt-get install wrk, and a PostgreSQL server). A quick run: --workspaces 1000 --pages 10.

The script creates a database of its own on the server of ``--database-url`` (dropped at the end)
and two schemas in it, each brought up with `fblink migrate`:

- *baseline*: 1,000 links (workspaces of ``--pages`` links each; the single-workspace install
  serves the first of them), no installs;
- *many*: ``--workspaces`` installs (rows of ``slack_installations``, bot tokens encrypted with
  the servers' key) with ``--pages`` links each (1,000,000 links by default) and a posted
  reminder for every other link, written set-based (``INSERT … SELECT generate_series``), then
  ``VACUUM ANALYZE`` as autovacuum would.

In both, 100 links are due, spread over the workspaces; the rest are due later or done for
this period. Then three measurements, each against a baseline taken in the same run:

a. the sweep's database part: one ``ReminderLedger.claim_batch`` claiming the 100 due
   reminders (bot/store/ledger.py), the two schemas taking turns, ``--repeat`` times each
   (the claims undone between runs, outside the timed part), and the claim queries' plans
   at the large size. Budget: the median at the large size within 1.5x the baseline's. An
   index read of the 100 due rows costs about the same at any size, and a scan of the table
   costs 1,000x more at 1M: 1.5x catches the second with room for this VM's noise (run to
   run, medians of one size moved by up to 1.8x in bench/sweep.py's runs, but two schemas
   taking turns share the noise).
b. ack latency of `/fblink help` and `/fblink status` at 10 connections (wrk, as in
   bench/ack_latency.py: servers pinned to one CPU, wrk to the other), against fblink in
   single-workspace mode (``SLACK_BOT_TOKEN``, over *baseline*, commands from its one
   workspace) and in distributed mode (``SLACK_CLIENT_ID`` + ``SLACK_CLIENT_SECRET``, over
   *many*, commands from ``--spread`` workspaces in turn, each signed with its own
   ``team_id``). Each row ``--runs`` times (5), the modes taking turns A-B-B-A-A-B…, keeping
   the run with the median p99 (the VM is shared: single runs are often disturbed). Budget:
   p50 and p99 within 1.2x single-workspace mode.
c. the authorize cache's hit ratio under that spread load, from the distributed server's
   /metrics (``fblink_authorize_cache_total``): a hit serves the install from memory, a miss
   reads it from the database on the request's path (an entry lives 60 s ± 10%, then serves one
   more TTL while a background read, counted as ``refresh``, replaces it).

Prints the figures and a verdict per budget; exits 1 on a MISS (or a failed request).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ack_latency import (  # the path above first
    SERVER_PIN,
    WRK_PIN,
    FakeUpstream,
    PgSchema,
    Run,
    Server,
    command_body,
    fblink_env,
    http_post,
    run_wrk,
    settle,
    signed,
    spawn,
    stop_all,
    verdict,
    wait_ready,
)
from bench.sweep import THRESHOLDS, pg_plans, stats
from bot.authorize import CACHE_TTL
from bot.crypto import Vault, generate_key
from bot.oauth import BOT_SCOPES
from bot.store import Store, open_engine

DAY = 86400
NOW = int(time.time())
DUE = 100
BASELINE_LINKS = 1000
FLAT = 1.5  # claim at the large size within this factor of the baseline (see the docstring)
ACK = 1.2  # distributed mode's p50 and p99 within this factor of single-workspace mode
CONNS = 10
TTL = CACHE_TTL
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
CLIENT = {"SLACK_CLIENT_ID": "1111.2222", "SLACK_CLIENT_SECRET": "bench-client-secret"}


def team(w: int) -> str:
    return f"T{w:07d}"


# -- the database -----------------------------------------------------------------------------


class Database:
    """A database of its own on the server, for one run; dropped by :meth:`drop`."""

    def __init__(self, base: str) -> None:
        import psycopg

        self.base = base
        self.name = f"fblink_bench_ws_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
            version, buffers = (
                conn.execute(f"SHOW {x}").fetchone() or ("?",) for x in ("server_version", "shared_buffers")
            )
        self.server = f"PostgreSQL {version[0]}, shared_buffers {buffers[0]}"
        self.url = urllib.parse.urlunsplit(urllib.parse.urlsplit(base)._replace(path="/" + self.name))

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def fill(url: str, workspaces: int, pages: int, key: str, *, installs: bool) -> None:
    """``workspaces`` x ``pages`` links (DUE of them due now), a posted reminder for every link
    due later, and (``installs``) one workspace install each; set-based, then VACUUM ANALYZE."""
    import psycopg

    n = workspaces * pages
    step = n // DUE
    assert step * DUE == n, f"{n} links: the link count must be a multiple of {DUE}"
    params = {"n": n, "pages": pages, "step": step, "now": NOW, "day": DAY}
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        with conn.transaction():
            # Due now: the 14-day threshold passed (expires in 5 days); odd ones due in 46 days;
            # the rest done for this period (next_due_at NULL), as bench/sweep.py lays them out.
            conn.execute(
                "INSERT INTO links (team_id, page_id, page_name, api_key, linked_by, linked_at, channel_id,"
                " expires_at, status, period, next_due_at, checked_at, updated_at)"
                " SELECT 'T' || lpad((i / %(pages)s)::text, 7, '0'), (100000000000000 + i)::text,"
                " 'Bench Page ' || i, 'abcd1234', 'U0BENCH', %(now)s - 30 * %(day)s, 'C0BENCH',"
                " CASE WHEN i %% %(step)s = 0 THEN %(now)s + 5 * %(day)s"
                "      WHEN i %% 2 = 1 THEN %(now)s + 60 * %(day)s ELSE %(now)s + 2 * %(day)s END,"
                " 'active', 1,"
                " CASE WHEN i %% %(step)s = 0 THEN %(now)s - 9 * %(day)s"
                "      WHEN i %% 2 = 1 THEN %(now)s + 46 * %(day)s END,"
                " 0, %(now)s FROM generate_series(0, %(n)s - 1) AS i",
                params,
            )
            conn.execute(
                "INSERT INTO reminders (link_id, team_id, kind, period, threshold, status, claimed_at, claim_id,"
                " posted_at, finished_at)"
                " SELECT id, team_id, 'expiry', 1, 14, 'posted', %(now)s - %(day)s, 'x', %(now)s - %(day)s,"
                " %(now)s - %(day)s FROM links WHERE next_due_at > %(now)s",
                params,
            )
            if installs:
                vault = Vault(key)
                cols = (
                    "team_id, team_name, is_enterprise_install, app_id, token_type, bot_id, bot_user_id, bot_scopes,"
                    " bot_token_enc, user_id, installed_at, updated_at"
                )
                with conn.cursor().copy(f"COPY slack_installations ({cols}) FROM STDIN") as copy:
                    for w in range(workspaces):
                        token = vault.encrypt(f"xoxb-bench-{w}-{uuid.uuid4().hex}")
                        row = (
                            team(w),
                            f"Bench {w}",
                            0,
                            "A0BENCH",
                            "bot",
                            "B0BENCH",
                            "U0BOT",
                            ",".join(BOT_SCOPES),
                            token,
                        )
                        copy.write_row((*row, "U0INSTALL", NOW - DAY, NOW - DAY))
        conn.execute("VACUUM ANALYZE")


def due_ids(url: str) -> list[int]:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute("SELECT id FROM links WHERE next_due_at <= %s ORDER BY id", [NOW]).fetchall()
    return [int(r[0]) for r in rows]


# -- a. the sweep's database part --------------------------------------------------------------


class Claims:
    """One schema's Store, and one timed claim of its DUE due reminders, undone afterwards."""

    def __init__(self, name: str, url: str, key: str, links: int) -> None:
        self.name, self.url, self.links, self.key = name, url, links, key
        self.store = Store(open_engine(url), Vault(key))
        self.due = due_ids(url)
        assert len(self.due) == DUE, (name, len(self.due))

    async def claim(self) -> float:
        t = time.perf_counter()
        batch = await self.store.reminders.claim_batch(now=NOW, thresholds=THRESHOLDS, lease=600, limit=DUE)
        ms = (time.perf_counter() - t) * 1000
        assert len(batch.claims) == DUE, (self.name, len(batch.claims))
        marks = ", ".join("?" for _ in self.due)
        async with self.store.transaction():
            await self.store.execute(
                f"DELETE FROM reminders WHERE status = 'claimed' AND link_id IN ({marks})", self.due
            )
            await self.store.execute(
                f"UPDATE links SET next_due_at = ? WHERE id IN ({marks})", [NOW - 9 * DAY, *self.due]
            )
        return ms


def explain_claim(c: Claims) -> list[str]:
    """The claim's read and its two writes, shaped as the ledger runs them, each run three times
    inside a transaction that is rolled back (the last run's figures: pages warm)."""
    import psycopg

    ids = ", ".join(map(str, c.due))
    cases = " ".join(f"WHEN {i} THEN CAST({NOW + DAY} AS BIGINT)" for i in c.due)
    statements = {
        "read due": "SELECT * FROM links WHERE status = 'active' AND next_due_at IS NOT NULL"
        f" AND next_due_at <= {NOW} ORDER BY next_due_at LIMIT {DUE} FOR UPDATE SKIP LOCKED",
        "move due": f"UPDATE links SET next_due_at = CASE id {cases} END WHERE id IN ({ids})",
        "insert claims": "INSERT INTO reminders (link_id, team_id, kind, period, threshold, status, claimed_at, claim_id)"
        f" SELECT id, team_id, 'expiry', period, 7, 'claimed', {NOW}, md5(id::text) FROM links WHERE id IN ({ids})"
        " ON CONFLICT DO NOTHING",
    }
    out = []
    with psycopg.connect(c.url, connect_timeout=5) as conn:
        for label, sql in statements.items():
            for _ in range(3):
                plan = [r[0].strip() for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql).fetchall()]
                conn.rollback()
            buffers = next((x for x in plan if x.startswith("Buffers")), "")
            took = next((x for x in plan if x.startswith("Execution Time")), "")
            out.append(f"{label:<14} {took:<28} {buffers}")
    return out


async def measure_status(small: Claims, big: Claims, teams: dict[str, list[str]], repeat: int = 5) -> None:
    """Status's one statement (Store.status_page), in-process, for the teams the acks come from,
    the two schemas taking turns: the database's part of a status ack."""
    from bot.blocks import PAGE_SIZE

    timings: dict[str, list[float]] = {small.name: [], big.name: []}
    stores = {c.name: Store(open_engine(c.url), Vault(c.key)) for c in (small, big)}
    for store in stores.values():
        await store.open()
    try:
        for _ in range(repeat):
            for c, ts in ((small, teams["single workspace"]), (big, teams["distributed"])):
                for t in (ts * 200)[:200]:
                    started = time.perf_counter()
                    page = await stores[c.name].status_page(t, "U0BENCH", limit=PAGE_SIZE)
                    timings[c.name].append((time.perf_counter() - started) * 1000)
                    assert page.links, (c.name, t)
    finally:
        for store in stores.values():
            await store.close()
    print("\n  (information) status's statement in-process (Store.status_page), ms:")
    for c in (small, big):
        med, p95 = stats(timings[c.name])
        print(f"    {c.name:<9}{c.links:>11,} links: median {med:.2f}, p95 {p95:.2f} ({len(timings[c.name])} reads)")


async def measure_claims(small: Claims, big: Claims, repeat: int) -> bool:
    for c in (small, big):
        await c.store.open()
    try:
        for _ in range(6):  # warm-up (the pool's statements prepared), untimed
            for c in (small, big):
                await c.claim()
        timings: dict[str, list[float]] = {small.name: [], big.name: []}
        for _ in range(repeat):  # taking turns: the machine's noise hits both alike
            for c in (small, big):
                timings[c.name].append(await c.claim())
        print(f"\na. claim {DUE} due reminders (ReminderLedger.claim_batch), {repeat} runs each, in turns:")
        print(f"  {'':<10}{'links':>12}{'median ms':>12}{'p95 ms':>9}{'min ms':>9}")
        for c in (small, big):
            med, p95 = stats(timings[c.name])
            print(f"  {c.name:<10}{c.links:>12,}{med:>12.2f}{p95:>9.2f}{min(timings[c.name]):>9.2f}")
        print(f"\n  plans of the claim queries at {big.links:,} links:")
        for line in await pg_plans(big.store, big.url, NOW):
            print(f"    {line}")
        print("\n  where the time goes: the claim's statements, EXPLAIN (ANALYZE, BUFFERS), rolled back:")
        for c in (small, big):
            for line in explain_claim(c):
                print(f"    {c.name:<9}{line}")
        lo, hi = stats(timings[small.name])[0], stats(timings[big.name])[0]
        ok = hi <= FLAT * lo
        print(
            f"\n  budget: {big.links:,} links within {FLAT:g}x of {small.links:,} (median): {verdict(ok)}"
            f" (x{hi / lo:.2f}: {lo:.2f} -> {hi:.2f} ms)"
        )
        return ok
    finally:
        for c in (small, big):
            await c.store.close()


# -- b and c. acks, and the authorize cache ----------------------------------------------------

CACHE_RE = re.compile(r'^fblink_authorize_cache_total\{result="(hit|miss|refresh)"\} ([0-9.e+]+)$', re.M)


def cache_counts(server: Server) -> dict[str, int]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    found = {k: int(float(v)) for k, v in CACHE_RE.findall(text)}
    if set(found) != {"hit", "miss", "refresh"}:
        raise RuntimeError(f"{server.name}: no fblink_authorize_cache_total in /metrics")
    return found


def bodies_file(path: Path, text: str, teams: list[str]) -> dict[str, str]:
    """``signature<TAB>body`` per team, all signed now (bench/slack_post.lua's BENCH_BODIES)."""
    while True:
        ts = str(int(time.time()))
        lines = []
        for t in teams:
            body = command_body(text, t)
            got_ts, sig = signed(body)
            if got_ts != ts:  # the second turned while signing: start again, so one timestamp signs all
                break
            lines.append(f"{sig}\t{body.decode()}\n")
        else:
            # Written once, whole: an earlier version rewrote the file from inside its own open
            # handle on a retry, and the outer handle's flush left lines signed at the old second
            # (143 requests answered 401 in one run).
            path.write_text("".join(lines))
            return {"BENCH_BODIES": str(path), "BENCH_TS": ts}


def preflight(server: Server, text: str, team_id: str, expect: str) -> None:
    body = command_body(text, team_id)
    ts, sig = signed(body)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts}
    status, data = http_post(server.port, body, {**headers, "X-Slack-Signature": sig})
    if status != 200 or expect not in data.decode("utf-8", "replace"):
        raise RuntimeError(
            f"{server.name} `/fblink {text}` from {team_id}: {status} {data[:300]!r}\n{server.log_tail()}"
        )


def measure_acks(
    servers: dict[str, Server], teams: dict[str, list[str]], seconds: int, runs: int, work: Path
) -> tuple[bool, bool]:
    """(budgets met, every request answered 200) for help and status, ``runs`` each, A-B-B-A-A-B…"""
    single, many = "single workspace", "distributed"
    results: dict[tuple[str, str], list[Run]] = {}
    cache: list[tuple[str, dict[str, int], int]] = []  # (command, counts during the run, requests)
    warm: list[tuple[str, dict[str, int], Run]] = []  # the distributed warm-up runs, for information
    for text in ("help", "status"):
        for name in (single, many):  # warm-up: 2 s each, not kept; the cache fills here
            before = cache_counts(servers[name]) if name == many else None
            run = run_wrk(servers[name], CONNS, 2, "warm-up", bodies_file(work / "bodies", text, teams[name]))
            if before is not None:
                after = cache_counts(servers[name])
                warm.append((text, {k: after[k] - before[k] for k in after}, run))
        for pair in [(single, many), (many, single)] * (runs // 2) + [(single, many)] * (runs % 2):
            for name in pair:
                before = cache_counts(servers[name]) if name == many else None
                run = run_wrk(
                    servers[name], CONNS, seconds, f"{text}, {name}", bodies_file(work / "bodies", text, teams[name])
                )
                results.setdefault((text, name), []).append(run)
                if before is not None:
                    after = cache_counts(servers[name])
                    cache.append((text, {k: after[k] - before[k] for k in after}, run.requests))
                print(f"  {text:<7} {name:<17} {run.requests:>7} requests in {run.seconds:4.1f} s", flush=True)
                if not run.ok:
                    print(f"    not all answered 200; the server's log:\n{servers[name].log_tail(10)}", flush=True)
    print(f"\nb. ack latency at c={CONNS} (wrk; {runs} runs each, A-B-B-A-A-B…; the median-p99 run kept, ms):")
    print(f"  {'command':<8}{'mode':<18}{'requests':>9}{'req/s':>8}{'p50':>8}{'p99':>8}  p99s of the runs, in order")
    kept: dict[tuple[str, str], Run] = {}
    all_ok = True
    for (text, name), done in results.items():
        r = sorted(done, key=lambda x: x.p99)[len(done) // 2]
        kept[(text, name)] = r
        all_ok &= all(x.ok for x in done)
        bad = "".join(
            f"  FAIL: {x.non200} non-200 (last {x.last_bad}), {x.socket_errors} socket errors or timeouts"
            for x in done
            if not x.ok
        )
        print(
            f"  {text:<8}{name:<18}{r.requests:>9}{r.rps:>8.0f}{r.p50:>8.2f}{r.p99:>8.2f}"
            f"  {'/'.join(f'{x.p99:.2f}' for x in done)} (p50s {'/'.join(f'{x.p50:.2f}' for x in done)}){bad}"
        )
    met = True
    print(f"\n  budgets: distributed within {ACK:g}x single-workspace mode")
    for text in ("help", "status"):
        a, b = kept[(text, single)], kept[(text, many)]
        for what, x, y in (("p50", b.p50, a.p50), ("p99", b.p99, a.p99)):
            ok = x <= ACK * y
            met &= ok
            print(
                f"  {text:<7}{what} {x:7.2f} ms vs {ACK:g}x {y:.2f} = {ACK * y:7.2f} ms (x{x / y:.2f})  {verdict(ok)}"
            )
    hits = sum(c["hit"] for _, c, _ in cache)
    misses = sum(c["miss"] for _, c, _ in cache)
    print(f"\nc. authorize cache under the spread load ({len(teams[many]):,} workspaces in turn), per measured run:")
    for text, c, requests in cache:
        print(
            f"  {text:<7} hits {c['hit']:>7,}  misses {c['miss']:>6,}  ({c['hit'] / max(1, c['hit'] + c['miss']):.2%});"
            f" background reads {c['refresh']:>5,}; requests answered {requests:,}"
        )
    print(f"  in all: {hits:,} hits, {misses:,} misses: hit ratio {hits / max(1, hits + misses):.2%}")
    for text, c, run in warm:
        print(
            f"  (information) the 2 s warm-up of {text} before them: {c['hit']:,} hits, {c['miss']:,} misses;"
            f" p50 {run.p50:.2f} ms, p99 {run.p99:.2f} ms"
        )
    rate = sum(r for _, _, r in cache) / max(1, len(cache) * seconds)
    spread = len(teams[many])
    print(
        f"  (information) in a steady load each workspace is read once per {TTL:g} s (±10%), in the background"
        f" while its entry still serves: at {rate:,.0f} requests a second from {spread:,} workspaces, no request"
        f" waits for one; before refresh ahead, {1 - spread / (TTL * rate):.2%} hits"
    )
    return met, all_ok


# -- the run ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspaces", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=100, help="links per workspace")
    parser.add_argument("--spread", type=int, default=1000, help="workspaces the commands come from, in turn")
    parser.add_argument("--seconds", type=int, default=8, help="length of each measured wrk run")
    parser.add_argument("--runs", type=int, default=5, help="measured wrk runs per command and mode")
    parser.add_argument("--repeat", type=int, default=30, help="timed claims per schema")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/workspaces.py needs the `wrk` load generator: apt-get install wrk", file=sys.stderr)
        return 2
    spread = min(args.spread, args.workspaces)
    base_ws = max(1, BASELINE_LINKS // args.pages)
    started = time.monotonic()
    print(
        f"fblink workspaces benchmark: {args.workspaces:,} installs x {args.pages} links"
        f" ({args.workspaces * args.pages:,} links) vs one workspace's scale ({base_ws * args.pages:,} links);"
        f" {os.cpu_count()} CPUs"
        + (f", servers on CPU {SERVER_PIN[-1]}, wrk on CPU {WRK_PIN[-1]}" if SERVER_PIN else ", no CPU pinning"),
        flush=True,
    )
    key = generate_key()
    fake = FakeUpstream()
    servers: list[Server] = []
    db: Database | None = None
    tmp = tempfile.TemporaryDirectory(prefix="fblink-bench-ws-")
    work = Path(tmp.name)
    try:
        db = Database(args.database_url)
        schemas = {"baseline": PgSchema(db.url), "many": PgSchema(db.url)}
        single_env = fblink_env(fake, key, "single", {"FBLINK_DATABASE_URL": schemas["baseline"].url})
        many_env = fblink_env(fake, key, "distributed", {"FBLINK_DATABASE_URL": schemas["many"].url})
        del many_env["SLACK_BOT_TOKEN"]
        many_env.update(CLIENT)
        migrated = schemas["baseline"].migrate(single_env, work)
        schemas["many"].migrate(single_env, work)
        print(
            f"{db.server}; database {db.name}, schemas {schemas['baseline'].name} and {schemas['many'].name}: {migrated}"
        )
        t0 = time.monotonic()
        fill(schemas["baseline"].url, base_ws, args.pages, key, installs=False)
        t1 = time.monotonic()
        fill(schemas["many"].url, args.workspaces, args.pages, key, installs=True)
        t2 = time.monotonic()
        print(
            f"filled: baseline {base_ws * args.pages:,} links in {t1 - t0:.1f} s;"
            f" many {args.workspaces:,} installs, {args.workspaces * args.pages:,} links"
            f" and {args.workspaces * args.pages // 2:,} posted reminders in {t2 - t1:.1f} s",
            flush=True,
        )

        small = Claims("baseline", schemas["baseline"].url, key, base_ws * args.pages)
        big = Claims("many", schemas["many"].url, key, args.workspaces * args.pages)
        claims_ok = asyncio.run(measure_claims(small, big, args.repeat))

        servers = [
            spawn("fblink-single", "fblink_app", single_env, work),
            spawn("fblink-distributed", "fblink_app", many_env, work),
        ]
        for s in servers:
            wait_ready(s)
        for s in servers:
            settle(s)
        named = {"single workspace": servers[0], "distributed": servers[1]}
        spread_teams = [team(i * (args.workspaces // spread)) for i in range(spread)]
        teams = {"single workspace": [team(0)], "distributed": spread_teams}
        for name, s in named.items():
            preflight(s, "help", teams[name][0], "fblink")
            preflight(s, "status", teams[name][-1], f"{args.pages} links")
        print(
            f"\nservers up: single-workspace mode :{servers[0].port}, distributed mode :{servers[1].port};"
            f" distributed commands from {spread:,} workspaces in turn ({spread_teams[0]} ... {spread_teams[-1]})",
            flush=True,
        )
        acks_ok, answered = measure_acks(named, teams, args.seconds, args.runs, work)
        stop_all(servers)
        asyncio.run(measure_status(small, big, teams))
        with fake.lock:
            calls = dict(fake.calls)
        print(f"\nupstream calls seen by the local fake: {calls or 'none'} (none expected on the ack path)")
        print(f"total time {time.monotonic() - started:.0f} s")
        ok = claims_ok and acks_ok and answered
        print(f"\nVERDICT: {verdict(ok)}")
        return 0 if ok else 1
    finally:
        stop_all(servers)
        fake.stop()
        if db is not None:
            db.drop()
        tmp.cleanup()


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through main's finally: servers stopped, database dropped


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    sys.exit(main())
