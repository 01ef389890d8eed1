"""`/fblink org`: an Enterprise Grid org admin sees the links of every workspace of the org.

Links, keys and reminders belong to the workspace where they were made; with an org-wide install
an org admin or owner (``users.info``'s ``enterprise_user``, asked with the org's token, never
taken from the payload) may read them all, each under its workspace's name. Read-only: nothing
of another workspace can be changed from here.
"""

from __future__ import annotations

import logging
from typing import Any

from bot import blocks, render
from bot.store.teams import TeamRows
from handlers.common import Req

log = logging.getLogger(__name__)

NOT_ORG = (
    "`/fblink org` is for Enterprise Grid orgs that installed fblink org-wide. "
    "Here `/fblink status` already shows every link."
)
NOT_ORG_ADMIN = ":lock: Only an admin or owner of your Enterprise Grid org can see every workspace's links."


async def is_org_admin(req: Req, enterprise_id: str) -> bool:
    """Slack says this person is an admin or owner of this org (asked with the org's token)."""
    try:
        slack = await req.services.slack_for(req.team_id)
        user = (await slack.users_info(user=req.user_id)).get("user") or {}
    except Exception as exc:
        log.warning("users.info failed for the org view: %s", type(exc).__name__)
        return False
    grid = user.get("enterprise_user") or {}
    return grid.get("enterprise_id") == enterprise_id and bool(grid.get("is_admin") or grid.get("is_owner"))


async def org_message(req: Req) -> dict[str, Any]:
    installs = req.services.installs
    install = await installs.install_for(None, req.team_id) if installs is not None else None
    if install is None or not install.is_enterprise_install or not install.enterprise_id:
        return blocks.notice(NOT_ORG)
    if not await is_org_admin(req, install.enterprise_id):
        return blocks.notice(NOT_ORG_ADMIN)
    now, shown, total = req.now, 0, 0
    out: list[blocks.Block] = []
    room = blocks.MAX_MESSAGE_BLOCKS - 1  # the heading takes one
    for team_id, name in await TeamRows(req.store).workspaces(install.enterprise_id):
        links = await req.store.list_links(team_id, include_gone=False)
        total += len(links)
        if not links or len(out) + 2 > room:
            continue
        out.append(blocks.section(f"*{blocks.escape(name or team_id)}* `{team_id}` · {len(links)} links"))
        for link in links[: room - len(out)]:
            out.append(blocks.section(render.link_row(link, now)))
            shown += 1
    if not total:
        return blocks.notice("No Pages are linked in any workspace of your org yet.")
    head = f"*Links in every workspace of your org* ({total})" + (f", the first {shown}" if shown < total else "")
    return blocks.message(f"{total} links in your org", [blocks.section(head), *out])


async def cmd_org(req: Req) -> None:
    await req.say(await org_message(req))
