"""Hypothesis strategies for Slack traffic: commands, clicks and modal submissions as Slack sends them.

Names (team domain, channel, user, enterprise) are drawn from hostile values - the word "payload",
``&``, ``=``, ``+``, ``%``, quotes, emoji, non-Latin scripts, 80 characters - because fblink must
not care what a workspace or person is called.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import strategies as st

from bot.fakes import slack_payloads as sp
from handlers.commands import SUBCOMMANDS as REGISTRY
from tests.conftest import TEAM, VONAGE_KEY
from tests.test_links import APP1, APP2

SUBCOMMANDS = sorted(REGISTRY)
USERS = ["U1", "UADMIN", "U2"]

# Every listener fblink registers (grep `app.action(` / `app.view(` in handlers/).
MESSAGE_ACTIONS = [
    "login_open",
    "pages_next",
    "pages_next_prev",
    "page_link",
    "page_link_app",
    "page_unlink",
    "page_relink",
    "status_relink",
    "link_replace",
    "reminder_relink",
    "link_keep",
    "status_next",
    "status_next_prev",
    "login_disconnect",
]
MODAL_ACTIONS = ["link_modal_key"]  # dispatch_action inside the link modal
HOME_ACTIONS = ["status_relink", "home_login", "home_link", "home_refresh"]  # the App Home tab's buttons
VIEWS = ["link_modal", "keys_add_modal"]


# -- strategies ------------------------------------------------------------------------

TRICKY_WORDS = [
    "<",
    ">",
    "&",
    "&amp;",
    "&lt;",
    "&gt;",
    "&#x0;",
    "&#99999999;",
    '"',
    "'",
    '"unbalanced',
    "'also",
    "\\",
    "“curly”",
    "app",
    "APP",
    "add",
    "remove",
    "list",
    "off",
    "on",
    "mute",
    "<#C0123456|general>",
    "<#C0123456>",
    "<@U1>",
    "<!channel>",
    "101",
    "102",
    "103",
    "999",
    "Acme",
    "Coffee",
    "Support",
    "Bot",
    VONAGE_KEY,
    "nosuchkey",
    "\x00",
    "\n",
    "\r\n",
    "\t",
    "\x1b[31m",
    "\u202e",
    "\u200b",
    "😀",
    "İ",
    "ß",
    "Ⅻ",
    "%",
    "%00",
    "+",
    "=",
    "x" * 600,
    "y" * 3000,
    "<" * 200,
    "&amp;" * 200,
    "payload",
    "payload=",
    "payload-pros",
    "payload={}",
    "%26payload%3D",
    sp.HOSTILE["text"],
    sp.LONG_NAME,
]

# Names Slack sends along with every request (team domain, channel, user, enterprise): fblink must not care.
NAMES = st.one_of(
    st.sampled_from([*sp.HOSTILE.values(), "payload", "payload=1&payload=2", "a+b%20c=d&e", "'\"", "🙂" * 40]),
    st.text(max_size=80),
    st.lists(st.sampled_from(["payload", "&", "=", "+", "%", "%2", "'", '"', "🙂", "名前", " "]), max_size=10).map(
        "".join
    ),
)


@st.composite
def slack_names(draw) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The name fields of a slash command, drawn (the ids stay fixed so the user is a known one)."""
    names = {k: draw(NAMES) for k in ("team_domain", "channel_name", "user_name")}
    if draw(st.booleans()):
        names.update(enterprise_id="E0001", enterprise_name=draw(NAMES))
    return names


def with_names(draw, payload: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Fill the interaction's team, user and enterprise the way Slack does, with drawn names."""
    user_name, domain = draw(NAMES), draw(NAMES)
    payload["team"] = {"id": TEAM, "domain": domain}
    payload["user"] = {"id": payload["user"]["id"], "username": user_name, "name": user_name, "team_id": TEAM}
    if draw(st.booleans()):
        ent = draw(NAMES)
        payload["enterprise"] = {"id": "E0001", "name": ent}
        payload["team"].update(enterprise_id="E0001", enterprise_name=ent)
    else:
        payload["enterprise"] = None
    payload["is_enterprise_install"] = False
    return payload


words = st.one_of(
    st.sampled_from(TRICKY_WORDS),
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=50, max_size=1500),
)


@st.composite
def command_texts(draw) -> str:  # type: ignore[no-untyped-def]
    how = draw(st.integers(0, 9))
    if how == 0:
        return draw(st.text(max_size=300))  # anything at all
    sub = draw(st.sampled_from([*SUBCOMMANDS, ""]))
    sub = draw(st.sampled_from([sub, sub.upper(), sub.title()]))
    rest = draw(st.lists(words, max_size=6))
    sep = draw(st.sampled_from([" ", "  ", "\t", "\n", " \u00a0"]))
    return sep.join([sub, *rest]) if rest else sub + draw(st.sampled_from(["", " ", "\n"]))


values = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "10",
            "99999",
            "1e9",
            "NaN",
            "101",
            "102",
            "999",
            VONAGE_KEY,
            APP1,
            APP2,
            "null",
            "[]",
            "{}",
            '{"p"',
            "\x00",
            "x" * 3000,
        ]
    ),
    st.text(max_size=40),
    st.builds(
        lambda p, k, a: json.dumps({"p": p, "k": k, "a": a}),
        st.sampled_from(["101", "102", "103", "999", "", "x"]),
        st.sampled_from([VONAGE_KEY, "nosuchkey", ""]),
        st.sampled_from([APP1, APP2, "Support Bot", "nope", ""]),
    ),
    st.builds(
        lambda d: json.dumps(d),
        st.dictionaries(
            st.sampled_from(["p", "k", "a", "x"]), st.one_of(st.none(), st.integers(), st.text(max_size=5))
        ),
    ),
)


def maybe_drop(draw, payload: dict[str, Any], optional: list[str]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    for key in optional:
        if draw(st.booleans()) and draw(st.booleans()):  # each optional field missing 1 time in 4
            payload.pop(key, None)
    return payload


@st.composite
def block_actions(draw, surface: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A block_actions payload as Slack sends it from `surface`, with random values."""
    user = draw(st.sampled_from(USERS))
    ids = {"message": MESSAGE_ACTIONS, "modal": MODAL_ACTIONS, "home": HOME_ACTIONS}[surface]
    action: dict[str, Any] = {
        "action_id": draw(st.sampled_from(ids)),
        "block_id": draw(st.text(max_size=10)),
        "type": draw(st.sampled_from(["button", "static_select"])),
        "action_ts": f"{time.time():.6f}",
    }
    if draw(st.integers(0, 5)):
        action["value"] = draw(values)
    if action["type"] == "static_select" and draw(st.booleans()):
        action["selected_option"] = {"text": {"type": "plain_text", "text": "x"}, "value": draw(values)}
    payload: dict[str, Any] = with_names(
        draw,
        {
            "type": "block_actions",
            "user": {"id": user},
            "api_app_id": "A0001",
            "token": "legacy-unused",
            "trigger_id": f"{draw(st.integers(1, 10**9))}.{time.time_ns()}.trigger",
            "actions": [action],
        },
    )
    if surface == "message":
        channel = draw(st.sampled_from(["C1", "CLINK", "D1", "G0123456"]))
        ts = "1700000000.000100"
        payload.update(
            {
                "container": {
                    "type": "message",
                    "message_ts": ts,
                    "channel_id": channel,
                    "is_ephemeral": draw(st.booleans()),
                },
                "channel": {"id": channel, "name": draw(NAMES)},
                "message": {**sp.message_object(ts=ts, team_id=TEAM), "text": draw(NAMES)},
                "response_url": "RESPONSE_URL",
                "state": {"values": {}},
            }
        )
        return maybe_drop(draw, payload, ["channel", "message", "state", "container"])
    # views: no response_url, the view itself comes along
    if surface == "modal":
        key = draw(st.one_of(st.none(), st.sampled_from([VONAGE_KEY, "nosuchkey", ""]), st.text(max_size=10)))
        page = draw(st.one_of(st.none(), st.sampled_from(["101", "102", "103", "999"]), st.text(max_size=10)))
        state = {
            "values": {
                "page": {
                    "page": {"type": "static_select", "selected_option": None if page is None else {"value": page}}
                },
                "key": {
                    "link_modal_key": {
                        "type": "static_select",
                        "selected_option": None if key is None else {"value": key},
                    }
                },
            }
        }
        meta = draw(st.sampled_from(["", json.dumps({"channel": "C9"}), json.dumps({"channel": None}), "{}"]))
        # a fresh view each time: a stale hash on a view fblink already updated is a separate finding
        # (test_slack_ingress.py::test_stale_modal_hash_is_not_an_unhandled_error)
        view = {
            **sp.view_object(
                view_id=f"V{time.time_ns()}{draw(st.integers(1, 999))}",
                team_id=TEAM,
                callback_id="link_modal",
                private_metadata=meta,
                title=draw(NAMES)[:24] or "x",
            ),
            "state": state,
        }
    else:
        view = sp.view_object(view_id="VHOME", team_id=TEAM, type="home")
    payload.update({"container": {"type": "view", "view_id": view["id"]}, "view": view})
    return maybe_drop(draw, payload, ["container"])


@st.composite
def view_submissions(draw) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    user = draw(st.sampled_from(USERS))
    callback = draw(st.sampled_from(VIEWS))
    opt = lambda v: st.one_of(st.none(), st.just({}), st.builds(lambda x: {"value": x}, v))
    text_in = lambda v: st.one_of(st.just({}), st.builds(lambda x: {"type": "plain_text_input", "value": x}, v))
    some = st.one_of(values, st.sampled_from(["101", "102", "103", VONAGE_KEY, "second99", APP1, APP2]))
    if callback == "link_modal":
        blocks_ = {
            "page": {"page": {"type": "static_select", "selected_option": draw(opt(some))}},
            "key": {"link_modal_key": {"type": "static_select", "selected_option": draw(opt(some))}},
            "app": {"app": {"type": "static_select", "selected_option": draw(opt(some))}},
        }
        meta = draw(
            st.one_of(
                st.sampled_from(["", "{}", json.dumps({"channel": "C9"}), json.dumps({"channel": None})]),
                st.builds(lambda c: json.dumps({"channel": c}), st.text(max_size=12)),
            )
        )
    else:
        blocks_ = {
            "api_key": {"api_key": draw(text_in(st.one_of(st.none(), some, st.text(max_size=50))))},
            "api_secret": {"api_secret": draw(text_in(st.one_of(st.none(), st.text(max_size=50))))},
        }
        meta = ""
    blocks_ = {k: v for k, v in blocks_.items() if draw(st.integers(0, 4))}  # a block sometimes missing
    view = sp.view_object(
        view_id=f"V{draw(st.integers(1, 10**6))}",
        team_id=TEAM,
        callback_id=callback,
        private_metadata=meta,
        state_values=blocks_,
        hash=draw(st.text(max_size=8)) or None,
    )
    return with_names(
        draw,
        {
            "type": "view_submission",
            "user": {"id": user},
            "api_app_id": "A0001",
            "token": "legacy-unused",
            "trigger_id": f"{time.time_ns()}.trigger",
            "view": view,
            "response_urls": [],
        },
    )


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_any = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def fill_response_url(payload: Any, bot) -> Any:  # type: ignore[no-untyped-def]
    if isinstance(payload, dict) and payload.get("response_url") == "RESPONSE_URL":
        payload["response_url"] = bot.slack.response_url("prop")
    return payload
