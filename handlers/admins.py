"""`/fblink admins [add | remove @person]`: who the fblink admins of this workspace are.

With one workspace the admins are FBLINK_ADMINS, set where fblink runs, and this only lists
them. In distributed mode they are the installer, the workspace's Slack admins and owners, and
the people added here; every row is the workspace's own (:mod:`bot.store.tenancy`). Admin only:
declared on the subcommand (handlers.commands).
"""

from __future__ import annotations

import re
from typing import Any

from bot import blocks
from handlers.common import Req

USAGE = "Usage: `/fblink admins` (list), `/fblink admins add @person`, `/fblink admins remove @person`."
USER_RE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>|([UW][A-Z0-9]{2,})")
SLACK_ADMINS = "Slack admins and owners of this workspace are fblink admins too."


def parse_user(word: str) -> str | None:
    """`<@U0123|ana>` (an escaped mention) or a bare user id -> the id."""
    m = USER_RE.fullmatch(word.strip())
    return (m.group(1) or m.group(2)) if m else None


async def cmd_admins(req: Req) -> dict[str, Any]:
    sub = req.args[0].lower() if req.args else "list"
    if sub == "list":
        return blocks.notice(await listing(req))
    if sub not in ("add", "remove"):
        return blocks.notice(f":thinking_face: I don't know `admins {blocks.escape(sub[:40])}`.\n{USAGE}")
    if not req.services.settings.distributed:
        return blocks.notice(
            "fblink admins are set where fblink runs: whoever runs fblink for your team changes the list there."
        )
    user = parse_user(req.args[1]) if len(req.args) == 2 else None
    if user is None:
        return blocks.notice(f"Name one person with an @-mention. {USAGE}")
    store, services = req.store, req.services
    if sub == "add":
        added = await store.add_team_admin(req.team_id, user, by=req.user_id, now=req.now)
        services.forget_role(req.team_id, user)
        await store.audit(req.team_id, "admin_add", now=req.now, user_id=req.user_id, detail=f"user {user}")
        return blocks.notice(
            f":key: <@{user}> is now an fblink admin of this workspace." if added else f"<@{user}> already is one."
        )
    removed = await store.remove_team_admin(req.team_id, user)
    services.forget_role(req.team_id, user)
    await store.audit(
        req.team_id,
        "admin_remove",
        now=req.now,
        user_id=req.user_id,
        detail=f"user {user}",
        result="ok" if removed else "not an added admin",
    )
    if not removed:
        return blocks.notice(f"<@{user}> is not an added fblink admin of this workspace.\n{await listing(req)}")
    still = (
        " They stay one as a Slack admin or owner of this workspace."
        if await services.slack_admin(req.team_id, user)
        else ""
    )
    return blocks.notice(f":wastebasket: <@{user}> is no longer an added fblink admin.{still}")


async def listing(req: Req) -> str:
    """This workspace's admins, as its people may see them."""
    if not req.services.settings.distributed:
        named = ", ".join(f"<@{a}>" for a in sorted(req.services.settings.admins)) or "none yet"
        return f"*fblink admins* (set where fblink runs): {named}"
    rows = [
        f"<@{r['user_id']}> "
        + ("installed fblink" if r["added_by"] == "install" else f"added by <@{r['added_by']}>")
        + f" {blocks.slack_date(int(r['added_at']))}"
        for r in await req.store.team_admins(req.team_id)
    ]
    return "*fblink admins of this workspace*\n" + "\n".join(rows or ["None added yet."]) + f"\n{SLACK_ADMINS}"
