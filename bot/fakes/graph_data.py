"""Graph wire-format pieces shared by the fake Graph's edges: cursor paging and hostile data.

Paging follows Meta's "Paginated Results" guide: ``paging.cursors.before/after``,
``next`` and ``previous`` URLs that repeat the request's query (``access_token``,
``fields``, ``limit``) with the cursor, and no ``next`` on the last page. Graph
never copies ``appsecret_proof`` into those URLs, so neither do we.

Names are hostile on purpose: the words and characters that broke form parsing,
URL building and Slack mrkdwn before (``payload``, ``&``, ``=``, ``+``, ``%``,
quotes, ``<>``, emoji, right-to-left and CJK scripts, 80-character names).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bot.fakes.base import Request, Response

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
# Query parameters Graph leaves out of paging URLs.
NOT_IN_PAGING_URLS = ("after", "before", "appsecret_proof", "appsecret_time")

HOSTILE_NAMES: tuple[str, ...] = (
    "payload-pros & Co",
    'Café = Crème + 100% "Bio"',
    "Happy App Store",
    "O'Brien's <Pub> #general",
    "☕ Kaffee & Kuchen 🍰",
    "مقهى الصباح",
    "東京ラーメン横丁",
    "Łódź Ćwiczenia — payload=1&x=2",
    "https://evil.example/?a=b&c=%20",
    "P" * 40 + "ä" * 40,  # 80 characters, multi-byte
)

DEAD_MESSAGES = {
    458: "Error validating access token: The user has not authorized application {app_id}.",
    460: (
        "Error validating access token: The session has been invalidated because the user changed "
        "their password or Facebook has changed the session for security reasons."
    ),
    463: "Error validating access token: Session has expired.",
    467: "Error validating access token: The access token is invalid.",
    492: "Error validating access token: The user is not an admin of this Page any more.",
}


@dataclass
class FakeUser:
    id: str
    name: str
    pages: list[dict[str, Any]]
    declined: frozenset[str]
    data_access_expires_at: int | None
    businesses: list[dict[str, Any]]  # {"id", "name", "owned_pages": [...], "client_pages": [...]}


@dataclass
class FakeToken:
    value: str
    kind: str  # "USER" or "PAGE"
    user_id: str
    page_id: str | None
    issued_at: int
    expires_at: int  # 0: never
    dead_subcode: int | None = None


@dataclass
class FakeCode:
    user_id: str
    issued_at: int
    used: bool = False


UNSUPPORTED_GET = (
    "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing "
    "permissions, or does not support this operation. Please read the Graph API documentation at "
    "https://developers.facebook.com/docs/graph-api"
)

# category name -> category id, as Graph's category_list reports them
CATEGORIES: dict[str, str] = {
    "Retail": "2201",
    "Coffee shop": "128673187201735",
    "Restaurant": "273819889375819",
    "Business": "2233",
    "Local business": "2500",
}


def hostile_pages(
    n: int,
    *,
    prefix: str = "7",
    tasks: Sequence[str] = ("ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"),
) -> list[dict[str, Any]]:
    """``n`` Page specs for ``FakeGraph.add_user``, cycling through the hostile names."""
    out = []
    for i in range(n):
        base = HOSTILE_NAMES[i % len(HOSTILE_NAMES)]
        name = base if i < len(HOSTILE_NAMES) else f"{base} #{i}"
        out.append(
            {
                "id": f"{prefix}{i:014d}",
                "name": name[:80],
                "category": list(CATEGORIES)[i % len(CATEGORIES)],
                "tasks": list(tasks),
            }
        )
    return out


def category_list(category: str) -> list[dict[str, str]]:
    return [{"id": CATEGORIES.get(category, "2233"), "name": category}]


def cursor(index: int) -> str:
    """Opaque to the client, like Graph's base64 cursors."""
    return base64.urlsafe_b64encode(f"idx:{index}".encode()).decode()


def decode_cursor(value: str) -> int | None:
    try:
        return int(base64.urlsafe_b64decode(value.encode()).decode().removeprefix("idx:"))
    except (ValueError, UnicodeDecodeError):
        return None


def page_of(
    request: Request,
    base_url: str,
    items: Sequence[Any],
    render: Callable[[Any], dict[str, Any]],
    error: Callable[[str], Response],
) -> Response:
    """One page of an edge, with Graph's cursor paging (``before`` / ``after`` / ``limit``)."""
    params = request.query
    try:
        limit = int(params.get("limit", str(DEFAULT_LIMIT)))
    except ValueError:
        return error("(#100) Param limit must be a number")
    if limit < 1:
        return error("(#100) Param limit must be a positive number")
    limit = min(limit, MAX_LIMIT)
    if params.get("after"):
        after = decode_cursor(params["after"])
        if after is None:
            return error("(#100) Invalid cursor")
        start = after + 1
    elif params.get("before"):
        before = decode_cursor(params["before"])
        if before is None:
            return error("(#100) Invalid cursor")
        start = max(0, before - limit)
        limit = min(limit, before - start)
    else:
        start = 0
    chunk = list(items[start : start + limit])
    body: dict[str, Any] = {"data": [render(item) for item in chunk]}
    if chunk:
        first, last = start, start + len(chunk) - 1
        paging: dict[str, Any] = {"cursors": {"before": cursor(first), "after": cursor(last)}}
        query = {k: v for k, v in params.items() if k not in NOT_IN_PAGING_URLS}
        query.setdefault("limit", str(limit))
        url = f"{base_url}{request.path}"
        if start > 0:
            paging["previous"] = f"{url}?{urlencode({**query, 'before': cursor(first)})}"
        if last + 1 < len(items):
            paging["next"] = f"{url}?{urlencode({**query, 'after': cursor(last)})}"
        body["paging"] = paging
    return Response(200, body)


def select(node: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """Graph returns only the fields asked for that the node has (``id`` always)."""
    out = {"id": node["id"]} if "id" in node else {}
    out.update({k: node[k] for k in fields if k in node})
    return out


def split_fields(value: str | None) -> list[str]:
    return [f.strip() for f in (value or "").split(",") if f.strip()]


def page_spec(page: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(page["id"]),
        "name": page["name"],
        "category": page.get("category", "Business"),
        "tasks": list(page.get("tasks", ["MANAGE"])),
    }


def error_response(
    status: int, message: str, code: int, *, subcode: int | None = None, type: str = "OAuthException"
) -> Response:
    """Graph's error object: ``message``, ``type``, ``code``, ``error_subcode``, ``fbtrace_id``."""
    error: dict[str, Any] = {"message": message, "type": type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "Afake" + secrets.token_hex(6)
    return Response(status, {"error": error})


def granular_scopes(scopes: list[str], user: FakeUser) -> list[dict[str, Any]]:
    """debug_token's ``granular_scopes``: Page and business permissions name their targets."""
    pages = [p["id"] for p in user.pages]
    targets = {
        "pages_show_list": pages,
        "pages_messaging": pages,
        "pages_manage_metadata": pages,
        "business_management": [b["id"] for b in user.businesses],
    }
    return [
        {"scope": s, "target_ids": targets[s]} if s in targets else {"scope": s}
        for s in scopes
        if s != "public_profile"
    ]
