"""Row models: what the store hands out. Plain frozen dataclasses; tokens are already decrypted."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from bot.clock import DAY


class LinkState(enum.Enum):
    """What a link is, at a given moment: one definition for pages, status, App Home and reminders."""

    ACTIVE = "active"
    UNKNOWN_EXPIRY = "unknown_expiry"  # linked outside fblink (sync import): re-link to know
    EXPIRED = "expired"
    BROKEN = "broken"  # Facebook says the Page token Vonage holds is dead
    GONE = "gone"  # deleted at Vonage


@dataclass(frozen=True)
class FacebookLogin:
    team_id: str
    user_id: str
    fb_user_id: str
    fb_name: str
    token: str
    token_expires_at: int | None
    data_access_expires_at: int | None
    scopes: tuple[str, ...]

    def __repr__(self) -> str:
        return f"FacebookLogin(team_id={self.team_id!r}, user_id={self.user_id!r}, fb_name={self.fb_name!r})"


@dataclass(frozen=True)
class StoredPage:
    page_id: str
    name: str
    category: str
    tasks: tuple[str, ...]
    token: str
    business_name: str | None = None  # reached through this Business Portfolio
    no_token_reason: str | None = None  # set when Graph gave no Page token: cannot be linked

    def __repr__(self) -> str:
        return f"StoredPage({self.page_id!r}, {self.name!r})"

    @property
    def can_link(self) -> bool:
        return bool(self.token) and bool({"MESSAGING", "MANAGE"} & set(self.tasks))


@dataclass(frozen=True)
class OAuthState:
    team_id: str
    user_id: str
    channel_id: str | None
    purpose: str
    payload: dict[str, Any]
    browser: str | None = None  # SHA-256 of the cookie of the browser that confirmed it (hex)
    response_url: str | None = field(default=None, repr=False)  # the prompt's; a secret: never in a repr
    prompt: tuple[str, str] | None = None  # (channel, ts) of a prompt posted as a message of its own


@dataclass(frozen=True)
class Link:
    id: int
    team_id: str
    page_id: str
    page_name: str
    api_key: str
    application_id: str | None
    application_name: str | None
    linked_by: str | None
    linked_at: int
    channel_id: str | None
    expires_at: int | None
    status: str
    period: int
    needs_relink: bool
    reminder_channel: str | None
    muted: bool
    next_due_at: int | None
    broken_at: int | None
    breakages: int
    unreadable_at: int | None = None  # its stored token could not be decrypted: shown as broken, skipped

    def state(self, now: int) -> LinkState:
        if self.status == "gone":
            return LinkState.GONE
        if self.broken_at or self.unreadable_at:
            return LinkState.BROKEN
        if self.expires_at is None:
            return LinkState.UNKNOWN_EXPIRY
        if self.expires_at <= now:
            return LinkState.EXPIRED
        return LinkState.ACTIVE

    def days_left(self, now: int) -> int | None:
        """Whole days until expiry, a started day counting as one (13.5 -> 14); <= 0 once past."""
        return None if self.expires_at is None else days_left(self.expires_at, now)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Link:
        return cls(
            **{k: row[k] for k in cls.__dataclass_fields__ if k not in ("needs_relink", "muted", "unreadable_at")},
            unreadable_at=row.get("unreadable_at"),
            needs_relink=bool(row["needs_relink"]),
            muted=bool(row["muted"]),
        )


@dataclass(frozen=True)
class Claim:
    """The right to post one reminder, taken in the database before posting."""

    reminder_id: int
    claim_id: str
    kind: str  # "expiry" or "broken"
    threshold: int  # days before expiry (0 = expired notice), or the breakage number
    link: Link
    attempts: int = 0  # failed posts so far
    attempt_at: int | None = None  # when (wall clock) an earlier holder last sent its post, if it did
    attempt_channel: str | None = None  # and to which channel: read there before posting again


def days_left(expires_at: int, now: int) -> int:
    """Days until expiry, counting a started day as a whole one (13.5 days -> 14); <= 0 once past."""
    return -((now - expires_at) // DAY)
