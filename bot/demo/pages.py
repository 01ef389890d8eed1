"""The simulated Facebook login dialog and the read-only Vonage dashboard.

The dialog sits where fblink's login link points (``{facebook_login_url}/{version}/dialog/oauth``)
and ends the way Facebook's does: a redirect to ``redirect_uri`` with ``code`` and ``state``,
or ``error=access_denied&error_reason=user_denied`` on Cancel.
"""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.demo.world import FACEBOOK_PEOPLE, PEOPLE, PEOPLE2, World
from bot.fakes.graph import REQUIRED_SCOPES

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#f0f2f5;margin:0;color:#1c1e21}
.bar{background:#1877f2;color:#fff;padding:10px 24px;font-weight:700;font-size:22px}
.bar.vonage{background:#131415}
.card{background:#fff;max-width:560px;margin:32px auto;border-radius:8px;box-shadow:0 2px 8px #0002;padding:24px}
.wide{max-width:900px}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:20px 0 8px}
.muted{color:#65676b;font-size:14px}
ul{padding-left:18px}li{margin:4px 0}
button{font-size:15px;padding:8px 18px;border-radius:6px;border:0;cursor:pointer;margin-right:8px}
.primary{background:#1877f2;color:#fff}.secondary{background:#e4e6eb;color:#050505}
table{border-collapse:collapse;width:100%;font-size:14px}td,th{border-bottom:1px solid #ddd;text-align:left;padding:6px 8px;vertical-align:top}
code{background:#f4f4f4;padding:1px 4px;border-radius:3px}
select{font-size:15px;padding:4px}
.warn{background:#fff4e5;border:1px solid #f5c26b;padding:8px;border-radius:6px;font-size:14px}
"""

SCOPE_TEXT = {
    "pages_show_list": "Show a list of the Pages you manage",
    "pages_messaging": "Manage and access Page conversations in Messenger",
    "pages_manage_metadata": "Manage accounts, settings and webhooks for a Page",
    "business_management": "Manage your business",
}


def _doc(title: str, body: str, *, vonage: bool = False) -> HTMLResponse:
    brand = "Vonage API Dashboard (simulated)" if vonage else "facebook (simulated)"
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><div class='bar{' vonage' if vonage else ''}'>{brand}</div>{body}</body></html>",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _default_person(request: Request) -> str:
    """The Facebook person of the Slack person last chosen in the web client (a cookie), else the first."""
    slack_user = request.cookies.get("demo_user", "")
    person = next((p for p in [*PEOPLE, *PEOPLE2] if p["id"] == slack_user), PEOPLE[0])
    return str(person["facebook"])


def routes(world: World) -> list[Route]:
    version = world.fblink.services.settings.facebook_api_version
    app_id = world.fblink.services.settings.facebook_app_id

    async def dialog(request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != app_id:
            return _doc(
                "Error",
                "<div class='card'><h1>Invalid App ID</h1><p class='muted'>The provided app ID does not look like a valid app ID.</p></div>",
            )
        redirect = q.get("redirect_uri", "")
        if urlsplit(redirect).scheme not in ("http", "https"):
            return _doc(
                "Error",
                "<div class='card'><h1>URL blocked</h1><p class='muted'>This redirect failed because the redirect URI is not whitelisted.</p></div>",
            )
        fb_id = q.get("as") or _default_person(request)
        person = next((p for p in FACEBOOK_PEOPLE if p["id"] == fb_id), FACEBOOK_PEOPLE[0])
        scopes = [s for s in (q.get("scope") or ",".join(REQUIRED_SCOPES)).split(",") if s]
        switch = "".join(
            f"<option value='{escape(p['id'])}'{' selected' if p['id'] == person['id'] else ''}>{escape(p['name'])}</option>"
            for p in FACEBOOK_PEOPLE
        )
        keep = {k: v for k, v in q.items() if k != "as"}
        perms = "".join(
            f"<li><label><input type='checkbox' name='grant' value='{escape(s)}' checked> "
            f"{escape(SCOPE_TEXT.get(s, s))} <code>{escape(s)}</code></label></li>"
            for s in scopes
        )
        page_list = (
            "".join(
                f"<li>{escape(p['name'])} <span class='muted'>({escape(', '.join(p['tasks']))})</span></li>"
                for p in person["pages"]
            )
            or "<li class='muted'>No Pages</li>"
        )
        page_list += "".join(
            f"<li>{escape(p['name'])} <span class='muted'>(via business portfolio {escape(b['name'])})</span></li>"
            for b in person.get("businesses", ())
            for p in (*b["owned_pages"], *b["client_pages"])
        )
        hidden = "".join(f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>" for k, v in keep.items())
        body = f"""<div class='card'>
<form method='get' action='' id='switch'>{"".join(f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>" for k, v in keep.items())}
<p class='muted'>Logged in to Facebook as <select name='as' id='fb-person' onchange='this.form.submit()'>{switch}</select></p></form>
<h1>{escape(person["name"])}, fblink demo is requesting access to:</h1>
<form method='post' action='/{escape(version)}/dialog/oauth/decide'>{hidden}
<input type='hidden' name='fb_user' value='{escape(person["id"])}'>
<h2>Permissions (untick one to decline it)</h2><ul>{perms}</ul>
<h2>Pages you manage</h2><ul>{page_list}</ul>
<p class='muted'>fblink demo will receive the access you allow. Nothing leaves this computer.</p>
<button class='primary' name='decision' value='allow' id='fb-allow'>Allow</button>
<button class='secondary' name='decision' value='cancel' id='fb-cancel'>Cancel</button>
</form></div>"""
        return _doc("Log in with Facebook", body)

    async def decide(request: Request) -> Response:
        # parse_qs rather than request.form(): no python-multipart dependency for one urlencoded form
        fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        form = {k: v[-1] for k, v in fields.items()}
        redirect = str(form.get("redirect_uri", ""))
        if urlsplit(redirect).scheme not in ("http", "https"):
            return _doc("Error", "<div class='card'><h1>URL blocked</h1></div>")
        state = str(form.get("state", ""))
        sep = "&" if "?" in redirect else "?"
        if form.get("decision") != "allow":
            query = {
                "error": "access_denied",
                "error_code": "200",
                "error_description": "Permissions error",
                "error_reason": "user_denied",
                "state": state,
            }
            return RedirectResponse(redirect + sep + urlencode(query) + "#_=_", status_code=302)
        fb_user = str(form.get("fb_user", ""))
        if fb_user not in world.graph.users:
            return _doc("Error", "<div class='card'><h1>Unknown person</h1></div>")
        asked = [s for s in str(form.get("scope") or ",".join(REQUIRED_SCOPES)).split(",") if s]
        granted = set(fields.get("grant", []))
        with world.graph.lock:  # the person's choice in this dialog is what Graph reports from now on
            user = world.graph.users[fb_user]
            user.declined = frozenset(s for s in asked if s not in granted)
        code = world.graph.issue_code(fb_user)
        return RedirectResponse(redirect + sep + urlencode({"code": code, "state": state}) + "#_=_", status_code=302)

    async def vonage(request: Request) -> Response:
        fake = world.vonage
        with fake.lock:
            keys = list(fake.keys)
            parts = []
            for key in keys:
                apps = fake.applications.get(key, {})
                rows = "".join(
                    f"<tr><td>{escape(a['name'])}</td><td><code>{escape(a['id'])}</code></td>"
                    f"<td>{escape(', '.join(a['capabilities']))}</td></tr>"
                    for a in apps.values()
                )
                accts = []
                for acct in fake.accounts.get(key, {}).values():
                    linked = (
                        ", ".join(
                            escape(apps[a]["name"]) if a in apps else f"<code>{escape(a)}</code>"
                            for a in acct.get("applications", [])
                        )
                        or "<span class='muted'>none</span>"
                    )
                    hidden = (
                        f"<input type='hidden' name='key' value='{escape(key)}'>"
                        f"<input type='hidden' name='page' value='{escape(acct['external_id'])}'>"
                    )
                    choices = "".join(
                        f"<option value='{escape(a['id'])}'>{escape(a['name'])}</option>"
                        for a in apps.values()
                        if "messages" in a["capabilities"]
                    )
                    accts.append(
                        f"<tr><td>{escape(acct.get('name') or '')}</td><td><code>{escape(acct['external_id'])}</code></td>"
                        f"<td>{linked}</td><td><form method='post' action='/vonage/application'>{hidden}"
                        f"<select name='app' aria-label='Application'>{choices}</select> <button>Change</button></form>"
                        f"<form method='post' action='/vonage/delete'>{hidden}<button class='danger'>Delete</button>"
                        "</form></td></tr>"
                    )
                secret = escape(fake.keys[key])
                parts.append(
                    f"<h2>API key <code>{escape(key)}</code> <span class='muted'>(secret <code>{secret}</code>)</span></h2>"
                    f"<h3>Facebook Messenger accounts</h3><table><tr><th>Page</th><th>Page id</th><th>Linked application</th>"
                    "<th>Change it here, as someone could in the real dashboard</th></tr>"
                    f"{''.join(accts) or '<tr><td colspan=4 class=muted>No accounts linked</td></tr>'}</table>"
                    f"<h3>Applications</h3><table><tr><th>Name</th><th>Id</th><th>Capabilities</th></tr>{rows}</table>"
                )
        body = (
            "<div class='card wide'><h1>Vonage: external accounts and applications</h1>"
            "<p class='warn'>The demo's secrets are fake; the second key can be added with "
            "<code>/fblink keys add</code> by the fblink admin. Delete a link or change its application here, "
            "then run <code>/fblink sync</code> in Slack to see fblink notice.</p>" + "".join(parts) + "</div>"
        )
        return _doc("Vonage dashboard", body, vonage=True)

    async def dashboard_change(request: Request) -> Response:
        """What someone does in Vonage's dashboard behind fblink's back: `/fblink sync` finds it."""
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        fake = world.vonage
        with fake.lock:
            acct = fake.accounts.get(form.get("key", ""), {}).get(form.get("page", ""))
            if acct is not None and request.url.path.endswith("/delete"):
                del fake.accounts[form["key"]][form["page"]]
            elif acct is not None and form.get("app") in fake.applications.get(form["key"], {}):
                acct["applications"] = [form["app"]]
        return RedirectResponse("/vonage", status_code=303)

    return [
        Route("/vonage/delete", dashboard_change, methods=["POST"]),
        Route("/vonage/application", dashboard_change, methods=["POST"]),
        Route(f"/{version}/dialog/oauth", dialog, methods=["GET"]),
        Route(f"/{version}/dialog/oauth/decide", decide, methods=["POST"]),
        Route("/vonage", vonage, methods=["GET"]),
    ]
