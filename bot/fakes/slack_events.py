"""What Slack SENDS through the Events API: one ``event_callback`` envelope (:func:`event_callback`)
around ``app_home_opened`` and the installation events ``app_uninstalled``, ``tokens_revoked``,
``team_access_revoked`` and ``team_access_granted``.

Built from Slack's event reference pages: ``tokens_revoked`` lists user ids, not
tokens (``oauth`` for user tokens, ``bot`` for bot users); the team-access events list the
workspaces in ``team_ids`` and come to an org-wide app (``enterprise_id`` set, the envelope's
``team_id`` one workspace of the org).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from bot.fakes.slack_payloads import APP_ID, BOT_USER, TEAM_ID, TOKEN

_ids = itertools.count(1)


def event_callback(
    event: dict[str, Any],
    *,
    team_id: str,
    enterprise_id: str | None = None,
    is_enterprise_install: bool = False,
    api_app_id: str = APP_ID,
    token: str = TOKEN,
) -> dict[str, Any]:
    """The Events API envelope around one event, as Slack posts it to the Request URL."""
    n = next(_ids)
    event = {**event, "event_ts": f"{time.time():.6f}"}
    return {
        "token": token,
        "team_id": team_id,
        "enterprise_id": enterprise_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": f"EvL{n:09d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": None if is_enterprise_install else team_id,
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": is_enterprise_install,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-eyJldCI6ImxpZmVjeWNsZSJ9{n}",
    }


def app_uninstalled(
    *, team_id: str, enterprise_id: str | None = None, is_enterprise_install: bool = False
) -> dict[str, Any]:
    """The app was removed from a workspace (or, org-wide, from the org): every token is dead."""
    return event_callback(
        {"type": "app_uninstalled"},
        team_id=team_id,
        enterprise_id=enterprise_id,
        is_enterprise_install=is_enterprise_install,
    )


def tokens_revoked(
    *, team_id: str, bot: list[str] | None = None, oauth: list[str] | None = None, enterprise_id: str | None = None
) -> dict[str, Any]:
    """Tokens were revoked: ``bot`` and ``oauth`` hold the user ids whose tokens went (never tokens)."""
    tokens: dict[str, list[str]] = {}
    if oauth:
        tokens["oauth"] = oauth
    if bot:
        tokens["bot"] = bot
    return event_callback({"type": "tokens_revoked", "tokens": tokens}, team_id=team_id, enterprise_id=enterprise_id)


def team_access(kind: str, *, enterprise_id: str, team_ids: list[str], team_id: str | None = None) -> dict[str, Any]:
    """``team_access_revoked`` / ``team_access_granted``: an org-wide app lost, or was given, access
    to these workspaces of its org."""
    return event_callback(
        {"type": f"team_access_{kind}", "team_ids": team_ids},
        team_id=team_id or team_ids[0],
        enterprise_id=enterprise_id,
        is_enterprise_install=True,
    )


def team_access_revoked(*, enterprise_id: str, team_ids: list[str], team_id: str | None = None) -> dict[str, Any]:
    return team_access("revoked", enterprise_id=enterprise_id, team_ids=team_ids, team_id=team_id)


def team_access_granted(*, enterprise_id: str, team_ids: list[str], team_id: str | None = None) -> dict[str, Any]:
    return team_access("granted", enterprise_id=enterprise_id, team_ids=team_ids, team_id=team_id)


def app_home_opened(
    *,
    user_id: str = "U1",
    channel_id: str = "D1",
    tab: str = "home",
    team_id: str = TEAM_ID,
    view: dict[str, Any] | None = None,
    enterprise_id: str | None = None,
    api_app_id: str = APP_ID,
    token: str = TOKEN,
) -> dict[str, Any]:
    """The person opened the app's Home (or Messages) tab; ``view`` only once a Home was published."""
    event: dict[str, Any] = {"type": "app_home_opened", "user": user_id, "channel": channel_id, "tab": tab}
    if view is not None:
        event["view"] = view
    return event_callback(event, team_id=team_id, enterprise_id=enterprise_id, api_app_id=api_app_id, token=token)
