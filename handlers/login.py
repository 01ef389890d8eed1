"""`/fblink login`, `/fblink logout` and the Facebook OAuth callback."""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from starlette.requests import Request
from starlette.responses import HTMLResponse

from bot import blocks
from bot.graph import REQUIRED_SCOPES, GraphError
from bot.http import UpstreamError, UpstreamUnavailable
from bot.store import FacebookLogin
from handlers.common import Req, dm

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)


def login_url(services: "Services", team_id: str, user_id: str, *, channel_id: str | None = None,
              purpose: str = "login", payload: dict[str, Any] | None = None, rerequest: bool = False) -> str:
    """A fresh single-use login link bound to this Slack user."""
    state = services.store.create_state(
        team_id, user_id, now=services.now(), channel_id=channel_id, purpose=purpose, payload=payload
    )
    return services.graph.login_dialog_url(state, rerequest=rerequest)


def login_prompt(services: "Services", team_id: str, user_id: str, channel_id: str | None = None,
                 *, text: str | None = None) -> dict[str, Any]:
    url = login_url(services, team_id, user_id, channel_id=channel_id)
    msg = blocks.login_message(url)
    if text:
        msg["blocks"].insert(0, blocks.section(text))
        msg["text"] = text
    return msg


async def cmd_login(req: Req) -> dict[str, Any]:
    return login_prompt(req.services, req.team_id, req.user_id, req.channel_id)


async def cmd_logout(req: Req) -> dict[str, Any]:
    had = req.store.forget_login(req.team_id, req.user_id)
    req.store.audit(req.team_id, "logout", now=req.now, user_id=req.user_id)
    if had:
        return blocks.notice(
            ":wave: fblink forgot your Facebook login and Page tokens. Existing Vonage links keep working until they expire."
        )
    return blocks.notice("You were not logged in. Run `/fblink login` to connect Facebook.")


# -- the browser side ---------------------------------------------------------

def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'><title>fblink: {t}</title>"
        "<meta name='viewport' content='width=device-width'>"
        "<style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;line-height:1.5}}</style>"
        "</head><body><h1>{t}</h1><p>{b}</p></body></html>"
    ).format(t=html.escape(title), b=html.escape(body))
    return HTMLResponse(doc, status_code=status, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


async def facebook_callback(services: "Services", request: Request) -> HTMLResponse:
    """Check the state first; only then talk to Facebook."""
    params = request.query_params
    state_text = params.get("state", "")
    now = services.now()
    state = services.store.consume_state(state_text, now=now) if state_text else None
    if state is None:
        return page(
            "Login link not valid",
            "This login link is unknown, expired (links last 10 minutes) or was already used. "
            "Run /fblink login in Slack to get a new one.",
            400,
        )
    if params.get("error"):
        reason = params.get("error_reason") or params.get("error")
        log.info("facebook login declined by %s: %s", state.user_id, reason)
        await dm(services, state.user_id, blocks.notice(
            ":no_entry_sign: You cancelled the Facebook login, so fblink cannot see your Pages. "
            "Run `/fblink login` when you want to try again."
        ))
        return page("Login cancelled", "You cancelled the Facebook login. You can close this tab and return to Slack.")
    code = params.get("code", "")
    if not code or len(code) > 2000:
        return page("Login incomplete", "Facebook did not send a login code. Run /fblink login in Slack again.", 400)

    graph = services.graph
    try:
        short = await graph.exchange_code(code)
        long = await graph.long_lived(short)
        info = await graph.debug_token(long.access_token)
        if not info.is_valid:
            raise GraphError("token not valid", code=info.error_code or 190, subcode=info.error_subcode)
        me = await graph.me(long.access_token)
    except GraphError as exc:
        log.info("facebook login failed for %s: code=%s subcode=%s", state.user_id, exc.code, exc.subcode)
        return page(
            "Facebook did not accept this login",
            "The login code was invalid, expired or already used. Run /fblink login in Slack to start again.",
            400,
        )
    except UpstreamUnavailable:
        await dm(services, state.user_id, blocks.notice(
            ":hourglass: Facebook is busy right now and the login could not be completed. "
            "Run `/fblink login` again in a few minutes."
        ))
        return page("Facebook is busy", "Facebook did not answer in time. Run /fblink login in Slack again in a few minutes.", 503)
    except UpstreamError:
        return page("Login failed", "Facebook answered in a way fblink did not expect. Run /fblink login in Slack again.", 502)

    token_expires_at = now + long.expires_in if long.expires_in else info.expires_at
    services.store.save_login(
        FacebookLogin(
            team_id=state.team_id, user_id=state.user_id, fb_user_id=str(me.get("id", info.user_id or "")),
            fb_name=str(me.get("name", "")), token=long.access_token, token_expires_at=token_expires_at,
            data_access_expires_at=info.data_access_expires_at, scopes=tuple(info.scopes),
        ),
        now=now,
    )
    services.store.audit(state.team_id, "login", now=now, user_id=state.user_id, detail=f"as {me.get('name', '')}")
    missing = [s for s in REQUIRED_SCOPES if s not in info.scopes]
    name = blocks.escape(str(me.get("name", "")))
    if missing:
        url = login_url(services, state.team_id, state.user_id, channel_id=state.channel_id, rerequest=True)
        msg = blocks.login_message(url, rerequest_scopes=missing)
        msg["blocks"].insert(0, blocks.section(f":white_check_mark: Connected to Facebook as *{name}*."))
        await dm(services, state.user_id, msg)
    else:
        await dm(services, state.user_id, blocks.notice(
            f":white_check_mark: Connected to Facebook as *{name}*. Run `/fblink pages` to see your Pages."
        ))
    if state.purpose == "relink" and state.payload.get("page_id"):
        from handlers.links import relink_after_login

        services.spawn(relink_after_login(services, state))
    return page("You're connected", f"fblink is connected to Facebook as {me.get('name', '')}. You can close this tab and return to Slack.")


def register(app: AsyncApp) -> None:
    @app.action("login_open")
    async def login_button(ack):  # type: ignore[no-untyped-def]
        # A URL button: the browser does the work; Slack still wants an ack.
        await ack()
