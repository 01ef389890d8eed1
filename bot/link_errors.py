"""What a link operation can refuse or run into, as exceptions the handlers turn into answers."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store import StoredPage
from bot.vonage import Application, Credentials


class LinkRefused(Exception):
    """The user asked for something fblink will not do; the message says why and what to do."""


@dataclass
class AppConflict(Exception):
    """The Page already has another application: the user must choose to replace it."""

    page: StoredPage
    creds: Credentials
    current_id: str
    current_name: str
    wanted: Application


class PartialChange(LinkRefused):
    """Vonage failed half-way and the undo failed too: the message says what state things are in."""


class Busy(LinkRefused):
    """Another operation on the same Page is running."""
