"""Acks while a sweep runs in the same process (issue 9, "Measured").

    python bench/sweep_acks.py [--sizes 1000,10000] [--idle 30] [--rates 0,200]

For each size: a fresh SQLite file holding N links, every one due for a reminder and
for its daily token probe (an encrypted Page token each); half sit in 50 busy channels
(digests), half in a channel of their own. The real app (``create_app``, no scheduler)
is served by uvicorn inside this process's event loop, and the sweep runs in that same
loop, as the scheduler runs it. Upstreams are fblink's own fakes (bot/fakes) in a child
process: Slack answers after ~50 ms, Graph ``debug_token`` after ~500 ms.

Measured in one run per size and help load: 10 keep-alive connections posting
`/fblink help` (a load-generator child process, every request timed), either each as fast
as it is answered (the app's CPU is never idle) or paced at 200 requests a second in all:
- help latency, idle before the sweep (acks alone: the baseline) and during it;
- the sweep's duration; when the last reminder post was answered, relative to the
  sweep's start; when the first probe was answered;
- the event loop's lag: a task sleeping 1 ms that records how late it wakes; each wake-up
  over 20 ms late is split into the loop thread's time on the CPU and waiting for it
  (/proc/thread-self/schedstat), and checked against the hypervisor's steal counter of the
  app's CPU (sampled every 2 ms by a child process);
- every callback over 5 ms: its name, user and system CPU time, GC time and page faults
  (and, with BENCH_STACKS=1, 2 ms stack samples of callbacks running over 15 ms);
- every loop iteration: the time its callbacks ran, and the part that was sweep work
  (steps of the sweep's own tasks); WAL checkpoints, timed.
Budgets, under both loads: help p99 during the sweep <= 2x idle p99; the sweep's work in
any one loop iteration, and any one sweep step, <= 20 ms; every reminder posted in the one
sweep, each before the first probe completes. Under the paced load: no loop stall > 20 ms.
Under the saturating load ten queued acks alone take 15-30 ms on this 2-CPU VM, so there
loop stalls are reported next to the same figures for acks alone, as information, with
how many of them the sweep's work pushed over 20 ms. A script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _loop_watch import (
    CHECKPOINTS,
    GC_PAUSES,
    ITERATIONS,
    SLOW,
    STACKS,
    SWEEP_LONG,
    SWEEP_STEPS,
    checkpointing,
    cpu_steal,
    held,
    instrument,
    iterations,
    run_steal,
    sample_stacks,
    stolen,
    thread_sched,
)

SIGNING_SECRET = os.environ.setdefault("BENCH_SWEEP_SECRET", "bench-" + os.urandom(8).hex())  # children inherit it
BOT_TOKEN = "xoxb-bench-token"
TEAM = "T0BENCH"
APP_ID, APP_SECRET = "123456", "bench-app-secret"
SLACK_DELAY, GRAPH_DELAY = 0.05, 0.5
CONNS = 10
PACED = 200  # help requests a second in the paced run: the CPU has headroom, so a stall is not queued acks
PROBE_CONCURRENCY, PROBE_BUDGET = 20, 60.0
DAY = 86400


# -- the fakes' child process ------------------------------------------------------------------


def run_fakes() -> None:
    """Fake Slack (~50 ms) and Graph (debug_token ~500 ms, every token valid), plus timings."""
    from bot.fakes.base import Request, Response
    from bot.fakes.graph import FakeGraph
    from bot.fakes.slack import FakeSlack

    stats: dict[str, Any] = {"posts": 0, "last_post": 0.0, "first_probe": 0.0, "probes": 0}
    lock = threading.Lock()

    class SlowSlack(FakeSlack):
        def handle(self, request: Request) -> Response:
            if request.path == "/bench/stats":
                with lock:
                    return Response(200, dict(stats))
            time.sleep(SLACK_DELAY)
            resp = super().handle(request)
            if request.path.endswith("chat.postMessage"):
                with lock:
                    stats["posts"] += 1
                    stats["last_post"] = time.time()
                    self.messages.clear()  # keep memory flat over 10,000 posts
            return resp

    class SlowGraph(FakeGraph):
        def handle(self, request: Request) -> Response:
            if request.path.endswith("/debug_token"):
                time.sleep(GRAPH_DELAY)
                with lock:
                    stats["probes"] += 1
                    stats["first_probe"] = stats["first_probe"] or time.time()
                now = int(time.time())
                return Response(
                    200,
                    {
                        "data": {
                            "app_id": APP_ID,
                            "type": "PAGE",
                            "application": "fblink bench",
                            "data_access_expires_at": now + 80 * DAY,
                            "expires_at": 0,
                            "is_valid": True,
                            "issued_at": now - DAY,
                            "profile_id": "1",
                            "scopes": ["pages_show_list", "pages_messaging", "pages_manage_metadata"],
                            "user_id": "10001",
                        }
                    },
                )
            return super().handle(request)

    slack = SlowSlack(bot_token=BOT_TOKEN, team_id=TEAM).start()
    graph = SlowGraph(app_id=APP_ID, app_secret=APP_SECRET, api_version="v25.0")
    graph.start()
    print(json.dumps({"slack": slack.url, "graph": graph.url}), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


# -- the load generator's child process -----------------------------------------------------


def run_load(port: int, out: str, rate: float) -> None:
    """CONNS threads, each one keep-alive connection posting `/fblink help`; every request's
    (start, latency) written to ``out`` at SIGTERM. ``rate``: requests a second in all, spread
    over the connections (0: each sends its next request as soon as the last is answered)."""
    body = urlencode(
        {
            "token": "legacy-unused",
            "team_id": TEAM,
            "team_domain": "bench",
            "channel_id": "C0BENCH",
            "channel_name": "general",
            "user_id": "U0BENCH",
            "user_name": "bench",
            "command": "/fblink",
            "text": "help",
            "api_app_id": "A0BENCH",
            "is_enterprise_install": "false",
            "response_url": "http://127.0.0.1:9/unused",
            "trigger_id": "1.2.bench",
        }
    ).encode()
    samples: list[tuple[float, float, int]] = []
    stop = threading.Event()

    def worker(offset: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        every = CONNS / rate if rate else 0.0
        next_at = time.monotonic() + offset * every
        while not stop.is_set():
            if every:
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at += every
            ts = str(int(time.time()))
            sig = (
                "v0="
                + hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
            )
            t0 = time.time()
            try:
                conn.request(
                    "POST",
                    "/slack/events",
                    body=body,
                    headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "X-Slack-Request-Timestamp": ts,
                        "X-Slack-Signature": sig,
                    },
                )
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except OSError:
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            samples.append((t0, time.time() - t0, status))

    threads = [threading.Thread(target=worker, args=(i / CONNS,), daemon=True) for i in range(CONNS)]
    for t in threads:
        t.start()
    signal.sigwait({signal.SIGTERM})
    stop.set()
    for t in threads:
        t.join(11)
    Path(out).write_text(json.dumps(samples))


# -- the benchmark -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill(path: str, key: str, n: int, now: int) -> None:
    from bot.crypto import Vault
    from bot.store import Store, open_engine

    store = Store(open_engine(path), Vault(key))  # SQLite: migrated when opened; bulk rows through its connection
    rows = []
    for i in range(n):
        channel = f"CBUSY{i % 50:02d}" if i % 2 else f"C{i:07d}"
        rows.append(
            (
                TEAM,
                str(100000000000000 + i),
                f"Bench Page {i} & Co <shop> 🍩",
                "abcd1234",
                f"app-{i}",
                f"U{10000 + i % 97}",
                now - 80 * DAY,
                channel,
                now + 5 * DAY,
                "active",
                1,
                now - 60 - i % 600,
                0,
                store.vault.encrypt(f"EAAbench{i:06d}token"),
                now,
            )
        )
    conn = store.engine.db.conn  # type: ignore[attr-defined]
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO links (team_id, page_id, page_name, api_key, application_id, linked_by, linked_at, channel_id,"
        " expires_at, status, period, next_due_at, checked_at, token_enc, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("COMMIT")
    conn.close()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def measure(
    n: int, idle: float, rate: float, tmp: Path, pins: tuple[list[str], list[str]], layout: str = "serve"
) -> dict[str, Any]:
    import uvicorn
    from cryptography.fernet import Fernet

    from bot.app import create_app
    from bot.heap import freeze_startup_heap
    from bot.reminders import sweep
    from bot.settings import Settings
    from bot.turns import Turns

    fakes = subprocess.Popen(
        [*pins[1], sys.executable, __file__, "--fakes"],
        stdout=subprocess.PIPE,
        text=True,
        stderr=subprocess.DEVNULL,  # clients hanging up at shutdown are not news
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    urls = json.loads(fakes.stdout.readline())  # type: ignore[union-attr]
    key = Fernet.generate_key().decode()
    db = str(tmp / f"sweep-{n}-{rate:g}-{layout}-{time.monotonic_ns()}.db")
    now = int(time.time())
    fill(db, key, n, now)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=urls["slack"] + "/api/",
        facebook_app_id=APP_ID,
        facebook_app_secret=APP_SECRET,
        facebook_graph_url=urls["graph"],
        vonage_api_key="abcd1234",
        vonage_api_secret="bench-secret",
        vonage_api_url=urls["slack"],
        fblink_public_url="https://fblink.bench",
        fblink_database=db,
        fblink_secret_key=key,
        fblink_probe_concurrency=PROBE_CONCURRENCY,
        fblink_probe_budget=PROBE_BUDGET,
        fblink_log_level="WARNING",
    )
    app = create_app(settings, scheduler=False)
    if layout == "worker":  # the sweep as a worker runs it: no turns, no request pacing, GC left alone
        app.services.turns = Turns(shared=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app.asgi, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False)
    )
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    freeze_startup_heap()  # what `fblink serve` does when it starts the scheduler

    loop = asyncio.get_running_loop()
    if os.environ.get("BENCH_STACKS") and not STACKS:
        sample_stacks(threading.get_ident())
    if os.environ.get("BENCH_SLOW_CALLBACKS"):  # name the callbacks that hold the loop > 20 ms
        import logging

        logging.basicConfig(level=logging.WARNING)
        loop.set_debug(True)
        loop.slow_callback_duration = 0.02
    lags: list[tuple[float, float]] = []
    parts: list[tuple[float, float, float, float]] = []  # wake-ups > 20 ms late: (time, lag, on-CPU, runnable) ms
    stop_lag = False

    async def lag_probe() -> None:
        sched = os.open("/proc/thread-self/schedstat", os.O_RDONLY)  # the loop thread's own counters
        try:
            while not stop_lag:
                cpu0, wait0 = thread_sched(sched)
                t0 = loop.time()
                await asyncio.sleep(0.001)
                lag = loop.time() - t0 - 0.001
                lags.append((time.time(), lag))
                if lag > 0.02:
                    cpu1, wait1 = thread_sched(sched)
                    parts.append((time.time(), lag * 1000, cpu1 - cpu0, wait1 - wait0))
        finally:
            os.close(sched)

    lag_task = asyncio.ensure_future(lag_probe())
    out = tmp / f"load-{n}-{rate:g}.json"
    load = subprocess.Popen(
        [*pins[1], sys.executable, __file__, "--load", str(port), str(out), str(rate)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    app_cpu = min(os.sched_getaffinity(0))
    steal_out = tmp / f"steal-{n}-{rate:g}.json"
    steal = subprocess.Popen(
        [*pins[1], sys.executable, __file__, "--steal", str(app_cpu), str(steal_out)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    await asyncio.sleep(idle + 1)  # 1 s of warm-up, then the idle window
    idle_window = (time.time() - idle, time.time())
    sched = os.open("/proc/thread-self/schedstat", os.O_RDONLY)  # this task runs on the loop thread
    steal0, t0, (oncpu0, waited0) = cpu_steal(app_cpu), time.time(), thread_sched(sched)
    report = await sweep(app.services)
    t1, steal1, (oncpu1, waited1) = time.time(), cpu_steal(app_cpu), thread_sched(sched)
    os.close(sched)
    await asyncio.sleep(1)
    load.send_signal(signal.SIGTERM)
    steal.send_signal(signal.SIGTERM)
    await asyncio.to_thread(load.wait, 30)
    await asyncio.to_thread(steal.wait, 30)
    steal_samples = json.loads(steal_out.read_text())
    stop_lag = True
    await lag_task
    stats = await asyncio.to_thread(fake_stats, urls["slack"])
    posted = (await app.services.store.one("SELECT COUNT(*) AS n FROM reminders WHERE status = 'posted'"))["n"]
    checked = (await app.services.store.one("SELECT COUNT(*) AS n FROM links WHERE checked_at >= ?", [now]))["n"]
    server.should_exit = True
    await serving
    fakes.send_signal(signal.SIGTERM)
    fakes.wait(10)

    samples = json.loads(out.read_text())
    in_window = lambda a, b: [lat * 1000 for (s, lat, st) in samples if a <= s < b and st == 200]  # noqa: E731
    idle_ms, sweep_ms = in_window(*idle_window), in_window(t0, t1)
    idle_lags = [lag * 1000 for (t, lag) in lags if idle_window[0] <= t <= idle_window[1]]
    idle_held, sweep_held, steps_held = held(*idle_window), held(t0, t1), held(t0, t1, SWEEP_STEPS)
    over = sorted({name for (t, ms, name, cpu, _) in SLOW if t0 <= t <= t1 and cpu > 20})
    long_callbacks = [
        (ms, name, checkpointing(t - ms / 1000, t)) for (t, ms, name, _, _) in SLOW if t0 <= t <= t1 and ms > 20
    ]
    bad = sum(1 for (_, _, st) in samples if st != 200)
    sweep_lags = [lag * 1000 for (t, lag) in lags if t0 <= t <= t1]
    return {
        "n": n,
        "rate": rate,
        "layout": layout,
        "sweep_s": t1 - t0,
        "report_lines": len(report),
        "posted": posted,
        "probed": checked,
        "posts": stats.get("posts", 0),
        "probes": stats.get("probes", 0),
        "last_post_s": stats["last_post"] - t0 if stats.get("last_post") else float("nan"),
        "first_probe_s": stats["first_probe"] - t0 if stats.get("first_probe") else float("nan"),
        "idle": idle_ms,
        "during": sweep_ms,
        "bad": bad,
        "max_lag": max(sweep_lags, default=0.0),
        "lag_p99": pct(sweep_lags, 99),
        "idle_max_lag": max(idle_lags, default=0.0),
        "idle_s": idle,
        "idle_held": idle_held,
        "sweep_held": sweep_held,
        "steps_held": steps_held,
        "iterations": iterations(t0, t1),
        "idle_iterations": iterations(*idle_window),
        "over": over,
        "stalls": sum(1 for x in sweep_lags if x > 20),
        "idle_stalls": sum(1 for x in idle_lags if x > 20),
        "stall_parts": [x[1:] for x in parts if t0 <= x[0] <= t1],
        "long_callbacks": long_callbacks,
        "stacks": [stack for (t, stack) in STACKS if t0 <= t <= t1],
        "sweep_long": [(ms, where) for (t, ms, where) in SWEEP_LONG if t0 <= t <= t1],
        "stall_sweep_ms": [  # sweep work run inside each stall > 20 ms (iterations ending within it)
            sum(x[1] for x in ITERATIONS if t - lag / 1000 - 0.002 <= x[0] <= t)
            for (t, lag, _, _) in parts
            if t0 <= t <= t1
        ],
        "stall_checkpoints": [checkpointing(t - lag / 1000, t) for (t, lag, _, _) in parts if t0 <= t <= t1],
        "checkpoints": [(e - s) * 1000 for (s, e, _) in CHECKPOINTS if t0 <= s <= t1],
        "stall_steal": [
            stolen(steal_samples, t - lag / 1000 - 0.01, t + 0.01) for (t, lag, _, _) in parts if t0 <= t <= t1
        ],
        "steal_s": steal1 - steal0,
        "runnable_ms": waited1 - waited0,
        "oncpu_ms": oncpu1 - oncpu0,
        "max_lag_posting": max((lag * 1000 for (t, lag) in lags if t0 <= t <= stats.get("last_post", t0)), default=0.0),
        "max_lag_probing": max((lag * 1000 for (t, lag) in lags if stats.get("last_post", t0) < t <= t1), default=0.0),
    }


def fake_stats(url: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=10)
    conn.request("GET", "/bench/stats", headers={"Authorization": f"Bearer {BOT_TOKEN}"})
    return json.loads(conn.getresponse().read())


def main() -> int:
    if sys.argv[1:2] in (["--fakes"], ["--load"], ["--steal"]):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # for sigwait, in every thread
    if sys.argv[1:2] == ["--fakes"]:
        run_fakes()
        return 0
    if sys.argv[1:2] == ["--load"]:
        run_load(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
        return 0
    if sys.argv[1:2] == ["--steal"]:
        run_steal(int(sys.argv[2]), sys.argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of acks alone, the baseline")
    parser.add_argument(
        "--rates",
        default=f"0,{PACED}",
        help="help load, requests a second in all, one run per rate (0: each connection as fast as answered)",
    )
    parser.add_argument(
        "--layouts",
        default="serve",
        help="serve: the sweep as `fblink serve` runs it (turns, request pacing, GC deferred); worker: as "
        "`fblink worker` runs it (none of those), here still beside the acks, to show what they buy; "
        "one run per layout, alternating",
    )
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    pins: tuple[list[str], list[str]] = ([], [])
    if len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[0]})  # the app and its sweep on one CPU, load and fakes on another
        pins = ([], ["taskset", "-c", str(cpus[1])])
    ok_all = True
    instrument()
    with tempfile.TemporaryDirectory(prefix="fblink-sweep-bench-") as tmp:
        for rate in (float(x) for x in args.rates.split(",")):
            for n in (int(x) for x in args.sizes.split(",")):
                for layout in args.layouts.split(","):
                    SLOW.clear()
                    SWEEP_LONG.clear()
                    ITERATIONS.clear()
                    GC_PAUSES.clear()
                    r = asyncio.run(measure(n, args.idle, rate, Path(tmp), pins, layout))
                    ok_all &= show(r)
    print(f"\nVERDICT: {'PASS' if ok_all else 'MISS'}")
    return 0 if ok_all else 1


def show(r: dict[str, Any]) -> bool:
    idle, during = r["idle"], r["during"]
    ip50, ip99, dp50, dp99 = pct(idle, 50), pct(idle, 99), pct(during, 50), pct(during, 99)
    every = r["posted"] == r["n"]
    stall_parts = r["stall_parts"]  # (lag, on-CPU, runnable) of each wake-up > 20 ms late
    worst_held = max((cpu + wait for (_, cpu, wait) in stall_parts), default=0.0)
    clean = [lag for (lag, _, _), st in zip(stall_parts, r["stall_steal"], strict=True) if st == 0]
    before_probe = r["last_post_s"] <= r["first_probe_s"]
    it, idle_it = r["iterations"], r["idle_iterations"]
    pushed = [lag for (lag, _, _), sw in zip(stall_parts, r["stall_sweep_ms"], strict=True) if lag - sw <= 20]
    stall = f"no event-loop stall > 20 ms (lag probe; acks alone: max {r['idle_max_lag']:.1f} ms)"
    checks = {  # the budgets: what the sweep does to the loop and to the acks
        "help p99 during sweep <= 2x idle p99": dp99 <= 2 * ip99,
        "the sweep's work in any one loop iteration <= 20 ms": it["sweep_ms"] <= 20,
        "no sweep step holds the loop > 20 ms (wall)": r["steps_held"][0] <= 20,
        "no sweep step holds the loop > 20 ms on the CPU": r["steps_held"][3] <= 20,
        f"all {r['n']} reminders posted in this sweep": every,
        "last reminder posted before the first probe completed": before_probe,
    }
    info = {  # the loop whatever the cause (queued acks, the VM): reported next to acks alone
        "no loop stall pushed over 20 ms by sweep work (stall minus the sweep work inside it <= 20 ms)": not pushed,
        "no stall with the loop thread > 20 ms on the CPU or runnable": worst_held <= 20,
        "no stall > 20 ms without hypervisor steal on the app's CPU": not clean,
        "no callback of any kind holds the loop > 20 ms (wall)": r["sweep_held"][0] <= 20,
    }
    # With headroom, a stall is the sweep's (or the VM's); saturated, ten queued acks alone
    # take 15-30 ms on this machine, so there the stall is reported beside acks alone only.
    (checks if r["rate"] else info)[stall] = r["max_lag"] <= 20
    load = f"paced at {r['rate']:.0f} requests a second" if r["rate"] else "as fast as answered (the CPU never idle)"
    print(
        f"\n== {r['n']} links due for a reminder and a probe (Slack ~{SLACK_DELAY * 1000:.0f} ms, "
        f"debug_token ~{GRAPH_DELAY * 1000:.0f} ms; probes: {PROBE_CONCURRENCY} at once, {PROBE_BUDGET:.0f} s budget); "
        f"help load: {CONNS} connections, {load}; the sweep as {r['layout']!r} runs it"
    )
    print(f"help c={CONNS}  idle:   {len(idle):6d} req  p50 {ip50:7.2f} ms  p99 {ip99:7.2f} ms")
    print(
        f"help c={CONNS}  sweep:  {len(during):6d} req  p50 {dp50:7.2f} ms  p99 {dp99:7.2f} ms"
        f"  ({dp99 / ip99 if ip99 else float('nan'):.2f}x idle p99; non-200: {r['bad']})"
    )
    print(
        f"sweep: {r['sweep_s']:.1f} s; {r['posted']} reminders posted in {r['posts']} messages, last at "
        f"+{r['last_post_s']:.2f} s; first probe answered at +{r['first_probe_s']:.2f} s; "
        f"{r['probes']} probes answered, {r['probed']} links marked checked ({r['n'] - r['probed']} carried over); "
        f"the loop thread on the CPU {r['oncpu_ms'] / 1000:.1f} s (acks included), runnable {r['runnable_ms'] / 1000:.1f} s"
    )
    print(
        f"event loop idle (acks only, {r['idle_s']:.0f} s): max stall {r['idle_max_lag']:.1f} ms, "
        f"{r['idle_stalls']} wake-ups > 20 ms late ({60 * r['idle_stalls'] / r['idle_s']:.1f} a minute; during the "
        f"sweep {60 * r['stalls'] / r['sweep_s']:.1f} a minute); longest callback "
        f"{r['idle_held'][0]:.1f} ms ({r['idle_held'][1]}); longest GC pause {r['idle_held'][2]:.1f} ms"
    )
    print(
        f"event loop during the sweep: max stall {r['max_lag']:.1f} ms, p99 {r['lag_p99']:.2f} ms, "
        f"{r['stalls']} wake-ups > 20 ms late (max {r['max_lag_posting']:.1f} ms while posting reminders, "
        f"{r['max_lag_probing']:.1f} ms while probing)"
    )
    if stall_parts:
        lag, cpu, wait = max(stall_parts)
        print(
            f"sweep work inside the stalls > 20 ms: at most {max(r['stall_sweep_ms']):.1f} ms; stalls that sweep work "
            f"pushed over 20 ms: {len(pushed)}"
        )
        print(
            f"the {len(stall_parts)} stalls > 20 ms: worst {lag:.1f} ms = {cpu:.1f} on the CPU + {wait:.1f} runnable + "
            f"{lag - cpu - wait:.1f} neither (blocked in a system call, or steal); the most any of them spent "
            f"on the CPU or runnable: {worst_held:.1f} ms; hypervisor steal on the app's CPU during the sweep: "
            f"{r['steal_s'] * 1000:.0f} ms in {r['sweep_s']:.0f} s; stalls > 20 ms while idle: {r['idle_stalls']}"
        )
        print(
            f"  {len(stall_parts) - len(clean)} of them coincide with hypervisor steal on the app's CPU (its "
            f"/proc/stat counter moved within 10 ms of the stall; the guest may count stolen time as on-CPU); "
            f"without steal: {len(clean)}, worst {max(clean, default=0.0):.1f} ms"
        )
    print(
        f"longest single callback during the sweep: {r['sweep_held'][0]:.1f} ms ({r['sweep_held'][1]}); "
        f"longest GC pause {r['sweep_held'][2]:.1f} ms"
    )
    print(
        f"longest on-CPU callback during the sweep: {r['sweep_held'][3]:.1f} ms ({r['sweep_held'][4]}: "
        f"{r['sweep_held'][5]}); "
        f"callbacks over 20 ms on the CPU: {', '.join(r['over']) or 'none'}"
    )
    print(
        f"loop iterations during the sweep: the most sweep work in one {it['sweep_ms']:.1f} ms "
        f"({it['sweep_steps']} steps over 1 ms; at most {it['max_steps']} such steps in any iteration); longest iteration "
        f"{it['longest_ms']:.1f} ms (the sweep's share {it['longest_sweep_ms']:.1f} ms); iterations > 20 ms: "
        f"{it['over_20']} ({it['sweep_over_20']} of them > 20 ms of sweep work); acks alone: longest iteration "
        f"{idle_it['longest_ms']:.1f} ms, {idle_it['over_20']} > 20 ms"
    )
    ck = r["checkpoints"]
    print(
        f"the loop thread waited for the CPU (runnable) {r['runnable_ms']:.0f} ms in all during the sweep; "
        f"WAL checkpoints during the sweep: {len(ck)}, longest {max(ck, default=0.0):.1f} ms; stalls > 20 ms during "
        f"one: {sum(1 for c in r['stall_checkpoints'] if c is not None)} of {len(r['stall_checkpoints'])}; "
        "callbacks > 20 ms: "
        + (
            ", ".join(
                f"{ms:.1f} ms {name} ({f'during a checkpoint of {c} frames' if c is not None else 'no checkpoint'})"
                for (ms, name, c) in r["long_callbacks"]
            )
            or "none"
        )
    )
    if r["sweep_long"]:
        by_where: dict[str, list[float]] = {}
        for ms, where in r["sweep_long"]:
            by_where.setdefault(where, []).append(ms)
        print("sweep steps over 3 ms, by where they resumed and where they next awaited (count, max ms):")
        for where, mss in sorted(by_where.items(), key=lambda kv: -len(kv[1]))[:6]:
            print(f"  {len(mss):5d}  {max(mss):5.1f}  {where}")
    if r["stacks"]:
        from collections import Counter

        print("where the loop thread was, inside long callbacks (BENCH_STACKS; 2 ms samples):")
        for stack, n in Counter(r["stacks"]).most_common(12):
            print(f"  {n:4d}  {stack}")
    steps = r["steps_held"]
    print(f"longest sweep step: {steps[0]:.1f} ms ({steps[1]}); on the CPU: {steps[3]:.1f} ms ({steps[4]}: {steps[5]})")
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'MISS'}] {name}")
    for name, ok in info.items():
        print(f"  [info: {'yes' if ok else 'no'}] {name}")
    return all(checks.values())


if __name__ == "__main__":
    sys.exit(main())
