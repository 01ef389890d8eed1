"""Reminder settings."""
from __future__ import annotations
from typing import Any
from slack_bolt.async_app import AsyncApp
from bot import blocks
from handlers.common import Req

async def cmd_remind(req: Req) -> dict[str, Any]:
    return blocks.notice("remind")

def register(app: AsyncApp) -> None:
    pass
