"""APScheduler wiring (filled in by the reminders work)."""
from __future__ import annotations
from typing import Any

def start_scheduler(services: Any) -> Any:
    return None

async def stop_scheduler(sched: Any) -> None:
    return None
