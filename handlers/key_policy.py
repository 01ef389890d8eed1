"""Which Vonage API keys a Slack user may link with: the one key policy, enforced here only.

fblink admins (:meth:`Services.is_admin`, per workspace) may use every configured key: the
default one (VONAGE_API_KEY with one workspace; in distributed mode the workspace's first added
key) and those added with `/fblink keys add`. Everyone else links with the default key only.
Keys are read for the workspace the request came from, never another's. Every path that
picks a key for a link goes through :func:`credentials_for` or :func:`usable_keys`: the
`/fblink link <page> <key>` command, the link modal (the keys it offers, its key select's
reload, its submission) and the Replace button. Re-link and unlink pick no key: they keep the
one the link already has.
"""

from __future__ import annotations

from bot import blocks
from bot.linking import LinkRefused
from bot.services import Services
from bot.vonage import Credentials
from handlers import names


async def usable_keys(services: Services, team_id: str, user_id: str) -> list[str]:
    """The keys this user may link with, the default first."""
    keys = await services.api_keys(team_id)
    return keys if await services.is_admin(team_id, user_id) else keys[:1]


async def may_use(services: Services, team_id: str, user_id: str, api_key: str | None) -> bool:
    """None means the default key, which everyone may use."""
    return api_key is None or api_key in await usable_keys(services, team_id, user_id)


async def credentials_for(services: Services, team_id: str, user_id: str, api_key: str | None) -> Credentials:
    """The key's credentials when this user may link with it; LinkRefused otherwise. Only admins
    are told which keys exist: a non-admin gets the same answer for an unknown and an admin-only key."""
    allowed = await may_use(services, team_id, user_id, api_key)
    creds = await services.credentials(team_id, api_key) if allowed else None
    admin = await services.is_admin(team_id, user_id) if creds is None else False
    if creds is None and api_key and admin:
        # Admins alone get the forgiving match (case, a unique start): others could probe for keys.
        found = names.find(await services.api_keys(team_id), api_key, ident=lambda k: k, name=lambda k: k)
        if found.item is not None:
            creds = await services.credentials(team_id, found.item)
    if creds is not None:
        return creds
    if admin:
        configured = ", ".join(f"`{blocks.escape(k)}`" for k in await services.api_keys(team_id))
        raise LinkRefused(f"Unknown Vonage API key `{blocks.escape(api_key or '')}`. Configured keys: {configured}.")
    raise LinkRefused(
        f"Unknown Vonage API key `{blocks.escape(api_key or '')}`, or one only fblink admins can use: you link "
        "with the default key (leave the key out). Ask an fblink admin which keys are configured."
    )
