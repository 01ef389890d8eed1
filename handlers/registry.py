"""How a subcommand is declared (errbot's style: once, with its help and access rule).

The table itself is :data:`handlers.commands.SUBCOMMANDS`. Help text, metric labels, the
HTTP fast path, the Socket Mode ack and admin enforcement are all derived from it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from handlers.common import Req, split_args

QuickRun = Callable[[Req], Awaitable[dict[str, Any]]]
SlowRun = Callable[[Req], Awaitable[None]]


def never(args: tuple[str, ...]) -> bool:
    return False


@dataclass(frozen=True)
class Subcommand:
    """One `/fblink` subcommand.

    - ``quick``: answered inside the ack (database only); otherwise acknowledged with
      ``working`` and finished after the ack (Graph or Vonage calls) through ``run_after``.
    - ``opens_modal(args)``: those arguments open a modal instead (``open_modal``), which
      needs the trigger_id at once: the ack is empty.
    - ``admin``: only fblink admins may run it (checked in one place, before any handler).
    - ``needs_login``: it needs the user's Facebook login; without one the ack is the login
      prompt, so a refusal never shows a "working" line first.
    """

    name: str
    usage: tuple[tuple[str, str], ...]
    answer: QuickRun | None = None
    run_after: SlowRun | None = None
    working: str = ""
    opens_modal: Callable[[tuple[str, ...]], bool] = never
    open_modal: SlowRun | None = None
    admin: bool = False
    needs_login: bool = False  # without a Facebook login the answer is the login prompt, in the ack

    @property
    def quick(self) -> bool:
        return self.answer is not None


class Parsed(NamedTuple):
    """The command text, parsed once per request."""

    name: str
    args: tuple[str, ...]


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> Parsed:
    """`/fblink` text -> subcommand name (lower-cased) and arguments. Pure, so cached."""
    words = split_args(text)
    if not words:
        return Parsed("help", ())
    return Parsed(words[0].lower(), tuple(words[1:]))
