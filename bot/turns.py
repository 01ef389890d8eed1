"""Turns: at most one step of background work per event-loop iteration.

A sweep runs in the serving process's event loop, next to the acks Slack waits for. Each
of its steps is short (one claim batch, one commit, one rendered message: under ~4 ms),
but with 8 posts and 20 probes in flight, several answers arrive together and their
steps all ran in the same loop iteration, after the acks queued with them: 27-40 ms
stalls (bench/sweep_acks.py). A step that first takes a turn runs in an iteration of its
own, so the loop is held by at most one background step (plus whatever else is ready)
at a time, and acks arriving meanwhile are served between two steps.

Turns are handed out in arrival order, one per iteration, and nothing is held across an
``await``: a turn is over when its iteration is, so a step that never finishes blocks
no other. A step waits one or two iterations for its turn (microseconds when the loop is
idle, a few milliseconds under load).

A turn cannot cover what an HTTP client does when an answer arrives: httpx and aiohttp
read and parse it in the iteration its socket became readable, before the caller can
take a turn. 20 probes sent together (a constant-latency Graph answers them together)
were parsed in one iteration: 40 ms of sweep work, a 115 ms stall. So a background
request also starts at least ``gap`` after the previous one (:meth:`Turns.send`), and
answers arrive spread out as the requests went; 5 ms apart caps a sweep at 200 requests
a second, above what Slack's per-channel pace and the probes' concurrency allow anyway.

All of this is for a loop shared with acks: `fblink serve` (role ``all``). A worker's loop
answers only /healthz and /metrics, so there ``Turns(shared=False)`` hands out no turns and
paces nothing: a step only yields once, and requests start as soon as the sweep has them
(bench/README.md, "Loop tricks by layout", has the figures behind both choices).
"""

from __future__ import annotations

import asyncio
from collections import deque

from bot.pacing import Pacer

SEND_GAP = 0.005  # seconds between the starts of two background requests


class Turns:
    """One background step per loop iteration, first come first served.

    Every caller waits in line; a ticker callback, rescheduled each iteration while someone
    waits, wakes exactly one of them. A woken task runs in the iteration after its wake-up,
    so two woken tasks never share an iteration. No fast path: a caller that found the line
    empty could otherwise run in the same iteration as the one woken just before it.
    """

    def __init__(self, gap: float = SEND_GAP, *, shared: bool = True) -> None:
        self.shared = shared  # False in a worker: no acks share this loop
        self._starts = Pacer(gap)  # one slot line for every background request
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._ticking = False
        self.taken = 0  # turns handed out so far

    async def take(self) -> None:
        """Return in a loop iteration in which no other caller's turn runs."""
        if not self.shared:
            await asyncio.sleep(0)  # still cooperative: /healthz is answered between steps
            self.taken += 1
            return
        loop = self._bound()
        turn = loop.create_future()
        self._waiting.append(turn)
        if not self._ticking:
            self._ticking = True
            loop.call_soon(self._tick)
        await turn  # cancelled while waiting: the ticker skips it

    async def send(self) -> None:
        """Before a background request: wait until ``gap`` after the previous one really started
        (:meth:`bot.pacing.Pacer.slot`), then take a turn to send it in."""
        if not self.shared:
            return
        await self._starts.slot("request")
        await self.take()

    def _bound(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests run several): nothing of the old one carries over
            self._loop, self._waiting, self._ticking = loop, deque(), False
        return loop

    def _tick(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                self.taken += 1
                break
        if self._waiting and self._loop is not None:
            self._loop.call_soon(self._tick)  # asyncio runs only what was ready: this is the next iteration
        else:
            self._ticking = False
