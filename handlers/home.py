"""App Home: every link in the workspace at a glance (views.publish on app_home_opened)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot import blocks
from bot.store import Link
from handlers.common import ack_only, services_of

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)
MAX_HOME_LINKS = 80  # the Home tab takes 100 blocks


def mark(link: Link, now: int) -> tuple[str, str]:
    """A status mark and its words."""
    if link.broken_at:
        return ":boom:", "broken"
    if link.status == "gone":
        return ":x:", "deleted at Vonage"
    if link.expires_at is None:
        return ":grey_question:", "expiry unknown"
    left = blocks.days_left(link.expires_at, now)
    if link.expires_at <= now:
        return ":red_circle:", "expired"
    if left <= 3:
        return ":large_orange_circle:", f"{left} days left"
    if left <= 14:
        return ":large_yellow_circle:", f"{left} days left"
    return ":large_green_circle:", f"{left} days left"


def home_view(services: "Services", team_id: str, user_id: str) -> dict[str, Any]:
    now = services.now()
    links = services.store.list_links(team_id, limit=MAX_HOME_LINKS)
    total = services.store.count_links(team_id)
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "fblink: Facebook Pages linked to Vonage"}},
        blocks.context(":large_green_circle: ok · :large_yellow_circle: due within 14 days · "
                       ":large_orange_circle: due within 3 days · :red_circle: expired · :boom: broken"),
    ]
    if not links:
        out.append(blocks.section("No Pages are linked yet. Run `/fblink login`, then `/fblink pages`."))
    for link in links:
        icon, words = mark(link, now)
        when = blocks.slack_date(link.expires_at) if link.expires_at else "unknown"
        app = blocks.escape(link.application_name or link.application_id or "no application")
        text = (f"{icon} *{blocks.escape(link.page_name)}* · {words}\n"
                f"key `{blocks.escape(link.api_key)}` · {app} · expires {when}"
                + (" · :no_bell: muted" if link.muted else ""))
        out.append(blocks.section(text, accessory=blocks.button("Re-link", "status_relink", link.page_id)))
    if total > len(links):
        out.append(blocks.context(f"…and {total - len(links)} more: `/fblink status` lists them all."))
    if services.is_admin(user_id):
        default = services.store.team_reminder_channel(team_id) or services.settings.fblink_reminder_channel
        out.append({"type": "divider"})
        out.append(blocks.section(
            "*Reminder settings* (admins)\n"
            f"Workspace default channel: {f'<#{default}>' if default else 'none'}\n"
            f"Reminders {', '.join(str(d) for d in services.settings.reminder_days)} days before expiry, "
            f"swept every {services.settings.fblink_sweep_minutes} minutes.\n"
            "Change with `/fblink remind #channel` or `/fblink remind <page> #channel|off`."))
    return {"type": "home", "blocks": out[:100]}


async def publish_home(event, context):  # type: ignore[no-untyped-def]
    services = services_of(context)
    if event.get("tab", "home") != "home":
        return
    user_id = event["user"]
    team_id = context.get("team_id") or ""
    await services.slack.views_publish(user_id=user_id, view=home_view(services, team_id, user_id))


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(ack=ack_only, lazy=[publish_home])
