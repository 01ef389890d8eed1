"""Multi-step user journeys shared by the end-to-end tests."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.fakes.graph import FakeGraph


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


def confirm_login(bot: Any, url: str) -> str:
    """What a browser does with a login link: open fblink's page, press Continue. Returns the
    Facebook dialog URL fblink redirects to."""
    page = bot.http.get(url.replace("https://fblink.test", bot.url))
    assert page.status_code == 200, page.text
    csrf = re.search(r"name='csrf' value='([0-9a-f]+)'", page.text)
    assert csrf, page.text
    r = bot.http.post(bot.url + "/facebook/login", data={"state": query(url)["state"], "csrf": csrf.group(1)})
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
