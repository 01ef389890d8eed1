"""Linking Pages to Vonage (filled in by the linking work)."""
from __future__ import annotations
from typing import Any
from slack_bolt.async_app import AsyncApp
from bot import blocks
from handlers.common import Req

async def cmd_status(req: Req) -> dict[str, Any]:
    return blocks.notice("No links yet.")

async def cmd_history(req: Req) -> dict[str, Any]:
    return blocks.notice("No history yet.")

async def cmd_link(req: Req) -> None: ...
async def cmd_unlink(req: Req) -> None: ...
async def cmd_relink(req: Req) -> None: ...
async def cmd_sync(req: Req) -> None: ...
async def relink_after_login(services, state) -> None: ...

def register(app: AsyncApp) -> None:
    pass
