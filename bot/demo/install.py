"""The simulated Slack's "Add to Slack" for the demo's second workspace: the permission page Slack shows
an installer, and *Allow*, which walks fblink's real OAuth routes (its install page, the fake Slack's
authorize and ``oauth.v2.access``, fblink's redirect) before the browser lands in that workspace."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.demo.world import PEOPLE2, TEAM2, TEAM2_NAME, World
from bot.oauth import BOT_SCOPES

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#f8f8f8;margin:0;color:#1d1c1d}
.bar{background:#3f0e40;color:#fff;padding:10px 24px;font-weight:700;font-size:20px}
.card{background:#fff;max-width:560px;margin:32px auto;border-radius:8px;box-shadow:0 2px 8px #0002;padding:24px}
h1{font-size:20px;margin:0 0 12px}.muted{color:#616061;font-size:14px}li{margin:4px 0}
button{font-size:15px;padding:8px 18px;border-radius:6px;border:0;cursor:pointer;background:#007a5a;color:#fff}
"""


def _doc(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{STYLE}</style>"
        f"</head><body><div class='bar'>slack (simulated)</div><div class='card'>{body}</div></body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "same-origin"},  # no-referrer: Origin null
    )


def routes(world: World, own_origin: Callable[[Request], bool]) -> list[Route]:
    async def ask(request: Request) -> Response:
        installer = PEOPLE2[0]
        scopes = "".join(f"<li><code>{escape(s)}</code></li>" for s in BOT_SCOPES)
        return _doc(
            "Add fblink to Slack",
            f"<h1>fblink is requesting permission to access the {escape(TEAM2_NAME)} Slack workspace</h1>"
            f"<p class='muted'>Signed in as {escape(installer['real_name'])}. fblink will be able to:</p>"
            f"<ul>{scopes}</ul>"
            "<form method='post' action='/install/allow'><button type='submit'>Allow</button></form>"
            "<p class='muted'>Allow walks fblink's real install: its <code>/slack/install</code> page, Slack's "
            "authorize step and <code>oauth.v2.access</code>, and fblink's <code>/slack/oauth_redirect</code>.</p>",
        )

    async def allow(request: Request) -> Response:
        if not own_origin(request):  # a form from the demo's own page only
            return _doc("Refused", "<h1>Not from the demo's own page</h1>", 403)
        try:
            await asyncio.to_thread(world.install, TEAM2, TEAM2_NAME, PEOPLE2[0]["id"])
        except RuntimeError as exc:
            return _doc("Install failed", f"<h1>The install did not finish</h1><p>{escape(str(exc))}</p>", 502)
        return RedirectResponse(f"/?workspace={TEAM2}", status_code=303)

    return [Route("/install", ask, methods=["GET"]), Route("/install/allow", allow, methods=["POST"])]
