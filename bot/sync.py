"""Sync: make fblink's link records match what Vonage holds, Page by Page, under each Page's lease.

Accounts made in the Vonage dashboard are imported (expiry unknown until re-linked), accounts
deleted there mark their links gone, and application changes made there are recorded. A Page
that comes back after being gone starts afresh: nothing fblink knew about the old link is true.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bot.services import Services
from bot.vonage import ExternalAccount


@dataclass
class SyncReport:
    """What a sync changed: imported (or back from gone), marked gone, application changed in the
    dashboard, and Pages skipped because a change to them was running."""

    imported: list[str]
    gone: list[str]
    apps_changed: list[str]
    busy: list[str]


async def _sync_page(
    services: Services,
    team_id: str,
    api_key: str,
    page_id: str,
    acct: ExternalAccount | None,
    names: dict[str, str],
    report: SyncReport,
) -> None:
    """Make one Page's record match Vonage (``acct`` None: the key has no account for it)."""
    store, now = services.store, services.now()
    link = await store.get_link(team_id, page_id)
    if acct is None:
        if link is not None and link.api_key == api_key and link.status == "active":
            await store.upsert_link(team_id, page_id, now=now, status="gone", next_due_at=None)
            report.gone.append(link.page_name)
            await store.audit(team_id, "sync_gone", now=now, user_id=None, page_id=page_id, detail=f"key {api_key}")
        return
    app_id = acct.application
    app_name = names.get(app_id) if app_id else None
    if link is None or link.status == "gone":
        # (back) from the dashboard: nothing fblink knew about the old link is true any more
        fresh: dict[str, Any] = dict(
            page_name=acct.name or page_id,
            api_key=api_key,
            application_id=app_id,
            application_name=app_name,
            linked_by=None,
            channel_id=None,
            reminder_channel=None,
            expires_at=None,
            status="active",
            needs_relink=1,
            next_due_at=None,
            broken_at=None,
            breakages=0,
            muted=0,
            token_enc=None,
            checked_at=now,
        )
        if link is not None:
            fresh.update(linked_at=now, period=link.period + 1)
        await store.upsert_link(team_id, page_id, now=now, **fresh)
        report.imported.append(acct.name or page_id)
        await store.audit(
            team_id,
            "sync_import",
            now=now,
            user_id=None,
            page_id=page_id,
            detail=f"key {api_key}" + (f" app {app_id}" if app_id else ""),
        )
    elif link.api_key == api_key and link.application_id != app_id:
        await store.upsert_link(team_id, page_id, now=now, application_id=app_id, application_name=app_name)
        report.apps_changed.append(link.page_name)
        await store.audit(
            team_id, "sync_app", now=now, user_id=None, page_id=page_id, detail=f"app {link.application_id} -> {app_id}"
        )


async def sync(services: Services, team_id: str) -> SyncReport:
    """Reconcile with Vonage: import dashboard-made links, mark deleted ones gone, take the
    dashboard's application changes. Each Page is written under its lease; a Page whose lease
    another change holds is skipped (and reported) rather than overwritten mid-change."""
    report = SyncReport([], [], [], [])
    owner = f"{services.owner}:sync"
    for api_key in await services.api_keys(team_id):
        creds = await services.credentials(team_id, api_key)
        if creds is None:
            continue
        accounts, apps = await asyncio.gather(
            services.vonage.list_accounts(creds), services.vonage.list_applications(creds)
        )
        names = {a.id: a.name for a in apps}
        at_vonage: dict[str, ExternalAccount | None] = {a.external_id: a for a in accounts}
        tracked = {
            lk.page_id: lk.page_name
            for lk in await services.store.list_links(team_id)
            if lk.api_key == api_key and lk.status == "active"
        }
        for page_id in tracked:
            at_vonage.setdefault(page_id, None)
        for page_id, acct in at_vonage.items():
            if not await services.store.acquire_lease(team_id, page_id, owner, now=services.now(), ttl=60):
                report.busy.append(tracked.get(page_id) or (acct.name if acct else None) or page_id)
                continue
            try:
                await _sync_page(services, team_id, api_key, page_id, acct, names, report)
            finally:
                await services.store.release_lease(team_id, page_id, owner)
    return report
