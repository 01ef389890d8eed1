"""Every Page the user can link: Graph paging as Graph does it, and Business Portfolio Pages.

All against a real FakeGraph on 127.0.0.1 whose ``paging.next`` URLs, like Graph's, carry
``access_token``, the cursor, ``limit`` and ``fields`` but never ``appsecret_proof``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bot.fakes.graph import FakeGraph
from bot.fakes.graph_data import HOSTILE_NAMES, hostile_pages
from bot.graph import GraphClient, GraphError, Page
from bot.http import RetryPolicy

VERSION = "v25.0"
ACCOUNTS = f"/{VERSION}/me/accounts"
FAST = RetryPolicy(attempts=2, total_timeout=10.0, wait_initial=0.01, wait_max=0.02, wait_jitter=0, read_timeout=5.0)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGraph]:
    fake = FakeGraph(api_version=VERSION)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def graph(server: FakeGraph) -> FakeGraph:
    server.reset()
    server.require_appsecret_proof = True
    return server


def list_pages(graph: FakeGraph, token: str, scopes: Any = None) -> list[Page]:
    async def main() -> list[Page]:
        async with httpx.AsyncClient() as http:
            client = GraphClient(
                http,
                graph_url=graph.url,
                login_url="https://www.facebook.example",
                api_version=VERSION,
                app_id=graph.app_id,
                app_secret=graph.app_secret,
                redirect_uri="https://x.example/cb",
                policy=FAST,
            )
            return await (client.pages(token) if scopes is None else client.pages(token, scopes))

    return asyncio.run(main())


def raw_get(graph: FakeGraph, path_or_url: str, **params: str) -> httpx.Response:
    url = path_or_url if path_or_url.startswith("http") else f"{graph.url}/{VERSION}/{path_or_url}"
    return httpx.get(url, params=params or None, timeout=5)


def query(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


# -- the fake pages like Graph --------------------------------------------------------


def test_fake_accounts_default_limit_fields_and_paging_urls(graph: FakeGraph) -> None:
    graph.add_user("1", "Ada", pages=hostile_pages(30))
    token = graph.user_token("1")
    first = raw_get(graph, "me/accounts", access_token=token, appsecret_proof=graph.appsecret_proof(token)).json()

    assert len(first["data"]) == 25  # Graph's default limit
    page = first["data"][0]
    assert set(page) == {"access_token", "category", "category_list", "name", "id", "tasks"}
    assert page["name"] == HOSTILE_NAMES[0] and page["category_list"][0]["name"] == page["category"]
    paging = first["paging"]
    assert set(paging["cursors"]) == {"before", "after"} and "previous" not in paging
    nxt = query(paging["next"])
    assert nxt["access_token"] == token and nxt["limit"] == "25" and nxt["after"] == paging["cursors"]["after"]
    assert "appsecret_proof" not in nxt

    # Require App Secret on: the bare `next` fails the way Graph fails ...
    bare = raw_get(graph, paging["next"])
    assert bare.status_code == 400
    assert bare.json()["error"]["code"] == 100 and "appsecret_proof" in bare.json()["error"]["message"]
    # ... and works with the proof added.
    last = raw_get(graph, paging["next"], **nxt, appsecret_proof=graph.appsecret_proof(token)).json()
    assert len(last["data"]) == 5 and "next" not in last["paging"]
    prev = query(last["paging"]["previous"])
    assert "before" in prev and "appsecret_proof" not in prev


def test_fake_keeps_fields_in_next_and_answers_missing_token_like_graph(graph: FakeGraph) -> None:
    graph.add_user("1", "Ada", pages=hostile_pages(3))
    graph.require_appsecret_proof = False
    token = graph.user_token("1")
    body = raw_get(graph, "me/accounts", access_token=token, fields="id,name", limit="2").json()
    assert [set(p) for p in body["data"]] == [{"id", "name"}] * 2
    assert query(body["paging"]["next"])["fields"] == "id,name"

    no_token = raw_get(graph, "me/accounts", after=body["paging"]["cursors"]["after"], limit="2")
    assert no_token.status_code == 400
    assert no_token.json()["error"]["code"] == 2500 and no_token.json()["error"]["type"] == "OAuthException"
    bad_cursor = raw_get(graph, "me/accounts", access_token=token, after="%%%")
    assert bad_cursor.json()["error"]["code"] == 100


@pytest.mark.parametrize("n", [1, 100, 101, 1000])
def test_lists_every_page_when_next_lacks_appsecret_proof(graph: FakeGraph, n: int) -> None:
    graph.add_user("1", "Ada", pages=hostile_pages(n))
    token = graph.user_token("1")

    pages = list_pages(graph, token, ["pages_show_list"])

    assert [p.id for p in pages] == [p["id"] for p in graph.users["1"].pages]
    assert len({p.access_token for p in pages}) == n
    assert pages[0].name == HOSTILE_NAMES[0]
    calls = graph.calls("GET", ACCOUNTS)
    assert len(calls) == -(-n // 100)
    for call in calls[1:]:  # every follow-up kept the cursor, fields and token, and added the proof
        assert call.query["after"] and call.query["fields"] == "id,name,category,tasks,access_token"
        assert call.query["appsecret_proof"] == graph.appsecret_proof(token)


def test_second_page_is_not_a_dead_login(graph: FakeGraph) -> None:
    """The old bug: params= replaced next's query, Graph refused the bare call, and fblink
    told the user their login had expired. Fails on the old GraphClient.pages."""
    graph.add_user("1", "Ada", pages=hostile_pages(101))
    token = graph.user_token("1")
    try:
        pages = list_pages(graph, token)
    except GraphError as exc:  # pragma: no cover - the old behaviour
        pytest.fail(f"listing Pages failed ({exc}); token_dead={exc.token_dead}")
    assert len(pages) == 101
    assert all(c.query.get("access_token") == token for c in graph.calls("GET", ACCOUNTS))


def test_without_require_app_secret_proof_is_still_sent(graph: FakeGraph) -> None:
    graph.require_appsecret_proof = False
    graph.add_user("1", "Ada", pages=hostile_pages(150))
    token = graph.user_token("1")
    assert len(list_pages(graph, token)) == 150
    assert all("appsecret_proof" in c.query for c in graph.calls("GET", ACCOUNTS))


# -- Business Portfolio Pages ------------------------------------------------------------

BIZ_TASKS = ["MANAGE", "MESSAGING"]


def business(
    bid: str, name: str, owned: list[dict[str, Any]] = (), client: list[dict[str, Any]] = ()
) -> dict[str, Any]:  # type: ignore[assignment]
    return {"id": bid, "name": name, "owned_pages": list(owned), "client_pages": list(client)}


def test_personal_pages_only(graph: FakeGraph) -> None:
    graph.add_user("1", "Ada", pages=hostile_pages(3))
    pages = list_pages(graph, graph.user_token("1"), ["pages_show_list", "business_management"])
    assert len(pages) == 3 and all(p.business_name is None and p.access_token for p in pages)
    assert len(graph.calls("GET", f"/{VERSION}/me/businesses")) == 1


def test_business_pages_only_across_paged_businesses(graph: FakeGraph) -> None:
    bizs = [
        business(f"88{i}", f"Portfolio {HOSTILE_NAMES[i % 10]}", owned=hostile_pages(2, prefix=f"5{i}"))
        for i in range(30)
    ]
    bizs[0]["client_pages"] = hostile_pages(120, prefix="6")  # a client list that needs two pages
    graph.add_user("1", "Ada", businesses=bizs)

    pages = list_pages(graph, graph.user_token("1"), ["pages_show_list", "business_management"])

    assert len(pages) == 30 * 2 + 120
    by_id = {p.id: p for p in pages}
    assert by_id[hostile_pages(1, prefix="6")[0]["id"]].business_name == f"Portfolio {HOSTILE_NAMES[0]}"
    assert by_id[hostile_pages(1, prefix="529")[0]["id"]].business_id == "8829"
    assert all(p.access_token for p in pages)
    assert len(graph.calls("GET", f"/{VERSION}/me/businesses")) == 1  # limit=100 covers 30
    assert len(graph.calls("GET", f"/{VERSION}/880/client_pages")) == 2


def test_personal_and_business_pages_and_the_same_page_through_both(graph: FakeGraph) -> None:
    shared = {"id": "4242", "name": "payload & Partners = 100%", "category": "Retail", "tasks": BIZ_TASKS}
    graph.add_user(
        "1",
        "Ada",
        pages=[shared, *hostile_pages(2, prefix="1")],
        businesses=[business("77", "Ünïcode Holdings 🏢", owned=[shared, *hostile_pages(2, prefix="2")])],
    )
    token = graph.user_token("1")

    pages = list_pages(graph, token, ["pages_show_list", "business_management"])

    assert len(pages) == 5 and len({p.id for p in pages}) == 5
    same = next(p for p in pages if p.id == "4242")
    # keeps the /me/accounts token and records the business
    accounts = raw_get(graph, "me/accounts", access_token=token, appsecret_proof=graph.appsecret_proof(token)).json()
    assert same.access_token == next(p["access_token"] for p in accounts["data"] if p["id"] == "4242")
    assert (same.business_id, same.business_name) == ("77", "Ünïcode Holdings 🏢")
    assert sum(1 for p in pages if p.business_name is None) == 2


def test_business_page_without_token_is_kept_with_a_reason(graph: FakeGraph) -> None:
    graph.add_user(
        "1",
        "Ada",
        businesses=[
            business(
                "77",
                "Acme Group",
                owned=[
                    {"id": "31", "name": "Seen, no task", "category": "Retail", "tasks": []},
                    {"id": "32", "name": "Messaging", "category": "Retail", "tasks": BIZ_TASKS},
                ],
            )
        ],
    )
    token = graph.user_token("1")
    raw = raw_get(
        graph,
        "77/owned_pages",
        access_token=token,
        appsecret_proof=graph.appsecret_proof(token),
        fields="id,name,access_token,tasks",
    ).json()
    assert "access_token" not in raw["data"][0] and raw["data"][0]["tasks"] == []

    pages = {p.id: p for p in list_pages(graph, token, ["business_management"])}

    assert pages["31"].access_token == "" and "Acme Group" in (pages["31"].no_token_reason or "")
    assert pages["32"].access_token and pages["32"].no_token_reason is None


def test_without_business_management_businesses_are_skipped(graph: FakeGraph) -> None:
    graph.add_user(
        "1",
        "Ada",
        pages=hostile_pages(2),
        declined=["business_management"],
        businesses=[business("77", "Acme", owned=hostile_pages(2, prefix="2"))],
    )
    token = graph.user_token("1")
    # the fake refuses the edge the way Graph does
    refused = raw_get(graph, "me/businesses", access_token=token, appsecret_proof=graph.appsecret_proof(token))
    assert refused.json()["error"]["code"] == 200

    assert len(list_pages(graph, token, ["pages_show_list"])) == 2
    assert len(graph.calls("GET", f"/{VERSION}/me/businesses")) == 1  # only the raw call above: not granted, not asked
    graph.reset_log()
    assert len(list_pages(graph, token, None)) == 2  # scopes unknown: tried, refused, skipped
    assert len(graph.calls("GET", f"/{VERSION}/77/owned_pages")) == 0


def test_unreadable_business_does_not_hide_the_others(graph: FakeGraph) -> None:
    graph.add_user(
        "1",
        "Ada",
        businesses=[
            business("77", "A", owned=hostile_pages(1, prefix="2")),
            business("78", "B", owned=hostile_pages(1, prefix="3")),
        ],
    )
    token = graph.user_token("1")
    graph.fail(
        f"GET /{VERSION}/77/owned_pages",
        times=5,
        status=400,
        body={
            "error": {
                "message": "(#10) Application does not have permission for this action",
                "type": "OAuthException",
                "code": 10,
            }
        },
    )
    pages = list_pages(graph, token, ["business_management"])
    assert [p.business_id for p in pages] == ["78"]


def test_dead_token_in_business_paging_is_a_dead_login(graph: FakeGraph) -> None:
    graph.add_user("1", "Ada", businesses=[business("77", "A", owned=hostile_pages(1))])
    token = graph.user_token("1")
    graph.fail(
        f"GET /{VERSION}/77/owned_pages",
        times=1,
        status=400,
        body={
            "error": {
                "message": "Error validating access token: Session has expired.",
                "type": "OAuthException",
                "code": 190,
                "error_subcode": 463,
            }
        },
    )
    with pytest.raises(GraphError) as excinfo:
        list_pages(graph, token, ["business_management"])
    assert excinfo.value.token_dead


def test_fake_debug_token_and_me_send_graphs_fields(graph: FakeGraph) -> None:
    graph.add_user("1", "Ada", pages=hostile_pages(2), businesses=[business("77", "A")])
    token = graph.user_token("1")
    data = raw_get(graph, "debug_token", input_token=token, access_token=f"{graph.app_id}|{graph.app_secret}").json()[
        "data"
    ]
    assert set(data) == {
        "app_id",
        "type",
        "application",
        "data_access_expires_at",
        "expires_at",
        "is_valid",
        "issued_at",
        "scopes",
        "granular_scopes",
        "user_id",
    }
    granular = {g["scope"]: g.get("target_ids") for g in data["granular_scopes"]}
    assert granular["pages_show_list"] == [p["id"] for p in graph.users["1"].pages]
    assert granular["business_management"] == ["77"]
    me = raw_get(graph, "me", access_token=token, appsecret_proof=graph.appsecret_proof(token), fields="id,name").json()
    assert me == {"id": "1", "name": "Ada"}
