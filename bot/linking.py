"""Link operations: the rules of linking a Page to Vonage, independent of Slack.

Each operation talks to Vonage first and writes the database only after Vonage
said yes, so a failure leaves the stored state as it was. A two-step link whose
second step fails undoes the first step at Vonage. Every attempt is audited.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from bot import blocks
from bot.clock import DAY
from bot.link_errors import AppConflict, Busy, LinkRefused, PartialChange
from bot.page_fence import before_destroying, busy, fenced, recorded_since
from bot.services import Services
from bot.store import Link, StoredPage, next_threshold_due
from bot.vonage import Application, Credentials, VonageConflict, VonageError, VonageNotFound

__all__ = [
    "AppConflict",
    "Busy",
    "LinkRefused",
    "PartialChange",
    "link_account",
    "link_application",
    "relink",
    "unlink",
]

log = logging.getLogger(__name__)


async def expiry_for(services: Services, team_id: str, user_id: str, now: int) -> int:
    """Link time + TTL, or the user's Facebook data-access expiry when that comes first."""
    expires = now + services.settings.fblink_link_ttl_days * DAY
    login = await services.store.get_login(team_id, user_id)
    if login and login.data_access_expires_at and login.data_access_expires_at > now:
        expires = min(expires, login.data_access_expires_at)
    return expires


def next_due(expires_at: int | None, thresholds: tuple[int, ...]) -> int | None:
    """When the first reminder of a period falls due (the largest threshold)."""
    if expires_at is None:
        return None
    return next_threshold_due(expires_at, thresholds, None)[1]


async def resolve_application(services: Services, creds: Credentials, wanted: str) -> Application:
    """An application of this key by id or exact (case-insensitive) name, messages-capable only."""
    apps = await services.vonage.list_applications(creds)
    wanted_l = wanted.strip().lower()
    match = [a for a in apps if a.id == wanted.strip()] or [a for a in apps if a.name.lower() == wanted_l]
    if not match:
        raise LinkRefused(
            f"API key `{blocks.escape(creds.api_key)}` has no application called "
            f"“{blocks.escape(wanted)}”. Check the name or id in the Vonage dashboard."
        )
    app = match[0]
    if not app.messages_capable:
        raise LinkRefused(
            f"Application *{blocks.escape(app.name or app.id)}* has no Messages capability, so it cannot receive "
            "Messenger traffic. Enable Messages on it in the Vonage dashboard, or pick another application."
        )
    return app


async def _audit(
    services: Services, team_id: str, action: str, user_id: str | None, page_id: str, detail: str, result: str
) -> None:
    await services.store.audit(
        team_id, action, now=services.now(), user_id=user_id, page_id=page_id, detail=detail, result=result
    )


async def _put_account(
    services: Services, team_id: str, creds: Credentials, page: StoredPage, *, exists: bool, before: Link | None
) -> bool:
    """Create the Page's account at Vonage, or refresh its token there; True when it was created.

    Only an account this call set out to create, and that no other process has recorded
    since ``before`` was read, is ever deleted again: when the create's answer is lost
    (Vonage busy after the write may have landed), the account is removed so "nothing
    was changed" stays true.
    """
    vonage = services.vonage
    if exists:
        await vonage.update_account(creds, page.page_id, access_token=page.token, name=page.name)
        return False
    try:
        await vonage.link_account(creds, page_id=page.page_id, access_token=page.token, name=page.name)
        return True
    except VonageConflict:  # it appeared meanwhile: refresh it instead, unless another process owns it now
        if await recorded_since(services, team_id, page.page_id, creds.api_key, before):
            raise busy(page.name) from None
        await vonage.update_account(creds, page.page_id, access_token=page.token, name=page.name)
        return False
    except VonageError:
        raise  # a definite refusal: nothing was created
    except Exception:
        if await recorded_since(services, team_id, page.page_id, creds.api_key, before):
            raise busy(page.name) from None
        if not await _undo(
            vonage.unlink_account(creds, page.page_id), "remove an account whose creation went unanswered"
        ):
            raise PartialChange(
                f"Vonage stopped answering while fblink was adding *{blocks.escape(page.name)}*; the Page may now "
                "exist at Vonage without fblink tracking it. Run `/fblink sync` when Vonage is back."
            ) from None
        raise


async def _reattach(
    services: Services, team_id: str, user_id: str, creds: Credentials, page: StoredPage, old: Link | None
) -> Application | None:
    """Vonage had lost the Page's account and we re-created it bare: give it back the application
    fblink had recorded. None (and an audit row) when there was none or it could not be re-attached,
    so the record says what Vonage holds."""
    if old is None or old.status != "active" or not old.application_id:
        return None
    app = Application(old.application_id, old.application_name or old.application_id, frozenset({"messages"}))
    try:
        await services.vonage.link_application(creds, page.page_id, app.id)
    except Exception as exc:
        log.warning("could not re-attach application to a re-created account: %s", type(exc).__name__)
        await _audit(
            services, team_id, "reattach_app", user_id, page.page_id, f"app {app.id}", f"error: {type(exc).__name__}"
        )
        return None
    await _audit(services, team_id, "reattach_app", user_id, page.page_id, f"app {app.id}", "ok")
    return app


async def _record_link(
    services: Services,
    team_id: str,
    user_id: str,
    page: StoredPage,
    creds: Credentials,
    channel_id: str | None,
    *,
    application: Application | None,
) -> Link:
    """Record a link that starts a new period: the token Vonage holds was just renewed."""
    now = services.now()
    expires = await expiry_for(services, team_id, user_id, now)
    fields: dict[str, Any] = dict(
        page_name=page.name,
        api_key=creds.api_key,
        linked_by=user_id,
        linked_at=now,
        channel_id=channel_id,
        expires_at=expires,
        status="active",
        needs_relink=0,
        broken_at=None,
        checked_at=now,
        next_due_at=next_due(expires, services.settings.reminder_days),
        page_token=page.token,
    )
    # the application Vonage holds now: the caller read or set it
    fields.update(
        application_id=application.id if application else None,
        application_name=application.name if application else None,
    )
    async with fenced(services, team_id, page.page_id, page.name):
        existing = await services.store.get_link(team_id, page.page_id)
        if existing is not None:
            fields["period"] = existing.period + 1
        return await services.store.upsert_link(team_id, page.page_id, now=now, **fields)


async def check_may_link(services: Services, team_id: str, page: StoredPage, creds: Credentials) -> Link | None:
    """The user manages the Page, and it is not linked under another key. Returns the current link."""
    if not page.can_link:
        raise LinkRefused(f"You need the MESSAGING or MANAGE task on *{blocks.escape(page.name)}* to link it.")
    existing = await services.store.get_link(team_id, page.page_id)
    if existing and existing.status == "active" and existing.api_key != creds.api_key:
        raise LinkRefused(
            f"*{blocks.escape(page.name)}* is already linked to API key `{blocks.escape(existing.api_key)}`. "
            f"Unlink it there first (`/fblink unlink {blocks.escape(page.page_id)}`)."
        )
    return existing


async def link_account(
    services: Services, team_id: str, user_id: str, page: StoredPage, creds: Credentials, channel_id: str | None
) -> Link:
    """Part 1: the Page joins the Vonage account (or gets a fresh token there)."""
    existing = await check_may_link(services, team_id, page, creds)
    reattached: Application | None = None
    try:
        account = await services.vonage.get_account(creds, page.page_id)
        created = await _put_account(services, team_id, creds, page, exists=account is not None, before=existing)
        if created:  # deleted at Vonage (or never there): the application we recorded must come back too
            reattached = await _reattach(services, team_id, user_id, creds, page, existing)
        elif account is None:  # it appeared meanwhile (409) and got our token: read what it holds
            account = await services.vonage.get_account(creds, page.page_id)
        # record the application Vonage holds, whatever we thought before
        application = reattached if account is None else await _held_app(services, creds, account.application, existing)
        link = await _record_link(services, team_id, user_id, page, creds, channel_id, application=application)
    except Exception as exc:
        await _audit(
            services, team_id, "link", user_id, page.page_id, f"key {creds.api_key}", f"error: {type(exc).__name__}"
        )
        raise
    await _audit(services, team_id, "link", user_id, page.page_id, f"key {creds.api_key}", "ok")
    return link


async def link_application(
    services: Services,
    team_id: str,
    user_id: str,
    page: StoredPage,
    creds: Credentials,
    app: Application,
    channel_id: str | None,
    *,
    replace: str | None = None,
) -> Link:
    """Part 2 (running part 1 first when needed). Never replaces another application silently:
    ``replace`` names the application the user agreed to replace; any other one is asked about again."""
    existing = await check_may_link(services, team_id, page, creds)
    tracked = existing is not None and existing.status == "active"
    vonage = services.vonage
    created = refreshed = False
    detail = f"key {creds.api_key} app {app.id}"
    try:
        account = await vonage.get_account(creds, page.page_id)
        current = account.application if account else None
        if current not in (None, app.id) and current != replace:
            apps = {a.id: a.name for a in await vonage.list_applications(creds)}
            raise AppConflict(page, creds, current, apps.get(current) or current, app)  # unnamed: its id
        if account is None or not tracked:
            # part 1 first; an account fblink does not track yet gets our fresh token too
            created = await _put_account(services, team_id, creds, page, exists=account is not None, before=existing)
            refreshed = True
        if current != app.id:
            if current is not None:
                await before_destroying(services, team_id, page.page_id, page.name)
                await vonage.unlink_application(creds, page.page_id, current)
            try:
                await vonage.link_application(creds, page.page_id, app.id)
            except Exception:
                if current is not None and not await _undo(
                    vonage.link_application(creds, page.page_id, current), "restore previous application"
                ):
                    if tracked:  # make our record match Vonage
                        async with fenced(services, team_id, page.page_id, page.name):
                            await services.store.upsert_link(
                                team_id, page.page_id, now=services.now(), application_id=None, application_name=None
                            )
                    raise PartialChange(
                        f"Vonage failed while replacing the application of *{blocks.escape(page.name)}*, and the "
                        "previous application could not be restored: the Page has no application at Vonage now. "
                        f"Link one with `/fblink link {blocks.escape(page.page_id)} app <application>`."
                    ) from None
                raise
        if refreshed:  # a new token went to Vonage: a new link period starts
            link = await _record_link(services, team_id, user_id, page, creds, channel_id, application=app)
        else:  # only the application changed: the token, its expiry and the reminders stay as they are
            async with fenced(services, team_id, page.page_id, page.name):
                link = await services.store.upsert_link(
                    team_id, page.page_id, now=services.now(), application_id=app.id, application_name=app.name
                )
    except AppConflict:
        await _audit(services, team_id, "link_app", user_id, page.page_id, detail, "conflict")
        raise
    except Exception as exc:
        if created and not await recorded_since(services, team_id, page.page_id, creds.api_key, existing):
            await _undo(vonage.unlink_account(creds, page.page_id), "remove half-made account")
        await _audit(
            services,
            team_id,
            "replace" if replace else "link_app",
            user_id,
            page.page_id,
            detail,
            f"error: {type(exc).__name__}",
        )
        raise
    await _audit(services, team_id, "replace" if replace else "link_app", user_id, page.page_id, detail, "ok")
    return link


async def _held_app(
    services: Services, creds: Credentials, app_id: str | None, known: Link | None
) -> Application | None:
    """The application Vonage says the Page has, named as recorded or as Vonage lists it
    (its id when the list cannot be read)."""
    if not app_id:
        return None
    name = known.application_name if known is not None and known.application_id == app_id else None
    if not name:
        try:
            name = next((a.name for a in await services.vonage.list_applications(creds) if a.id == app_id), None)
        except Exception:
            name = None
    return Application(app_id, name or app_id, frozenset({"messages"}))


async def _undo(coro: object, what: str) -> bool:
    """Best-effort compensation; False (and an error log) when it failed too. A 404 counts as undone."""
    try:
        await coro  # type: ignore[misc]
    except VonageNotFound:
        return True
    except Exception as exc:
        log.error("could not %s at Vonage: %s", what, type(exc).__name__)
        return False
    return True


async def check_may_unlink(services: Services, team_id: str, link: Link, user_id: str) -> None:
    if link.linked_by != user_id and not await services.is_admin(team_id, user_id):
        who = f"<@{link.linked_by}>" if link.linked_by else "the person who linked it"
        raise LinkRefused(f"Only {who} or an fblink admin can unlink *{blocks.escape(link.page_name)}*.")


async def unlink(services: Services, team_id: str, user_id: str, link: Link, *, application: str | None = None) -> str:
    """Unlink an application, or remove the Page from the Vonage account. Returns what was done.

    Runs under the Page's lease: the link is read again and the permission checked on that
    row (the caller's copy was read before the lease), and the lease is checked again before
    each Vonage delete."""
    current = await services.store.get_link(team_id, link.page_id)
    if current is None:
        raise LinkRefused(f"*{blocks.escape(link.page_name)}* is not linked any more; nothing to unlink.")
    link = current
    await check_may_unlink(services, team_id, link, user_id)
    creds = await services.credentials(team_id, link.api_key)
    if creds is None:
        raise LinkRefused(f"API key `{blocks.escape(link.api_key)}` is no longer configured; an admin can add it back.")
    now = services.now()
    if application is not None:
        app_id = link.application_id
        if app_id is None or application.lower() not in {app_id.lower(), (link.application_name or "").lower()}:
            raise LinkRefused(
                f"*{blocks.escape(link.page_name)}* is not linked to application “{blocks.escape(application)}”."
            )
        try:
            await before_destroying(services, team_id, link.page_id, link.page_name)
            with contextlib.suppress(VonageNotFound):  # already gone at Vonage: make our record agree
                await services.vonage.unlink_application(creds, link.page_id, app_id)
            async with fenced(services, team_id, link.page_id, link.page_name):
                await services.store.upsert_link(
                    team_id, link.page_id, now=now, application_id=None, application_name=None
                )
        except Exception as exc:
            await _audit(
                services, team_id, "unlink_app", user_id, link.page_id, f"app {app_id}", f"error: {type(exc).__name__}"
            )
            raise
        await _audit(services, team_id, "unlink_app", user_id, link.page_id, f"app {app_id}", "ok")
        return f"Unlinked application *{blocks.escape(link.application_name or app_id)}* from *{blocks.escape(link.page_name)}*."
    try:
        await before_destroying(services, team_id, link.page_id, link.page_name)
        with contextlib.suppress(VonageNotFound):
            await services.vonage.unlink_account(creds, link.page_id)
        async with fenced(services, team_id, link.page_id, link.page_name):
            await services.store.delete_link(team_id, link.page_id)
    except Exception as exc:
        await _audit(
            services, team_id, "unlink", user_id, link.page_id, f"key {link.api_key}", f"error: {type(exc).__name__}"
        )
        raise
    await _audit(services, team_id, "unlink", user_id, link.page_id, f"key {link.api_key}", "ok")
    return f"Removed *{blocks.escape(link.page_name)}* from Vonage API key `{blocks.escape(link.api_key)}`."


async def relink(services: Services, team_id: str, user_id: str, link: Link, page: StoredPage) -> Link:
    """Give Vonage a fresh Page token and start a new link period."""
    if not page.can_link:
        raise LinkRefused(f"You need the MESSAGING or MANAGE task on *{blocks.escape(page.name)}* to re-link it.")
    creds = await services.credentials(team_id, link.api_key)
    if creds is None:
        raise LinkRefused(f"API key `{blocks.escape(link.api_key)}` is no longer configured; an admin can add it back.")
    application: Application | None = None
    try:
        try:
            account = await services.vonage.update_account(creds, page.page_id, access_token=page.token, name=page.name)
        except VonageNotFound:  # deleted at Vonage: re-create it, with the application it had
            await _put_account(services, team_id, creds, page, exists=False, before=link)
            application = await _reattach(services, team_id, user_id, creds, page, link)
        else:  # record the application Vonage holds (a gone link's old one is stale)
            application = await _held_app(services, creds, account.application, link)
        new = await _record_link(
            services, team_id, user_id, page, creds, link.channel_id or None, application=application
        )
    except Exception as exc:
        await _audit(
            services, team_id, "relink", user_id, page.page_id, f"key {creds.api_key}", f"error: {type(exc).__name__}"
        )
        raise
    await _audit(services, team_id, "relink", user_id, page.page_id, f"key {creds.api_key}", "ok")
    return new
