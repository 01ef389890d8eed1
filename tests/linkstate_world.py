"""Shared setup for the tests/test_linkstate_*.py files: one key with three applications, one
logged-in user managing three Pages, and small readers of the database and the fake Vonage."""

from __future__ import annotations

from typing import Any

from bot.fakes.vonage import FakeVonage
from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import log_in, text_of

DAY = 86400
APP1 = "aaaaaaaa-0000-4000-8000-0000000000a1"
APP2 = "aaaaaaaa-0000-4000-8000-0000000000a2"
KEY2 = "second99"
PERSISTENT = 50
ACCOUNT = "/beta/chatapp-accounts/messenger"
PAGES = [
    {"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]},
    {"id": "102", "name": 'Ça & Co = "100%" ☕', "category": "Shop", "tasks": ["MESSAGING"]},
]


def setup(
    bot: Any,
    graph: Any,
    vonage: FakeVonage,
    *,
    user: str = "U1",
    fb_user: str = "FB1",
    pages: list[dict[str, Any]] | None = None,
    **user_kw: Any,
) -> Any:
    """Applications at Vonage, a second key an admin added, and ``user`` logged in to Facebook."""
    vonage.add_application(VONAGE_KEY, APP1, "Support Bot")
    vonage.add_application(VONAGE_KEY, APP2, "Sales Bot")
    vonage.add_key(KEY2, "s2-secret")
    vonage.add_application(KEY2, APP1 + "2", "Other Key Bot")
    bot.store.add_key(TEAM, KEY2, "s2-secret", by="UADMIN", now=START)
    user_kw.setdefault("data_access_expires_at", START + 200 * DAY)
    log_in(bot, graph, user=user, fb_user=fb_user, pages=pages or PAGES, **user_kw)
    bot.slack.wait_message("Connected to Facebook")
    bot.slack.messages.clear()
    return bot


def answer(bot: Any, contains: str, *, name: str | None = None) -> str:
    """The first response_url answer containing ``contains`` (to ``name`` when given), as text."""

    def found() -> Any:
        return next(
            (r for r in bot.slack.responses if contains in text_of(r) and (name is None or r.get("url_name") == name)),
            None,
        )

    return text_of(bot.slack.wait_for(found))


def run(bot: Any, command: str, expect: str, **kw: Any) -> str:
    """Run a command and wait for its answer (clearing earlier answers first)."""
    bot.slack.responses.clear()
    bot.command(command, **kw)
    return answer(bot, expect)


def vonage_apps(vonage: FakeVonage, page_id: str, key: str = VONAGE_KEY) -> list[str] | None:
    """The applications Vonage holds for the Page; None when it has no account for it."""
    acct = vonage.accounts.get(key, {}).get(page_id)
    return None if acct is None else list(acct["applications"])


def audit_rows(bot: Any, page_id: str) -> list[tuple[str, str | None, str]]:
    """(action, user, result) of the Page's audit rows, oldest first."""
    rows = bot.store.select(
        "SELECT action, user_id, result FROM audit WHERE team_id = ? AND page_id = ? ORDER BY id", [TEAM, page_id]
    )
    return [(r["action"], r["user_id"], r["result"]) for r in rows]


def raw_link(bot: Any, page_id: str) -> dict[str, Any] | None:
    """The link's database row as stored (token ciphertext included)."""
    return bot.store.one("SELECT * FROM links WHERE team_id = ? AND page_id = ?", [TEAM, page_id])
