"""Ack latency of fblink on SQLite and on PostgreSQL vs bare Bolt vs a bare Starlette floor, driven by wrk.

    python bench/ack_latency.py            (needs `wrk`: apt-get install wrk, and a PostgreSQL server)

One run, all on 127.0.0.1, each server in its own uvicorn process (--workers 1):

- floor:  Starlette POST /slack/events that reads the body and answers 200;
- bolt:   a bare slack_bolt AsyncApp (default settings) whose /fblink handler only
          acks, behind Bolt's Starlette adapter; a second copy with fblink's setting,
          process_before_response=True, is shown for reference ("pbr=True");
- fblink: the real app, ``create_app(settings, scheduler=False)`` (what `fblink serve`
          runs, minus the scheduler), twice: over a temporary SQLite database, and over
          PostgreSQL (``BENCH_DATABASE_URL``, default the local server's database
          ``test``), in a schema of its own created for this run, brought up with
          `fblink migrate` and dropped at the end. Each holds the same 1,000 links,
          written through the Store (then PostgreSQL's ``ANALYZE``, as autovacuum
          would run it within a minute; SQLite keeps no statistics, as fblink leaves
          it). Their upstream URLs (Slack Web API, Graph, Vonage) point at a local
          counting fake; only auth.test is expected (Bolt calls it once and caches it).
          A third copy over the same SQLite file runs on the standard library's asyncio
          loop and h11 instead of uvloop and httptools: uvicorn[standard]'s before/after.

wrk sends one signed slash command over and over (bench/slack_post.lua), at 1, 10 and
50 connections, each level long enough for > 2,000 requests (a 1 s probe per row
measures the rate and warms up; the floor, the budgets' yardstick, is run 3 times and
its median-p99 run kept; each fblink row is run twice, the engines in A-B-B-A order, and
its lower-p99 run kept). With 2+ CPUs the servers are pinned to one CPU and wrk to
another (PostgreSQL's own processes are not pinned: they share both CPUs), and after
each run the script waits for the server to go idle, so queued requests never spill
into the next row. Then the budgets, on each engine: help p50/p99 <= 2x floor and
status p99 <= 5x floor (the budgets before issue 18); and status on PostgreSQL <= 2x
status on SQLite, p50 and p99 (issue 18's); then each fblink server's RSS across three
batches of requests, and its peak (VmHWM). A script that prints figures, never a test.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "slack_post.lua"
sys.path.insert(0, str(ROOT))

SIGNING_SECRET = "bench-" + os.urandom(12).hex()
BOT_TOKEN = "xoxb-bench-token"
TEAM = "T0BENCH"
N_LINKS = 1000
LEVELS = (1, 10, 50)
TARGET_REQUESTS = 2000  # each reported row must exceed this
PROBE_SECONDS = 1  # warm-up run at the same concurrency, also measures the rate
MIN_SECONDS, MAX_SECONDS = 1, 30
MEMORY_BATCH_SECONDS = 2
FLOOR_REPEATS = 3  # the floor is the budgets' yardstick: keep the run with the median p99
ENGINE_REPEATS = 2  # each fblink row twice, the engines in A-B-B-A order: keep the run with the lower p99
MEMORY_BATCH_CONNS = 10
RSS_NOISE_KB = 2 * 1024
RSS_LIMIT_KB = 150 * 1024
TIME_BUDGET = 270.0  # seconds; later runs are shortened to stay under about 4.5 minutes
STARTED = time.monotonic()
FLOOR, BOLT, BOLT_PBR = "floor (Starlette)", "bare Bolt (ack only)", "bare Bolt, pbr=True"
ENGINES = ("SQLite", "PostgreSQL")
HELP = {e: f"fblink help, {e}" for e in ENGINES}
STATUS = {e: f"fblink status, {e}" for e in ENGINES}
# Issue 19's "before": the same app on the standard library's loop and h11, as uvicorn runs
# without uvicorn[standard]; every other fblink row runs on uvloop and httptools (uvicorn's
# "auto", which fblink serve uses).
PLAIN = {"help": "fblink help, SQLite, asyncio+h11", "status": "fblink status, SQLite, asyncio+h11"}
PLAIN_ARGS = ("--loop", "asyncio", "--http", "h11")
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


# ---------------------------------------------------------------------------------------------
# a local stand-in for every upstream: answers auth.test, counts every call


class FakeUpstream:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                with fake.lock:
                    fake.calls[path] = fake.calls.get(path, 0) + 1
                if path.endswith("/auth.test"):
                    body = {
                        "ok": True,
                        "url": "https://bench.slack.test/",
                        "team": "Bench",
                        "user": "fblink",
                        "team_id": TEAM,
                        "user_id": "UBOT",
                        "bot_id": "BBOT",
                        "is_enterprise_install": False,
                    }
                else:
                    body = {"ok": True}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="fake-upstream", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------------------------
# servers


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, n: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment minus anything fblink/Bolt would read, plus our values."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("SLACK_", "FACEBOOK_", "VONAGE_", "FBLINK_", "BENCH_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def pinning() -> tuple[list[str], list[str]]:
    """With 2+ CPUs and taskset, servers run on CPU 0 and wrk on CPU 1, so the load generator
    never steals the server's core (one server is loaded at a time). Otherwise no pinning."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return [], []
    return ["taskset", "-c", str(cpus[0])], ["taskset", "-c", str(cpus[1])]


SERVER_PIN, WRK_PIN = pinning()


def spawn(name: str, factory: str, env: dict[str, str], logdir: Path, extra: tuple[str, ...] = ()) -> Server:
    port = free_port()
    log = logdir / f"{name}.log"
    cmd = [
        *SERVER_PIN,
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"bench._apps:{factory}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
        "--lifespan",
        "on",
        *extra,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Server(name, proc, port, log)


def http_post(port: int, body: bytes, headers: dict[str, str], timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/slack/events", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(server: Server, timeout: float = 30.0) -> None:
    """Up when /slack/events answers anything (an unsigned POST gets 401 from fblink and Bolt)."""
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(OSError):
            http_post(server.port, b"", {"Content-Type": "application/x-www-form-urlencoded"}, timeout=1)
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not answer within {timeout:.0f}s:\n{server.log_tail()}")
        time.sleep(0.05)


def stop_all(servers: list[Server]) -> None:
    for s in servers:
        if s.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                s.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    for s in servers:
        try:
            s.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(s.proc.pid, signal.SIGKILL)  # its own session: only this server and children
            s.proc.wait(5)


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def settle(server: Server, timeout: float = 5.0) -> None:
    """Wait until the server stops using CPU. When wrk stops, up to N accepted requests are
    still queued in a slow server; left running, they would load the next run's server."""
    deadline = time.monotonic() + timeout
    before = cpu_ticks(server.pid)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = cpu_ticks(server.pid)
        if now == before:
            return
        before = now


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """The process's resident set (VmRSS) or its peak so far (VmHWM), in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


# ---------------------------------------------------------------------------------------------
# the database and the signed request


async def fill_database(target: str, key: str) -> None:
    """N_LINKS links through the Store (a SQLite path or a migrated PostgreSQL URL)."""
    from bot.crypto import Vault
    from bot.store import Store

    rng = random.Random(42)
    now = int(time.time())
    store = Store(target, Vault(key))
    await store.open()
    try:
        async with store.transaction():
            for i in range(N_LINKS):
                roll = rng.random()
                expires = None if roll < 0.03 else now + rng.randint(-10, 90) * 86400 + rng.randint(0, 86399)
                await store.upsert_link(
                    TEAM,
                    f"{100000000000000 + i}",
                    now=now - rng.randint(0, 80) * 86400,
                    page_name=f"Bench Page {i:04d} & Co <{rng.choice(['news', 'shop', 'help'])}>",
                    api_key=rng.choice(["abcd1234", "efgh5678"]),
                    application_id=f"app-{i:04d}" if rng.random() < 0.5 else None,
                    application_name=f"Bench App {i}" if rng.random() < 0.4 else None,
                    linked_by=f"U{rng.randint(10000, 99999)}" if rng.random() < 0.9 else None,
                    channel_id="C0BENCH",
                    expires_at=expires,
                    status="gone" if roll > 0.98 else "active",
                    next_due_at=expires - 14 * 86400 if expires else None,
                )
    finally:
        await store.close()


class PgSchema:
    """A schema of its own on the PostgreSQL server, for one run; dropped by :meth:`drop`."""

    def __init__(self, base: str) -> None:
        import psycopg

        self.base = base
        self.name = f"fblink_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
        parts = urllib.parse.urlsplit(base)
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "options"]
        query.append(("options", f"-csearch_path={self.name}"))  # as tests/pg.py's with_schema
        self.url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))

    def migrate(self, env: dict[str, str], cwd: Path) -> str:
        """`fblink migrate`, as an operator runs it before `serve`."""
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "migrate"],
            cwd=cwd,
            env=dict(env, FBLINK_DATABASE_URL=self.url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"fblink migrate failed ({done.returncode}): {done.stdout}{done.stderr}")
        return done.stdout.strip()

    def analyze(self) -> None:
        """What autovacuum does within a minute of the fill: without statistics, the planner
        guesses a handful of rows and sorts all 1,000 for a status page instead of reading
        10 through the index that matches its ORDER BY (measured: 1.8 ms instead of 0.5 ms)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute("ANALYZE")

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


def command_body(text: str, team: str = TEAM) -> bytes:
    return urlencode(
        {
            "token": "legacy-unused",
            "team_id": team,
            "team_domain": "bench",
            "channel_id": "C0BENCH",
            "channel_name": "general",
            "user_id": "U0BENCH",
            "user_name": "bench",
            "command": "/fblink",
            "text": text,
            "api_app_id": "A0BENCH",
            "is_enterprise_install": "false",
            "response_url": "http://127.0.0.1:9/response-unused",
            "trigger_id": "1234.5678.bench-trigger",
        }
    ).encode()


def signed(body: bytes) -> tuple[str, str]:
    ts = str(int(time.time()))
    base = b"v0:" + ts.encode() + b":" + body
    return ts, "v0=" + hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()


def preflight(server: Server, text: str, expect: str | None) -> None:
    body = command_body(text)
    ts, sig = signed(body)
    status, data = http_post(
        server.port,
        body,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig,
        },
    )
    if status != 200 or (expect is not None and expect not in data.decode("utf-8", "replace")):
        raise RuntimeError(f"{server.name} `/fblink {text}` answered {status}: {data[:300]!r}\n{server.log_tail()}")


# ---------------------------------------------------------------------------------------------
# wrk

RESULT_RE = re.compile(r"^BENCH_RESULT (.*)$", re.M)


@dataclass
class Run:
    label: str
    conns: int
    requests: int
    seconds: float
    non200: int
    last_bad: int
    socket_errors: int
    p50: float  # ms
    p95: float
    p99: float
    note: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> bool:
        return self.non200 == 0 and self.socket_errors == 0 and self.requests > 0


def wrk(server: Server, text: str, conns: int, seconds: int, label: str) -> Run:
    body = command_body(text)
    ts, sig = signed(body)  # fresh for every run: always well inside the 5-minute window
    return run_wrk(server, conns, seconds, label, {"BENCH_BODY": body.decode(), "BENCH_TS": ts, "BENCH_SIG": sig})


def run_wrk(server: Server, conns: int, seconds: int, label: str, requests: dict[str, str]) -> Run:
    """One wrk run of bench/slack_post.lua; ``requests`` tells the script what to send
    (BENCH_BODY/BENCH_TS/BENCH_SIG, or BENCH_BODIES/BENCH_TS: see the script)."""
    env = dict(os.environ, **requests)
    cmd = [
        *WRK_PIN,
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{server.port}/slack/events",
    ]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 20)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"wrk against {server.name} did not finish in {seconds + 20}s") from None
    settle(server)
    m = RESULT_RE.search(done.stdout)
    if done.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    v = {k: float(x) for k, x in (kv.split("=") for kv in m.group(1).split())}
    return Run(
        label=label,
        conns=conns,
        requests=int(v["requests"]),
        seconds=v["duration_us"] / 1e6,
        non200=int(v["non200"]),
        last_bad=int(v["last_bad"]),
        socket_errors=int(v["connect"] + v["read"] + v["write"] + v["timeout"]),
        p50=v["p50"] / 1000,
        p95=v["p95"] / 1000,
        p99=v["p99"] / 1000,
    )


def repeats_of(label: str) -> int:
    if label == FLOOR:
        return FLOOR_REPEATS
    return ENGINE_REPEATS if label.startswith("fblink") else 1


def plan_seconds(rates: dict[Any, float], available: float) -> dict[Any, int]:
    """Per run, long enough for > TARGET_REQUESTS at its probed rate; the longest runs are
    trimmed (never below MIN_SECONDS) when the total would not fit in `available` seconds."""
    if not rates:
        return {}
    want = {k: max(MIN_SECONDS, math.ceil(TARGET_REQUESTS * 1.15 / max(r, 1.0))) for k, r in rates.items()}
    repeats = {k: repeats_of(k[0]) for k in want}
    overhead = 0.4 * sum(repeats.values())  # wrk start-up, report and settle per run
    cap = max(want.values())
    while cap > MIN_SECONDS and sum(min(w, cap) * repeats[k] for k, w in want.items()) + overhead > available:
        cap -= 1
    return {k: min(w, cap, MAX_SECONDS) for k, w in want.items()}


# ---------------------------------------------------------------------------------------------
# report


def ratio(a: float, b: float | None) -> str:
    return f"{a / b:5.2f}x" if b else "    -"


def print_table(rows: list[Run], floor: dict[int, Run], bolt: dict[int, Run]) -> None:
    head = (
        f"{'server / command':<28}{'conns':>6}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'p50/floor':>11}{'p99/floor':>11}{'p50/bolt':>10}{'p99/bolt':>10}  note"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        f, b = floor.get(r.conns), bolt.get(r.conns)
        notes = [r.note] if r.note else []
        if r.non200:
            notes.append(f"FAIL: {r.non200} non-200 (last {r.last_bad})")
        if r.socket_errors:
            notes.append(f"FAIL: {r.socket_errors} socket errors/timeouts")
        if r.requests <= TARGET_REQUESTS:
            notes.append(f"short: <= {TARGET_REQUESTS} requests")
        print(
            f"{r.label:<28}{r.conns:>6}{r.requests:>10}{r.rps:>9.0f}{r.p50:>9.2f}{r.p95:>9.2f}{r.p99:>9.2f}"
            f"{ratio(r.p50, f and f.p50):>11}{ratio(r.p99, f and f.p99):>11}"
            f"{ratio(r.p50, b and b.p50):>10}{ratio(r.p99, b and b.p99):>10}  {'; '.join(notes)}"
        )


def within(lvl: int, label: str, a: Run, a_name: str, b: Run, b_name: str, factor: float) -> bool:
    """Print and judge ``a`` <= ``factor`` x ``b`` at p50 and at p99 (both runs must have been clean)."""
    met = True
    for what in ("p50", "p99"):
        x, y = getattr(a, what), getattr(b, what)
        passed = a.ok and b.ok and x <= factor * y
        met &= passed
        print(
            f"  c={lvl:<3} {label} {what} {a_name} {x:7.2f} ms vs {factor:g}x {b_name} {factor * y:7.2f} ms "
            f"(x{x / y if y else float('nan'):.2f})  {verdict(passed)}"
        )
    return met


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def fblink_env(fake: FakeUpstream, key: str, engine: str, database: dict[str, str]) -> dict[str, str]:
    """The fblink server's settings: every upstream at the local fake, the database given."""
    slack = "/slack-" + engine.lower() + "/api/"  # one path per server: auth.test counted per server
    return clean_env(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake.url + slack,
            "FACEBOOK_APP_ID": "123456",
            "FACEBOOK_APP_SECRET": "bench-app-secret",
            "FACEBOOK_GRAPH_URL": fake.url + "/graph",
            "FACEBOOK_LOGIN_URL": fake.url + "/login",
            "VONAGE_API_KEY": "abcd1234",
            "VONAGE_API_SECRET": "bench-vonage-secret",
            "VONAGE_API_URL": fake.url + "/vonage",
            "FBLINK_PUBLIC_URL": "https://fblink.bench.test",
            "FBLINK_SECRET_KEY": key,
            "FBLINK_ADMINS": "UADMIN",
            "FBLINK_HTTP_TIMEOUT": "2",
            **database,
        }
    )


def main() -> int:
    if shutil.which("wrk") is None:
        print(
            "bench/ack_latency.py needs the `wrk` load generator, which is not on PATH.\n"
            "Install it with:  apt-get install wrk   (as root; `sudo apt-get install wrk` otherwise)",
            file=sys.stderr,
        )
        return 2
    import asyncio

    from cryptography.fernet import Fernet

    servers: list[Server] = []
    fake = FakeUpstream()
    tmp = tempfile.TemporaryDirectory(prefix="fblink-bench-")
    work = Path(tmp.name)
    schema: PgSchema | None = None
    try:
        key = Fernet.generate_key().decode()
        db = str(work / "fblink.db")
        try:
            schema = PgSchema(os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG_URL))
        except Exception as exc:
            print(
                f"bench/ack_latency.py needs a PostgreSQL server it can create a schema in "
                f"(BENCH_DATABASE_URL, default {DEFAULT_PG_URL}): {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
            return 2
        envs = {
            "SQLite": fblink_env(fake, key, "SQLite", {"FBLINK_DATABASE": db}),
            "PostgreSQL": fblink_env(fake, key, "PostgreSQL", {"FBLINK_DATABASE_URL": schema.url}),
        }
        migrated = schema.migrate(envs["PostgreSQL"], work)
        t0 = time.monotonic()
        asyncio.run(fill_database(db, key))
        asyncio.run(fill_database(schema.url, key))
        schema.analyze()  # SQLite runs without statistics, as fblink leaves it
        print(
            f"PostgreSQL schema {schema.name}: {migrated}; {N_LINKS} links written through the Store on each engine "
            f"in {time.monotonic() - t0:.1f}s",
            flush=True,
        )
        bolt_env = clean_env(
            {
                "BENCH_SIGNING_SECRET": SIGNING_SECRET,
                "BENCH_BOT_TOKEN": BOT_TOKEN,
                "BENCH_SLACK_API_URL": fake.url + "/bolt/api/",
            }
        )
        servers = [
            spawn("floor", "floor_app", clean_env({}), work),
            spawn("bolt", "bolt_app", bolt_env, work),
            spawn("bolt-pbr", "bolt_app", dict(bolt_env, BENCH_PROCESS_BEFORE_RESPONSE="1"), work),
            spawn("fblink-sqlite", "fblink_app", envs["SQLite"], work),
            spawn("fblink-postgresql", "fblink_app", envs["PostgreSQL"], work),
            spawn("fblink-sqlite-asyncio", "fblink_app", envs["SQLite"], work, PLAIN_ARGS),
        ]
        for s in servers:
            wait_ready(s)
        for s in servers:
            settle(s)
        floor_srv, bolt_srv, bolt_pbr_srv = servers[:3]
        fb = {"SQLite": servers[3], "PostgreSQL": servers[4]}
        plain_srv = servers[5]
        print(
            f"servers up in {time.monotonic() - STARTED:.1f}s: floor :{floor_srv.port}, bolt :{bolt_srv.port}, "
            f"bolt-pbr :{bolt_pbr_srv.port}, "
            + ", ".join(f"fblink on {e} :{fb[e].port} (pid {fb[e].pid})" for e in ENGINES)
            + f", {N_LINKS} links each; {os.cpu_count()} CPUs, "
            + (
                f"servers pinned to CPU {SERVER_PIN[-1]}, wrk to CPU {WRK_PIN[-1]}, PostgreSQL unpinned"
                if SERVER_PIN
                else "no CPU pinning"
            )
            + "; wrk -t1, latencies in ms",
            flush=True,
        )

        # -- memory: RSS after start, then three batches of /fblink help on each engine, alternating
        rss: dict[str, list[tuple[str, int]]] = {e: [("after start", rss_kb(fb[e].pid))] for e in ENGINES}
        for e in ENGINES:
            preflight(fb[e], "help", "fblink commands")
            preflight(fb[e], "status", f"{N_LINKS} links")
        preflight(plain_srv, "help", "fblink commands")
        preflight(bolt_srv, "help", None)
        preflight(bolt_pbr_srv, "help", None)
        preflight(floor_srv, "help", None)
        batches: list[Run] = []
        for i in (1, 2, 3):
            for e in ENGINES:
                run = wrk(fb[e], "help", MEMORY_BATCH_CONNS, MEMORY_BATCH_SECONDS, f"memory batch {i}, {e}")
                batches.append(run)
                rss[e].append((f"after batch {i} ({run.requests} x help)", rss_kb(fb[e].pid)))

        # -- latency: probe every run for 1 s (warm-up + rate), size the real runs to exceed
        #    TARGET_REQUESTS within the time budget, then measure; servers interleaved per level
        plan = [
            (floor_srv, "help", FLOOR),
            (bolt_srv, "help", BOLT),
            (bolt_pbr_srv, "help", BOLT_PBR),
            (fb["SQLite"], "help", HELP["SQLite"]),
            (fb["PostgreSQL"], "help", HELP["PostgreSQL"]),
            (fb["SQLite"], "status", STATUS["SQLite"]),
            (fb["PostgreSQL"], "status", STATUS["PostgreSQL"]),
            (plain_srv, "help", PLAIN["help"]),
            (plain_srv, "status", PLAIN["status"]),
        ]
        rates: dict[tuple[str, int], float] = {}
        results: dict[tuple[str, int], Run] = {}
        for level in LEVELS:
            for server, text, label in plan:
                probe = wrk(server, text, level, PROBE_SECONDS, label)
                if probe.ok:
                    rates[(label, level)] = probe.rps
                else:  # a failed row: reported as such, not measured further
                    probe.note = "(1 s probe)"
                    results[(label, level)] = probe
                    print(f"  {label} at c={level} failed; server log:\n{server.log_tail(10)}", flush=True)
        available = TIME_BUDGET - (time.monotonic() - STARTED) - 3
        seconds = plan_seconds(rates, available) if rates else {}
        total_s = sum(v * repeats_of(k[0]) for k, v in seconds.items())
        print(f"probed {len(rates)} runs; measuring for {total_s} s in total", flush=True)
        # Per level: the floor 3 times; then each fblink row on SQLite, PostgreSQL, PostgreSQL,
        # SQLite (A-B-B-A), so a burst of noise from the machine's other work lands on both.
        by_label = {label: (server, text) for server, text, label in plan}
        order = [FLOOR] * FLOOR_REPEATS + [BOLT, BOLT_PBR]
        for what in (HELP, STATUS):
            order += [what["SQLite"], what["PostgreSQL"], what["PostgreSQL"], what["SQLite"]]
        order += [PLAIN["help"], PLAIN["status"], PLAIN["status"], PLAIN["help"]]
        for level in LEVELS:
            runs: dict[str, list[Run]] = {}
            for label in order:
                if (label, level) in results:
                    continue
                server, text = by_label[label]
                r = wrk(server, text, level, seconds[(label, level)], label)
                runs.setdefault(label, []).append(r)
                print(f"  {label:<28} c={level:<3} {r.requests:>6} requests in {r.seconds:4.1f} s", flush=True)
            for label, done in runs.items():
                done.sort(key=lambda x: x.p99)
                if len(done) == 1:
                    r = done[0]
                elif label == FLOOR:
                    r = done[len(done) // 2]
                    r.note = f"median-p99 run of {len(done)} (p99s {'/'.join(f'{x.p99:.2f}' for x in done)})"
                else:
                    r = done[0]
                    r.note = f"lower-p99 run of {len(done)} (p99s {'/'.join(f'{x.p99:.2f}' for x in done)})"
                if not all(x.ok for x in done):
                    r = next(x for x in done if not x.ok)
                results[(label, level)] = r
        for e in ENGINES:
            rss[e].append(("after all latency runs (help + status)", rss_kb(fb[e].pid)))
        peaks = {e: rss_kb(fb[e].pid, "VmHWM") for e in ENGINES}

        rows = [results[(label, level)] for _, _, label in plan for level in LEVELS]
        floor = {lvl: results[(FLOOR, lvl)] for lvl in LEVELS}
        bolt = {lvl: results[(BOLT, lvl)] for lvl in LEVELS}
        print()
        print_table(rows, floor, bolt)

        # -- budgets -------------------------------------------------------------------------------
        all_ok = all(r.ok for r in rows) and all(b.ok for b in batches)
        met = True
        print(
            "\nBudgets, on each engine (as before issue 18): help p50 and p99 <= 2x floor; status p99 <= 5x floor,"
            " at every concurrency"
        )
        for e in ENGINES:
            for lvl in LEVELS:
                h, s, f = results[(HELP[e], lvl)], results[(STATUS[e], lvl)], floor[lvl]
                checks = [
                    ("help   p50", h.p50, 2 * f.p50, "2x floor", h.ok),
                    ("help   p99", h.p99, 2 * f.p99, "2x floor", h.ok),
                    ("status p99", s.p99, 5 * f.p99, "5x floor", s.ok),
                ]
                for what, got, limit, name, ok in checks:
                    passed = ok and got <= limit
                    met &= passed
                    print(f"  {e:<10} c={lvl:<3} {what} {got:7.2f} ms vs {name} {limit:7.2f} ms  {verdict(passed)}")
        print("\nBudget (issue 18): status on PostgreSQL <= 2x status on SQLite, p50 and p99, at every concurrency")
        for lvl in LEVELS:
            pg, lite = results[(STATUS["PostgreSQL"], lvl)], results[(STATUS["SQLite"], lvl)]
            met &= within(lvl, "status", pg, "PostgreSQL", lite, "SQLite", 2)

        print(
            "\nuvicorn[standard] (issue 19): the same app on SQLite, uvloop + httptools (after) vs the standard"
            " library's asyncio + h11 (before); after <= 1.1x before, p50 and p99"
        )
        for lvl in LEVELS:
            for text in ("help", "status"):
                after = results[((HELP if text == "help" else STATUS)["SQLite"], lvl)]
                before = results[(PLAIN[text], lvl)]
                met &= within(lvl, f"{text:<6}", after, "uvloop+httptools", before, "asyncio+h11", 1.1)

        # -- memory report -------------------------------------------------------------------------
        for e in ENGINES:
            samples = rss[e]
            print(f"\nfblink on {e} RSS (pid {fb[e].pid}, VmRSS):")
            for what, kb in samples:
                print(f"  {what:<40} {kb / 1024:7.1f} MB")
            growth = samples[3][1] - samples[2][1]
            print(
                f"  growth batch 2 -> batch 3: {growth / 1024:+.1f} MB "
                f"({'flat' if growth < RSS_NOISE_KB else 'GROWING'}; noise allowance < {RSS_NOISE_KB // 1024} MB)  "
                f"{verdict(growth < RSS_NOISE_KB)}"
            )
            print(
                f"  peak (VmHWM) {peaks[e] / 1024:.1f} MB vs limit {RSS_LIMIT_KB // 1024} MB  "
                f"{verdict(peaks[e] < RSS_LIMIT_KB)}"
            )
            met &= growth < RSS_NOISE_KB and peaks[e] < RSS_LIMIT_KB
        for b in batches:
            if not b.ok:
                print(f"  FAIL: {b.label}: {b.non200} non-200, {b.socket_errors} socket errors")
            elif b.requests < TARGET_REQUESTS:
                print(f"  note: {b.label} had only {b.requests} requests")

        with fake.lock:
            calls = dict(fake.calls)
        print(
            f"\nupstream calls seen by the local fake: {calls or 'none'} "
            "(auth.test once per Bolt app is expected; anything else is an upstream call on the ack path)"
        )
        print(f"total time {time.monotonic() - STARTED:.0f}s")
        print(f"\nVERDICT: {verdict(met and all_ok)}")
        if not all_ok:
            print("\nSome runs had non-200 answers or socket errors: see the note column.")
            return 1
        return 0  # a missed budget is a figure to report, not a failed run
    finally:
        stop_all(servers)
        fake.stop()
        if schema is not None:
            schema.drop()
        tmp.cleanup()


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through main's finally: servers are stopped


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    sys.exit(main())
