"""Serving one role with uvicorn (uvloop, httptools), and draining on SIGTERM.

A load balancer must stop sending a process requests before it stops taking them, and the
requests and after-ack tasks it has must finish. On the first SIGTERM (or SIGINT):

1. /readyz answers 503 at once (:class:`bot.web.Health`), while the listener stays open for
   ``drain_delay`` seconds, so a balancer that polls readiness takes the replica out first;
2. the listener closes (a balancer that retries refused connections, like nginx, sends the
   next request to another replica), idle keep-alive connections are closed, and requests in
   flight finish;
3. tracked tasks (after-ack work, a running sweep) get what is left; then the process exits,
   all within ``grace`` seconds of the signal. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from types import FrameType

import uvicorn

from bot.app import FblinkApp

log = logging.getLogger(__name__)
CLOSE_MARGIN = 0.5  # seconds of the grace kept for closing clients and the database after the tasks
SETTLE = 0.25  # seconds between closing the listener and closing connections that have sent nothing yet


def whole_seconds(seconds: float) -> int:
    """uvicorn takes whole seconds for requests in flight: rounded down, so the grace holds (at least 1)."""
    return max(1, int(seconds))


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with a readiness flip and a deadline before its own graceful shutdown."""

    def __init__(self, config: uvicorn.Config, app: FblinkApp, *, grace: float, drain_delay: float) -> None:
        super().__init__(config)
        self.health = app.health
        self.grace = grace
        self.drain_delay = min(drain_delay, grace)
        self.stop_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Runs in the signal handler: only flags are set here; :meth:`on_tick` acts on them."""
        if self.health.draining:
            self.should_exit = self.force_exit = True  # a second signal: no more waiting
            return
        self.health.drain(max(0.0, self.grace - CLOSE_MARGIN))
        self.stop_at = time.monotonic() + self.drain_delay
        # uvicorn waits this long for requests in flight, then cancels them and runs the lifespan's
        # shutdown, which gives tracked tasks what is left of the grace (bot.app.finish_tasks).
        self.config.timeout_graceful_shutdown = whole_seconds(self.grace - self.drain_delay - SETTLE - CLOSE_MARGIN)
        # Not recorded in uvicorn's captured signals: a drained process exits 0, it is not re-killed.

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting first, and only then close the connections that carry no request yet.

        uvicorn closes the listener and every connection without a request at once; one that a
        proxy had just opened and written its request to was reset before its bytes were read,
        and nginx cannot send a POST it has written to another replica: a 502 for Slack
        (bench/replicas.py saw one in 3,819 requests). After SETTLE the bytes have been read, the
        request is in flight, and it is answered before the connection closes."""
        for server in self.servers:
            server.close()
        await asyncio.sleep(SETTLE)
        await super().shutdown(sockets)

    async def on_tick(self, counter: int) -> bool:
        if self.stop_at is not None and time.monotonic() >= self.stop_at and not self.should_exit:
            log.info("draining: no new connections; finishing requests in flight")
            self.should_exit = True
        return await super().on_tick(counter)


def serve(app: FblinkApp, *, host: str, port: int, grace: float, drain_delay: float) -> None:
    """Serve until a signal, then drain (see the module's docstring)."""
    config = uvicorn.Config(
        app.asgi,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=whole_seconds(grace - CLOSE_MARGIN),
    )
    DrainingServer(config, app, grace=grace, drain_delay=drain_delay).run()
