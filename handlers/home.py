"""App Home: every link in the workspace at a glance (views.publish on app_home_opened)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot import blocks, render
from bot.services import Services

log = logging.getLogger(__name__)
MAX_HOME_LINKS = 80  # the Home tab takes 100 blocks


async def home_view(services: Services, team_id: str, user_id: str) -> dict[str, Any]:
    now = services.now()
    links = await services.store.list_links(team_id, limit=MAX_HOME_LINKS)
    total = await services.store.count_links(team_id)
    out: list[dict[str, Any]] = [
        blocks.header("fblink: Facebook Pages linked to Vonage"),
        blocks.context(
            ":large_green_circle: ok · :large_yellow_circle: due within 14 days · "
            ":large_orange_circle: due within 3 days · :rotating_light: expired · :boom: broken"
        ),
    ]
    if not links:
        out.append(blocks.section("No Pages are linked yet. Run `/fblink login`, then `/fblink pages`."))
    for link in links:
        out.append(
            blocks.section(
                render.link_row(link, now), accessory=blocks.button("Re-link", "status_relink", link.page_id)
            )
        )
    if total > len(links):
        out.append(blocks.context(f"…and {total - len(links)} more: `/fblink status` lists them all."))
    if services.is_admin(user_id):
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


async def home_opened(ack: AsyncAck, event: dict[str, Any], body: dict[str, Any], services: Services) -> None:
    await ack()
    if event.get("tab", "home") != "home":
        return
    user_id = str(event["user"])
    team_id = str(body.get("team_id") or "")
    services.spawn(services.slack.views_publish(user_id=user_id, view=await home_view(services, team_id, user_id)))


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(home_opened)
