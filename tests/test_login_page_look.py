"""Issue 21 item 4: the login confirmation page as a person reads it: fblink's one layout and
stylesheet (the same as the callback's and the error pages'), the person acting and the
workspace by name in any script (Cyrillic, CJK, emoji), and the wording that holds whatever
Pages the account manages."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from bot.fakes.slack_payloads import HOSTILE
from tests.flows import button_urls, confirm_login, query

RUSSIAN = "Анна Петрова 🌻"


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def all(self, tag: str, cls: str | None = None) -> list[Node]:
        found = [self] if self.tag == tag and (cls is None or cls in self.attrs.get("class", "").split()) else []
        for child in self.children:
            found += child.all(tag, cls)
        return found

    def one(self, tag: str, cls: str | None = None) -> Node:
        (node,) = self.all(tag, cls)
        return node

    def words(self) -> str:
        return self._raw().strip()

    def _raw(self) -> str:
        return self.text + "".join(c._raw() for c in self.children)


class _Tree(HTMLParser):
    VOID = frozenset({"meta", "input", "br", "link"})

    def __init__(self) -> None:
        super().__init__()  # convert_charrefs: text arrives unescaped, as a browser shows it
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        while len(self.stack) > 1 and self.stack.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(Node("#text", {}, text=data))


def parse(markup: str) -> Node:
    tree = _Tree()
    tree.feed(markup)
    return tree.root


def skeleton(doc: Node) -> tuple[str, str, str]:
    """What every fblink page shares: the stylesheet, the bar, and one card with a heading."""
    (style,) = [n.words() for n in doc.all("style")]
    bar = doc.one("header", "bar").words()
    card = doc.one("main", "card")
    assert card.one("h1").words()
    return style, bar, card.tag


def definitions(doc: Node) -> dict[str, str]:
    who = doc.one("dl", "who")
    terms = [n.words() for n in who.all("dt")]
    values = [n.words() for n in who.all("dd")]
    return dict(zip(terms, values, strict=True))


def open_login_page(bot: Any, user: str = "U1") -> tuple[str, Any]:
    (url,) = button_urls(bot.command("login", user=user).json())
    return url, bot.http.get(url.replace("https://fblink.test", bot.url))


def test_the_login_page_is_laid_out_like_the_others_and_names_the_person(bot, graph):
    bot.slack.add_person("U1", RUSSIAN, "anna")
    url, r = open_login_page(bot)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html; charset=utf-8")
    doc = parse(r.text)
    style, bar, _ = skeleton(doc)
    assert bar == "fblink"
    assert doc.one("h1").words() == "Connect Facebook to fblink"
    assert doc.one("html").attrs.get("lang") == "en"
    # the person acting and the workspace, by name, the ids beside them; every script as sent
    assert definitions(doc) == {"Slack user": f"{RUSSIAN} (U1)", "Workspace": f"{HOSTILE['team_name']} (T0001)"}
    # the wording that holds whatever Pages the Facebook account manages
    text = doc.one("main", "card").words()
    assert "The Facebook account you log in with next will be connected to this Slack user:" in text
    assert "Whoever holds that Slack account can then link and replace applications on the Pages" in text
    assert "Not you? Close this tab" in text
    assert [b.words() for b in doc.all("button")] == ["Continue to Facebook"]
    # the style draws every script: emoji and CJK families are in the font list
    for family in ("Noto Color Emoji", "Noto Sans CJK JP", "system-ui"):
        assert family in style
    # issue 17's protections are still there
    assert r.headers["referrer-policy"] == "same-origin"
    assert "form-action 'self' https://www.facebook.test" in r.headers["content-security-policy"]
    assert "style-src 'unsafe-inline'" in r.headers["content-security-policy"]

    # the callback's page and an error page: the same stylesheet and layout
    graph.add_user("FB1", "Ada Lovelace 漢字 🙂", pages=[])
    confirm_login(bot, url)
    done = bot.http.get(
        bot.url + "/facebook/callback", params={"code": graph.issue_code("FB1"), "state": query(url)["state"]}
    )
    assert done.status_code == 200
    done_doc = parse(done.text)
    assert skeleton(done_doc) == skeleton(doc)
    assert done_doc.one("h1").words() == "You're connected"
    assert definitions(done_doc) == {"Facebook account": "Ada Lovelace 漢字 🙂 (FB1)", "Slack user": f"{RUSSIAN} (U1)"}
    error = bot.http.get(bot.url + "/facebook/login", params={"state": "forged"})
    assert error.status_code == 400
    error_doc = parse(error.text)
    assert skeleton(error_doc) == skeleton(doc)
    assert error_doc.one("h1").words() == "Login link not valid"


def test_names_are_text_never_markup(bot):
    bot.slack.add_person("U1", "<script>alert(1)</script> & 'x'", "x")
    _, r = open_login_page(bot)
    assert "<script>" not in r.text
    assert definitions(parse(r.text))["Slack user"] == "<script>alert(1)</script> & 'x' (U1)"


def test_when_slack_does_not_answer_the_ids_stand_alone(bot):
    bot.slack.fail("GET /api/users.info", status=200, body={"ok": False, "error": "user_not_found"}, times=5)
    bot.slack.fail("POST /api/users.info", status=200, body={"ok": False, "error": "user_not_found"}, times=5)
    _, r = open_login_page(bot, user="U7")
    assert r.status_code == 200
    assert definitions(parse(r.text)) == {"Slack user": "U7", "Workspace": "T0001"}
