"""Admin management of Vonage API keys."""
from __future__ import annotations
from typing import Any
from slack_bolt.async_app import AsyncApp
from bot import blocks
from handlers.common import Req

async def cmd_keys_quick(req: Req) -> dict[str, Any]:
    return blocks.notice("keys")

async def open_add_modal(req: Req) -> None: ...

def register(app: AsyncApp) -> None:
    pass
