"""`/fblink login`, `/fblink logout`, fblink's login confirmation page and the Facebook callback.

A login link opens fblink's own page first. It names the Slack workspace and user the
Facebook login will be bound to, and continues to Facebook only on a button: a POST from
fblink's own origin carrying the cookie that page gave this browser (handlers/login_browser.py).
A forwarded link therefore shows its reader whose Slack user it binds to before Facebook is
contacted; the callback refuses a state nobody confirmed, or one confirmed in another browser.
The DM that follows names the Facebook account and offers "Not me: disconnect", bound to it.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from slack_bolt.async_app import AsyncAck, AsyncApp
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot import blocks
from bot.graph import REQUIRED_SCOPES, GraphError
from bot.http import UpstreamError, UpstreamUnavailable
from bot.services import Services
from bot.store import FacebookLogin, OAuthState
from handlers import login_browser as browser
from handlers import permissions
from handlers.browser_page import page, who_list
from handlers.changes import relink_after_login
from handlers.common import Body, Req, dm, on_action, replace_message, tell_in_channel
from handlers.session import login_message, login_prompt, login_url

log = logging.getLogger(__name__)


async def cmd_login(req: Req) -> dict[str, Any]:
    return await login_prompt(req)


async def cmd_logout(req: Req) -> dict[str, Any]:
    had = await req.store.forget_login(req.team_id, req.user_id)
    await req.store.audit(req.team_id, "logout", now=req.now, user_id=req.user_id)
    if had:
        return blocks.notice(
            ":wave: fblink deleted your Facebook login and the Page tokens it brought. It keeps only the Page "
            "tokens already given to Vonage for your links, and uses them only for the daily health check; "
            "your links keep working until they expire."
        )
    return blocks.notice("You were not logged in. Run `/fblink login` to connect Facebook.")


async def cmd_whoami(req: Req) -> dict[str, Any]:
    """Which Facebook account is connected to this Slack user, and until when fblink may use it."""
    login = await req.store.get_login(req.team_id, req.user_id)
    if login is None:
        return blocks.notice("No Facebook account is connected to you. Run `/fblink login` to connect yours.")
    ends = blocks.slack_date(login.data_access_expires_at) if login.data_access_expires_at else "unknown"
    text = (
        f"Connected to Facebook as *{blocks.escape(login.fb_name)}* (`{blocks.escape(login.fb_user_id)}`). "
        f"Facebook's data access for this login ends {ends}."
    )
    warning = await permissions.login_warning(req.services, req.team_id, req.user_id, req.channel_id, login)
    return blocks.message(
        text, [blocks.section(text), *warning, blocks.actions(disconnect_button(login.fb_user_id, login.fb_name))]
    )


def disconnect_button(fb_user_id: str, fb_name: str) -> dict[str, Any]:
    """Bound to the Facebook account it names: clicked later, it never removes another login."""
    return blocks.button(
        "Not me: disconnect",
        "login_disconnect",
        fb_user_id,
        style="danger",
        confirm=blocks.confirm_dialog(
            "Disconnect this Facebook login?",
            f"fblink will delete the login of {blocks.escape(fb_name)} and every Page token it brought.",
            ok="Disconnect",
        ),
    )


async def disconnect(req: Req, body: Body) -> None:
    """ "Not me": the Facebook account the button named is not this Slack user's. Remove everything it
    brought, if it is still the one connected; a button shown for an earlier login changes nothing."""
    actions = body.get("actions") or [{}]
    named = str(actions[0].get("value") or "")[:64]
    login = await req.store.get_login(req.team_id, req.user_id)
    if login is None or not named or named != login.fb_user_id:
        text = (
            f"The Facebook login this button was for (`{blocks.escape(named)}`) is already gone, so nothing was "
            "disconnected. Run `/fblink whoami` to see which login, if any, is connected now."
        )
        await req.respond(**blocks.notice(text), replace_original=True)
        return
    had = await req.store.forget_login(req.team_id, req.user_id, fb_user_id=named)
    if not had:  # replaced between the read and the delete
        await req.respond(**blocks.notice("That Facebook login was replaced meanwhile; nothing was disconnected."))
        return
    dropped = await req.store.forget_link_tokens(req.team_id, req.user_id)
    await req.store.audit(
        req.team_id, "disconnect", now=req.now, user_id=req.user_id, detail=f"{dropped} link tokens dropped"
    )
    text = (
        f":unlock: Disconnected: fblink deleted the Facebook login of {blocks.escape(login.fb_name)} and every "
        "Page token it brought"
        + (f", including the tokens of {dropped} link(s) you made with it" if dropped else "")
        + ". Run `/fblink login` to connect your own account."
    )
    await req.respond(**blocks.notice(text), replace_original=True)


# -- the browser side ---------------------------------------------------------


INVALID = (
    "Login link not valid",
    "This login link is unknown, expired (links last 10 minutes) or was already used. "
    "Run /fblink login in Slack to get a new one.",
)


async def _slack_names(services: Services, state: OAuthState) -> tuple[str, str]:
    """The workspace and the Slack user's names as Slack knows them (ids when Slack does not answer)."""
    team, user = state.team_id, state.user_id
    try:
        slack = await services.slack_for(state.team_id)
        info = await slack.users_info(user=state.user_id)
        profile = info["user"] or {}
        user = str(profile.get("real_name") or profile.get("name") or user)
        auth = await slack.auth_test()
        team = str(auth.get("team") or team)
    except Exception as exc:
        log.info("could not look up Slack names for the login page: %s", type(exc).__name__)
    return team, user


NOT_CONFIRMED = (
    "Login not confirmed",
    "The confirmation did not come from fblink's page in this browser. Open the login link from Slack again, "
    "in the browser you want to log in with.",
)


async def login_page(services: Services, request: Request) -> Response:
    """GET: say whom the login binds to, and give this browser its cookie. POST: confirmed in
    this browser, from fblink's own page: bind the state to the browser, continue to Facebook."""
    now = services.now()
    public_url = services.settings.fblink_public_url
    cookie = browser.browser_cookie(request, public_url)
    if request.method == "POST":
        raw = (await request.body()).decode("utf-8", "replace")  # bounded by bot.web before this runs
        form = {k: v[-1] for k, v in parse_qs(raw).items()}
        state_text, token = form.get("state", ""), form.get("csrf", "")
        if not browser.from_own_page(request, public_url):
            log.info("login confirmation refused: it came from another origin")
            return page(*NOT_CONFIRMED, 403)
        state = await services.store.peek_state(state_text, now=now)
        if state is None:
            return page(*INVALID, 400)
        if cookie is None or not browser.token_ok(cookie, state_text, token):
            return page(*NOT_CONFIRMED, 403)
        if not await services.store.confirm_state(state_text, now=now, browser=browser.browser_hash(cookie)):
            return page(
                "Login already confirmed elsewhere",
                "This login link was confirmed in another browser; it can be finished only there. "
                "Run /fblink login in Slack to get a new one.",
                403,
            )
        dialog = services.graph.login_dialog_url(state_text, rerequest=bool(state.payload.get("rerequest")))
        return RedirectResponse(dialog, status_code=303, headers={"Cache-Control": "no-store"})
    state_text = request.query_params.get("state", "")
    state = await services.store.peek_state(state_text, now=now)
    if state is None:
        return page(*INVALID, 400)
    team, user = await _slack_names(services, state)
    cookie = cookie or browser.new_cookie()
    confirm_form = (
        who_list([("Slack user", user, state.user_id), ("Workspace", team, state.team_id)])
        + "<p>Whoever holds that Slack account can then link and replace applications on the Pages this "
        "Facebook account manages.</p>"
        "<p><strong>Not you?</strong> Close this tab: a login link belongs to the person who asked for it.</p>"
        "<form method='post' action='login'>"
        f"<input type='hidden' name='state' value='{html.escape(state_text)}'>"
        f"<input type='hidden' name='csrf' value='{browser.form_token(cookie, state_text)}'>"
        "<button type='submit'>Continue to Facebook</button></form>"
        "<p class='muted'>Finish the login in this browser: fblink accepts Facebook's answer only here.</p>"
    )
    response = page(
        "Connect Facebook to fblink",
        "The Facebook account you log in with next will be connected to this Slack user:",
        extra_html=confirm_form,
        form_to=f"'self' {_origin(services.settings.facebook_login_url)}",  # the POST redirects to Facebook
        referrer="same-origin",
    )
    browser.set_browser_cookie(response, cookie, public_url)
    return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


UNFINISHED = ":x: This login link was used, but the login did not finish. Run `/fblink login` for a new one."


async def facebook_callback(services: Services, request: Request) -> Response:
    """Check the state first; only then talk to Facebook. The state is spent either way, so the
    prompt that showed its button is replaced with how it ended (a live-looking button would lie);
    when it cannot be (none, or its response_url expired), a login says so in the channel instead."""
    now = services.now()
    state_text = request.query_params.get("state", "")
    state = await services.store.consume_state(state_text, now=now) if state_text else None
    if state is None:
        return page(*INVALID, 400)
    response, outcome, connected = await _finish_login(services, request, state, now)
    spent = state.response_url or state.prompt
    if not await replace_message(services, spent, blocks.notice(outcome), state.team_id) and connected:
        await tell_in_channel(services, state.team_id, state.channel_id, state.user_id, outcome)
    return response


async def _finish_login(
    services: Services, request: Request, state: OAuthState, now: int
) -> tuple[Response, str, bool]:
    """The page to show, the line the spent prompt becomes, and whether a login was saved."""
    params = request.query_params
    # Used up either way: a dialog URL that reached another browser is burnt, not retried.
    if not browser.same_browser(browser.browser_cookie(request, services.settings.fblink_public_url), state.browser):
        log.info("facebook callback for %s refused: not the browser that confirmed the login", state.user_id)
        return (
            page(
                "Login not finished: another browser",
                "This Facebook login was started in a different browser from the one that confirmed it on fblink's "
                "page, so fblink did not use it. If you are the person who asked for it, run /fblink login in Slack "
                "and finish it in one browser.",
                403,
            ),
            UNFINISHED,
            False,
        )
    if params.get("error"):
        reason = params.get("error_reason") or params.get("error")
        log.info("facebook login declined by %s: %s", state.user_id, reason)
        await dm(
            services,
            state.team_id,
            state.user_id,
            blocks.notice(
                ":no_entry_sign: You cancelled the Facebook login, so fblink cannot see your Pages. "
                "Run `/fblink login` when you want to try again."
            ),
        )
        cancelled = page(
            "Login cancelled", "You cancelled the Facebook login. You can close this tab and return to Slack."
        )
        return cancelled, ":no_entry_sign: You cancelled this Facebook login. Run `/fblink login` to try again.", False
    code = params.get("code", "")
    if not code or len(code) > 2000:
        incomplete = "Facebook did not send a login code. Run /fblink login in Slack again."
        return page("Login incomplete", incomplete, 400), UNFINISHED, False

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
        return (
            page(
                "Facebook did not accept this login",
                "The login code was invalid, expired or already used. Run /fblink login in Slack to start again.",
                400,
            ),
            UNFINISHED,
            False,
        )
    except UpstreamUnavailable:
        await dm(
            services,
            state.team_id,
            state.user_id,
            blocks.notice(
                ":hourglass: Facebook is busy right now and the login could not be completed. "
                "Run `/fblink login` again in a few minutes."
            ),
        )
        return (
            page(
                "Facebook is busy",
                "Facebook did not answer in time. Run /fblink login in Slack again in a few minutes.",
                503,
            ),
            UNFINISHED,
            False,
        )
    except UpstreamError:
        unexpected = "Facebook answered in a way fblink did not expect. Run /fblink login in Slack again."
        return page("Login failed", unexpected, 502), UNFINISHED, False

    fb_name = str(me.get("name", ""))
    fb_user_id = str(me.get("id", info.user_id or ""))
    token_expires_at = now + long.expires_in if long.expires_in else info.expires_at
    await services.store.save_login(
        FacebookLogin(
            team_id=state.team_id,
            user_id=state.user_id,
            fb_user_id=fb_user_id,
            fb_name=fb_name,
            token=long.access_token,
            token_expires_at=token_expires_at,
            data_access_expires_at=info.data_access_expires_at,
            scopes=tuple(info.scopes),
        ),
        now=now,
    )
    await services.store.audit(state.team_id, "login", now=now, user_id=state.user_id, detail=f"as {fb_name}")
    dm_msg = await connected_message(services, state, fb_user_id, fb_name, info.scopes)
    posted = await dm(services, state.team_id, state.user_id, dm_msg)
    lacking = permissions.missing(info.scopes)
    if lacking and posted is not None and posted[1]:  # its grant button is a login link: spent, it is updated
        await services.store.note_prompt_message(state.team_id, state.user_id, *posted)
    name = blocks.escape(fb_name)
    outcome = (
        f":warning: Connected to Facebook as *{name}*, but Facebook did not grant {permissions.in_words(lacking)}. "
        "Your DM with fblink has a button to grant it."
        if lacking
        else f":white_check_mark: Connected to Facebook as *{name}*. Your DM with fblink has the details."
    )
    if state.purpose == "relink" and state.payload.get("page_id"):
        services.spawn(relink_after_login(services, state))
    _, slack_name = await _slack_names(services, state)
    who = who_list([("Facebook account", fb_name, fb_user_id), ("Slack user", slack_name, state.user_id)])
    if lacking:
        return (
            page(
                "Connected, but permissions are missing",
                f"fblink is connected to Facebook as {fb_name}, for Slack user {slack_name}, but Facebook did not "
                f"grant: {permissions.in_words(lacking).replace('`', '')}. "
                + ("Pages cannot be linked until you grant them. " if permissions.blocking(info.scopes) else "")
                + "Your DM from fblink in Slack has a button that asks Facebook for them again.",
                extra_html=who,
            ),
            outcome,
            True,
        )
    connected = page(
        "You're connected",
        f"fblink is connected to Facebook as {fb_name}, for Slack user {slack_name}. "
        "You can close this tab and return to Slack.",
        extra_html=who,
    )
    return connected, outcome, True


async def connected_message(
    services: Services, state: OAuthState, fb_user_id: str, fb_name: str, scopes: Sequence[str]
) -> dict[str, Any]:
    name = blocks.escape(fb_name)
    head = (
        f":white_check_mark: Connected to Facebook as *{name}*. Not you? Someone else completed the login "
        "link you were sent: disconnect it now."
    )
    out = [blocks.section(head), blocks.actions(disconnect_button(fb_user_id, fb_name))]
    missing = [s for s in REQUIRED_SCOPES if s not in scopes]
    if missing:
        url = await login_url(services, state.team_id, state.user_id, channel_id=state.channel_id, rerequest=True)
        out += login_message(url, rerequest_scopes=missing)["blocks"]
    else:
        out.append(blocks.context("Run `/fblink pages` to see your Pages."))
    return blocks.message(f"Connected to Facebook as {fb_name}", out)


async def login_button(ack: AsyncAck, body: Body, services: Services) -> None:
    """A URL button: the browser does the work; Slack still wants an ack. The click comes with the
    response_url of the message showing the button (an ephemeral answer fblink cannot reach
    otherwise): kept with the link, so that message is marked done or replaced once it is spent."""
    await ack()
    ref = str(((body.get("actions") or [{}])[0] or {}).get("value") or "")
    url = body.get("response_url")
    if len(ref) == 64 and url:
        team, user = str((body.get("team") or {}).get("id") or ""), str((body.get("user") or {}).get("id") or "")
        services.spawn(services.store.note_prompt_url(team, user, ref, str(url)))


def register(app: AsyncApp) -> None:
    app.action("login_open")(login_button)
    on_action(app, "login_disconnect", disconnect)
