"""Multi-step user journeys shared by the end-to-end tests."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from bot.fakes.graph import FakeGraph


class BrowserCookies:
    """A browser's cookie jar for one site, as a browser behind fblink's HTTPS front sees it: the
    test server is plain http://127.0.0.1, so httpx's own jar would keep ``Secure`` cookies to
    itself. Each ``browser()`` has its own jar: a second one plays another person's browser."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def send(self, request: httpx.Request) -> None:
        if self.values:
            request.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.values.items())

    def keep(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            pair, *attrs = [part.strip() for part in header.split(";")]
            name, _, value = pair.partition("=")
            if any(a.lower() == "max-age=0" for a in attrs) or not value:
                self.values.pop(name, None)
            else:
                self.values[name] = value


def browser(*, timeout: float = 10, **kw: Any) -> httpx.Client:
    """An HTTP client that keeps cookies the way a browser does (see BrowserCookies)."""
    jar = BrowserCookies()
    client = httpx.Client(timeout=timeout, event_hooks={"request": [jar.send], "response": [jar.keep]}, **kw)
    client.jar = jar  # type: ignore[attr-defined]
    return client


def public_origin(bot: Any) -> str:
    url = urlsplit(bot.app.services.settings.fblink_public_url)
    return f"{url.scheme}://{url.netloc}"


def button_urls(payload: dict[str, Any]) -> list[str]:
    urls = []
    for block in payload.get("blocks", []):
        for el in block.get("elements", []) if block.get("type") == "actions" else []:
            if el.get("url"):
                urls.append(el["url"])
    return urls


def buttons(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        el for block in payload.get("blocks", []) if block.get("type") == "actions" for el in block.get("elements", [])
    ]


def query(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def text_of(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def confirm_login(bot: Any, url: str, client: httpx.Client | None = None) -> str:
    """What a browser does with a login link: open fblink's page, press Continue (a POST from
    fblink's own origin, with the page's cookie). Returns the Facebook dialog URL fblink
    redirects to. ``client``: the browser (default: the test's own, ``bot.http``)."""
    client = client or bot.http
    page = client.get(url.replace("https://fblink.test", bot.url))
    assert page.status_code == 200, page.text
    csrf = re.search(r"name='csrf' value='([0-9a-f]+)'", page.text)
    assert csrf, page.text
    r = client.post(
        bot.url + "/facebook/login",
        data={"state": query(url)["state"], "csrf": csrf.group(1)},
        headers={"Origin": public_origin(bot)},
    )
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def login_state(bot: Any, user: str = "U1", *, confirm: bool = True) -> str:
    """Run `/fblink login`, confirm it on fblink's page (unless told not to), return the state."""
    r = bot.command("login", user=user)
    assert r.status_code == 200
    (url,) = button_urls(r.json())
    if confirm:
        confirm_login(bot, url)
    return query(url)["state"]


def log_in(
    bot: Any,
    graph: FakeGraph,
    *,
    user: str = "U1",
    fb_user: str = "FB1",
    name: str = "Ada Lovelace",
    pages: list[dict[str, Any]] | None = None,
    **user_kw: Any,
) -> Any:
    """The whole browser round trip: command, Facebook dialog (faked), callback."""
    if fb_user not in graph.users:
        graph.add_user(fb_user, name, pages=pages or [], **user_kw)
    state = login_state(bot, user)
    code = graph.issue_code(fb_user)
    r = bot.http.get(bot.url + "/facebook/callback", params={"code": code, "state": state})
    assert r.status_code == 200, r.text
    return r
