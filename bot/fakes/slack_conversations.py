"""The workspace's directory: people's names for users.info, and conversations.list as Slack answers it to a bot token: the workspace's channels, paged by cursor.

With ``channels:read`` a bot sees every public channel (``is_member`` says whether it joined);
with ``groups:read`` only the private channels it was invited to. Archived channels are left
out when ``exclude_archived`` is true.
"""

from __future__ import annotations

from typing import Any

from bot.fakes.slack_limits import error


class ConversationsList:
    """Mixed into the fake Slack: channels a test or the demo registers with :meth:`add_channel`."""

    channel_info: dict[str, dict[str, Any]]
    people: dict[str, tuple[str, str]]
    _caller_team: str | None  # the workspace whose token made the call being answered

    def foreign(self, channel_id: str) -> bool:
        """A channel of another workspace, not shared with the caller's: Slack answers channel_not_found."""
        teams = getattr(self, "channel_info", {}).get(channel_id, {}).get("shared_team_ids")
        return bool(teams and self._caller_team and self._caller_team not in teams)

    def _owned(self, full: dict[str, Any]) -> dict[str, Any]:
        """A view belongs to the workspace whose token opened it (Slack answers not_found to others)."""
        if self._caller_team:
            full["team_id"] = full["app_installed_team_id"] = self._caller_team
        return full

    def add_person(self, user_id: str, real_name: str, display_name: str) -> None:
        """users.info answers with these names for this user (others get the hostile default)."""
        if not hasattr(self, "people"):
            self.people = {}
        self.people[user_id] = (real_name, display_name)

    def person_names(self, user_id: str, real_name: str, display_name: str) -> tuple[str, str]:
        known: dict[str, tuple[str, str]] = getattr(self, "people", {})
        return known.get(user_id, (real_name, display_name))

    def grid_user(self, user_id: str) -> dict[str, Any] | None:
        """users.info's ``enterprise_user`` for a person of an Enterprise Grid org (set with ``org_people``)."""
        org: dict[str, dict[str, Any]] = getattr(self, "org_people", {})
        who = org.get(user_id)
        if who is None:
            return None
        return {
            "id": user_id,
            "enterprise_id": who["enterprise_id"],
            "enterprise_name": who.get("enterprise_name", ""),
            "is_admin": bool(who.get("is_admin")),
            "is_owner": bool(who.get("is_owner")),
            "teams": who.get("teams", []),
        }

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        private: bool = False,
        member: bool = True,
        archived: bool = False,
        team_id: str | None = None,
    ) -> None:
        """A channel; with ``team_id`` it belongs to that workspace alone (others' tokens cannot see it)."""
        if not hasattr(self, "channel_info"):
            self.channel_info = {}
        self.channel_info[channel_id] = {
            "id": channel_id,
            "name": name,
            "name_normalized": name,
            "is_channel": not private,
            "is_group": private,
            "is_im": False,
            "is_private": private,
            "is_member": member,
            "is_archived": archived,
            "created": 1700000000,
            "num_members": 3,
            **({"context_team_id": team_id, "shared_team_ids": [team_id]} if team_id else {}),
        }

    def api_conversations_list(self, p: dict[str, Any]) -> dict[str, Any]:
        types = str(p.get("types") or "public_channel").split(",")
        exclude_archived = str(p.get("exclude_archived", "false")).lower() in ("true", "1")
        limit = max(1, min(int(p.get("limit") or 100), 1000))
        start = int(p.get("cursor") or 0) if str(p.get("cursor") or "0").isdigit() else 0
        visible = [
            c
            for c in getattr(self, "channel_info", {}).values()
            if (
                ("private_channel" in types and c["is_private"] and c["is_member"])
                or ("public_channel" in types and not c["is_private"])
            )
            and not (exclude_archived and c["is_archived"])
            and not self.foreign(c["id"])
        ]
        page = visible[start : start + limit]
        nxt = str(start + limit) if start + limit < len(visible) else ""
        return {"ok": True, "channels": page, "response_metadata": {"next_cursor": nxt}}

    def api_conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        """A DM with the first user listed (D + the user id without its U)."""
        users = str(p.get("users", ""))
        if not users:
            return error("users_list_not_supplied")
        return {"ok": True, "channel": {"id": "D" + users.split(",")[0][1:]}}
