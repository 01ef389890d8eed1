"""The status page in one statement, and the linkers' permissions it judges links by (a part of the Store).

A status page shows a page of links, the workspace's total, each linker's granted permissions
(a link whose linker lost ``pages_messaging`` is broken) and which of the Pages the viewer may
re-link. Read as four statements, each cost about 0.3 ms of client CPU on PostgreSQL on the ack
path; here they are one: the page is limited first, then joined to its linkers' logins and the
viewer's Pages by primary key, and the total is an uncorrelated subquery on the
``(team_id, expires_at)`` index. No token is decrypted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.store.engine import Dialect, Params, Row
from bot.store.models import Link

LINKABLE_TASKS = frozenset({"MESSAGING", "MANAGE"})  # a Page task that lets its person link it


@dataclass(frozen=True)
class StatusPage:
    """One page of a workspace's links, with what the status view judges them by."""

    links: list[Link]
    total: int
    linker_scopes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # linkers with a login
    viewer_linkable: set[str] = field(default_factory=set)  # Page ids the viewer could re-link


class StatusRows:
    """The status page read; the Store supplies the statements."""

    @property
    def dialect(self) -> Dialect:
        raise NotImplementedError

    async def select(self, sql: str, params: Params = ()) -> list[Row]:
        raise NotImplementedError

    async def count_links(self, team_id: str) -> int:
        raise NotImplementedError

    async def execute(self, sql: str, params: Params = ()) -> int:
        raise NotImplementedError

    async def record_granted_scopes(
        self, team_id: str, user_id: str, fb_user_id: str, scopes: Sequence[str], *, now: int
    ) -> bool:
        """What Facebook grants this Slack user's login now, as a token of it told the daily probe
        (a permission removed in Facebook's settings since the login). Only the login of that very
        Facebook account changes; True when its stored permissions changed."""
        stored = json.dumps(list(scopes))
        n = await self.execute(
            "UPDATE fb_users SET scopes = ?, updated_at = ? WHERE team_id = ? AND user_id = ? AND fb_user_id = ?"
            " AND scopes != ?",
            [stored, now, team_id, user_id, fb_user_id, stored],
        )
        return n == 1

    async def status_page(self, team_id: str, viewer: str, *, limit: int, offset: int = 0) -> StatusPage:
        """Links ``offset``..``offset+limit`` soonest expiry first (unknown last), in one statement."""

        def order(t: str) -> str:
            return f"{t}expires_at IS NULL, {t}expires_at, " + self.dialect.nocase(f"{t}page_name")

        rows = await self.select(
            "SELECT l.*, t.total_links, u.scopes AS linker_scopes, p.tasks AS viewer_tasks,"
            " p.no_token_reason AS viewer_no_token, p.page_id AS viewer_page"
            f" FROM (SELECT * FROM links WHERE team_id = ? ORDER BY {order('')} LIMIT ? OFFSET ?) l"
            " CROSS JOIN (SELECT COUNT(*) AS total_links FROM links WHERE team_id = ?) t"
            " LEFT JOIN fb_users u ON u.team_id = l.team_id AND u.user_id = l.linked_by"
            " LEFT JOIN fb_pages p ON p.team_id = l.team_id AND p.user_id = ? AND p.page_id = l.page_id"
            f" ORDER BY {order('l.')}",
            [team_id, limit, max(0, offset), team_id, viewer],
        )
        if not rows:  # past the end (or none): the total still counts
            return StatusPage([], await self.count_links(team_id))
        scopes = {r["linked_by"]: tuple(json.loads(r["linker_scopes"])) for r in rows if r["linker_scopes"]}
        linkable = {
            r["page_id"]
            for r in rows
            if r["viewer_page"] is not None
            and r["viewer_no_token"] is None
            and LINKABLE_TASKS & set(json.loads(r["viewer_tasks"] or "[]"))
        }
        return StatusPage([Link.from_row(r) for r in rows], int(rows[0]["total_links"]), scopes, linkable)
