"""users.info for the fake Slack: the user object Slack answers, with the workspace roles.

From Slack's users.info reference: ``is_admin``, ``is_owner``, ``is_primary_owner``,
``is_restricted`` (multi-channel guest) and ``is_ultra_restricted`` (single-channel guest) are
booleans on every user object. A person a test placed in one workspace is ``user_not_found``
to another workspace's token, as Slack answers for someone outside the workspace; an org-wide
token (no workspace of its own) finds people in any workspace of the org.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.fakes.slack_limits import error

ROLES = ("is_admin", "is_owner", "is_primary_owner", "is_restricted", "is_ultra_restricted")


@dataclass(frozen=True)
class Person:
    """Where a person belongs and what they are there (a test sets this up)."""

    team_id: str
    role: str = "member"  # member, admin, owner, primary_owner, guest

    def flags(self) -> dict[str, bool]:
        owner = self.role in ("owner", "primary_owner")
        return {
            "is_admin": self.role == "admin" or owner,  # Slack marks owners as admins too
            "is_owner": owner,
            "is_primary_owner": self.role == "primary_owner",
            "is_restricted": self.role == "guest",
            "is_ultra_restricted": False,
        }


def user_info(
    uid: str, caller_team: str | None, person: Person | None, names: tuple[str, str], user_name: str
) -> dict[str, Any]:
    """users.info's answer for ``uid`` asked with ``caller_team``'s token (None: an org-wide token)."""
    if uid[:1] not in ("U", "W") or (person is not None and caller_team not in (None, person.team_id)):
        return error("user_not_found")
    team_id = person.team_id if person is not None else caller_team or "T0001"
    real, display = names
    profile = {
        "real_name": real,
        "display_name": display,
        "real_name_normalized": real,
        "display_name_normalized": display,
        "image_48": "https://avatars.slack-edge.com/48.png",
        "team": team_id,
    }
    flags = (person or Person(team_id)).flags()
    return {
        "ok": True,
        "user": {
            "id": uid,
            "team_id": team_id,
            "name": user_name,
            "deleted": False,
            "color": "9f69e7",
            "real_name": real,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": profile,
            **flags,
            "is_bot": False,
            "is_app_user": False,
            "updated": 1700000000,
        },
    }
