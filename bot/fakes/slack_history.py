"""conversations.history as Slack answers it to a bot token, and message metadata on chat.postMessage.

Messages newest first, ``oldest``/``latest`` exclusive unless ``inclusive``, ``limit`` (default
100, at most 999) and cursor paging (``has_more``, ``response_metadata.next_cursor``). A message's
``metadata`` ({"event_type", "event_payload"}) is returned only with ``include_all_metadata=true``.
Errors as Slack sends them: ``channel_not_found`` for a conversation it does not know,
``not_in_channel`` (and any other code) for a channel a test lists in ``history_errors``, and
``ratelimited`` as HTTP 429 with a Retry-After.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from bot.fakes.base import Response
from bot.fakes.slack_limits import error
from bot.fakes.slack_state import Conversations

EVENT_TYPE = re.compile(r"^[A-Za-z0-9_]{1,255}$")


def message_metadata(raw: Any) -> dict[str, Any] | str | None:
    """chat.postMessage's ``metadata`` (an object, or JSON text in a form body): the metadata,
    None when absent, or the error code Slack answers a malformed one with."""
    if raw in (None, ""):
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return "invalid_metadata_format"
    if not isinstance(raw, dict) or not EVENT_TYPE.match(str(raw.get("event_type") or "")):
        return "invalid_metadata_schema"
    if not isinstance(raw.get("event_payload"), dict):
        return "invalid_metadata_schema"
    return {"event_type": raw["event_type"], "event_payload": raw["event_payload"]}


def _cursor(offset: int) -> str:
    """Opaque to the client, as Slack's are (base64 of a position)."""
    return base64.b64encode(f"next_ts:{offset}".encode()).decode()


def _offset(cursor: str) -> int:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
    except ValueError:
        return 0
    return int(text[8:]) if text.startswith("next_ts:") and text[8:].isdigit() else 0


def _flag(value: Any) -> bool:
    return str(value).lower() in ("true", "1")


class ConversationsHistory:
    """Mixed into the fake Slack."""

    state: Conversations
    team_id: str
    history_errors: dict[str, str]  # channel id -> error code conversations.history answers with

    def api_conversations_history(self, p: dict[str, Any]) -> dict[str, Any] | Response:
        channel = str(p.get("channel") or "")
        problem = getattr(self, "history_errors", {}).get(channel)
        if problem == "ratelimited":
            return Response(429, error("ratelimited"), {"Retry-After": "30"})
        if problem:
            return error(problem)
        if channel not in self.state.channels and channel not in getattr(self, "channel_info", {}):
            return error("channel_not_found")
        inclusive = _flag(p.get("inclusive"))
        oldest, latest = float(p.get("oldest") or 0), float(p.get("latest") or "inf")
        limit = max(1, min(int(p.get("limit") or 100), 999))
        start = _offset(str(p.get("cursor") or ""))
        newest_first = [
            m
            for m in reversed(self.state.channels.get(channel, []))
            if m.ephemeral_to is None
            and m.thread_ts in (None, m.ts)
            and (oldest <= float(m.ts) <= latest if inclusive else oldest < float(m.ts) < latest)
        ]
        page = newest_first[start : start + limit]
        more = start + limit < len(newest_first)
        messages = []
        for m in page:
            out = m.api(self.team_id)
            out.pop("team", None)
            if m.metadata is not None and _flag(p.get("include_all_metadata")):
                out["metadata"] = m.metadata
            messages.append(out)
        return {
            "ok": True,
            "messages": messages,
            "has_more": more,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": _cursor(start + limit) if more else ""},
        }
