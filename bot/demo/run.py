"""Start the demo: bind the web port, start the fakes and fblink, serve the web client."""

from __future__ import annotations

import errno
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import TextIO

import uvicorn

from bot.db_marks import WrongDatabase
from bot.demo.server import build_app
from bot.demo.world import World, real_credentials


@dataclass
class Running:
    """A started demo (for tests): its URL, its world, and how to stop it."""

    url: str
    world: World
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.world.stop()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def prepare(host: str, port: int, database: str | None, out: TextIO) -> tuple[socket.socket, World, uvicorn.Server]:
    found = real_credentials()
    if found:
        print(
            f"fblink demo: ignoring real credentials ({', '.join(found)}); the demo never calls Slack, "
            "Facebook or Vonage",
            file=out,
        )
    sock = _bind(host, port)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{sock.getsockname()[1]}"
    try:
        world = World(login_url=url, database=database).start()
    except BaseException:
        sock.close()
        raise
    config = uvicorn.Config(build_app(world), log_level="warning", access_log=False, lifespan="on")
    return sock, world, uvicorn.Server(config)


def start_in_thread(
    host: str = "127.0.0.1", port: int = 0, database: str | None = None, out: TextIO = sys.stdout
) -> Running:
    """The whole demo on background threads (tests, screenshots)."""
    sock, world, server = prepare(host, port, database, out)
    thread = threading.Thread(target=lambda: server.run(sockets=[sock]), name="demo-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            world.stop()
            raise RuntimeError("demo web server did not start")
        time.sleep(0.01)
    return Running(url=world.login_url, world=world, server=server, thread=thread)


def main(host: str, port: int, database: str | None) -> int:
    started = time.monotonic()
    try:
        sock, world, server = prepare(host, port, database, sys.stdout)
    except WrongDatabase as exc:
        print(f"fblink demo: refusing the database: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            with _bind(host, 0) as free:
                hint = f"; port {port} is taken, try `fblink demo --port {free.getsockname()[1]}`"
        print(f"fblink demo: cannot listen on {host}:{port}: {exc.strerror}{hint}", file=sys.stderr)
        return 2
    print(
        f"fblink demo: open {world.login_url}  (database {world.db_path}; ready in {time.monotonic() - started:.1f} s)",
        flush=True,
    )
    print("fblink demo: Slack, Facebook and Vonage are simulated on 127.0.0.1; press Ctrl+C to stop", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        world.stop()
    return 0
