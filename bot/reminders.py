"""Expiry reminders (filled in by the reminders work)."""
from __future__ import annotations
from typing import Any

async def after_relink(services: Any, old: Any, new: Any, user_id: str) -> None:
    return None

async def run_sweep_once(settings: Any, clock: Any, probe: bool = False) -> list[str]:
    return []
