"""App Home: every link in the workspace at a glance (views.publish on app_home_opened)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot import blocks, render
from bot.services import Services
from handlers import permissions
from handlers.common import Body, Req, dm, on_action
from handlers.link_modal import open_link_modal
from handlers.session import login_prompt
from handlers.status import managed_ids, relink_button

log = logging.getLogger(__name__)
MAX_HOME_LINKS = 80  # the Home tab takes 100 blocks


async def home_view(services: Services, team_id: str, user_id: str) -> dict[str, Any]:
    now = services.now()
    links = await services.store.list_links(team_id, limit=MAX_HOME_LINKS)
    total = await services.store.count_links(team_id)
    out: list[dict[str, Any]] = [
        blocks.header("fblink: Facebook Pages linked to Vonage"),
        *await you(services, team_id, user_id),
    ]
    out.append(
        blocks.context(
            ":large_green_circle: ok · :large_yellow_circle: due within 14 days · "
            ":large_orange_circle: due within 3 days · :rotating_light: expired · :boom: broken"
        )
    )
    if not links:
        out.append(blocks.section("No Pages are linked yet. Log in with Facebook, then link a Page."))
    gaps = await permissions.linker_gaps(services, team_id, links)
    mine = await managed_ids(services, team_id, user_id)
    for link in links:
        lost = gaps.get(link.linked_by or "", ())
        out.append(
            blocks.section(
                render.link_row(link, now, lost),
                accessory=relink_button(services, link, now, lost, link.page_id in mine),
            )
        )
    if total > len(links):
        out.append(blocks.context(f"…and {total - len(links)} more: `/fblink status` lists them all."))
    if await services.is_admin(team_id, user_id):
        default = await services.store.team_reminder_channel(team_id) or services.settings.fblink_reminder_channel
        out.append(blocks.divider())
        out.append(
            blocks.section(
                "*Reminder settings* (admins)\n"
                f"Workspace default channel: {f'<#{default}>' if default else 'none'}\n"
                f"Reminders {', '.join(str(d) for d in services.settings.reminder_days)} days before expiry, "
                f"swept every {services.settings.fblink_sweep_minutes} minutes.\n"
                "Change with `/fblink remind #channel` or `/fblink remind <page> #channel|off`."
            )
        )
    return blocks.home(out)


async def you(services: Services, team_id: str, user_id: str) -> list[dict[str, Any]]:
    """Who this person is connected as, what their login lacks, and what they can do from here."""
    login = await services.store.get_login(team_id, user_id)
    if login is None:
        who = "You are not connected to Facebook yet: log in to see and link the Pages you manage."
        first = blocks.button("Log in with Facebook", "home_login", "login", style="primary")
    else:
        who = f"You are connected to Facebook as *{blocks.escape(login.fb_name)}*."
        if login.data_access_expires_at:
            who += f" Facebook's data access for this login ends {blocks.slack_date(login.data_access_expires_at)}."
        first = blocks.button("Log in again", "home_login", "login")
    out = [blocks.section(who)]
    out += await permissions.login_warning(services, team_id, user_id, None, login)
    buttons = [first]
    if login is not None:
        buttons.append(blocks.button("Link a Page", "home_link", "link", style="primary"))
    buttons.append(blocks.button("Refresh", "home_refresh", "refresh"))
    out.append(blocks.actions(*buttons, block_id="home_actions"))
    return out


async def home_login(req: Req, body: Body) -> None:
    """The login link comes as a DM (a Home tab cannot show an ephemeral message); where it landed
    is kept with the login link, so the prompt is marked done or replaced once it is spent."""
    posted = await dm(req.services, req.team_id, req.user_id, await login_prompt(req))
    if posted is not None and posted[1]:
        await req.store.note_prompt_message(req.team_id, req.user_id, *posted)


async def home_link(req: Req, body: Body) -> None:
    await open_link_modal(req)


async def home_refresh(req: Req, body: Body) -> None:
    await _publish(req.services, req.team_id, req.user_id)


async def home_opened(ack: AsyncAck, event: dict[str, Any], body: dict[str, Any], services: Services) -> None:
    await ack()
    if event.get("tab", "home") != "home":
        return
    user_id = str(event["user"])
    team_id = str(body.get("team_id") or "")
    services.spawn(_publish(services, team_id, user_id))


async def _publish(services: Services, team_id: str, user_id: str) -> None:
    slack = await services.slack_for(team_id)
    await slack.views_publish(user_id=user_id, view=await home_view(services, team_id, user_id))


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(home_opened)
    on_action(app, "home_login", home_login)
    on_action(app, "home_link", home_link)
    on_action(app, "home_refresh", home_refresh)
