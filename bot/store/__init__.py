"""Storage: one async interface, two engines (SQLite by default, PostgreSQL by URL).

- :mod:`bot.store.engine`: the engine interface and the SQL fragments that differ;
- :mod:`bot.store.sqlite` and :mod:`bot.store.postgres`: one engine each, with their dialect;
- :mod:`bot.store.migrations` (SQLite) and :mod:`bot.store.migrations_pg`: one versioned schema;
- :mod:`bot.store.models`: the row models handed out (``Link``, ``StoredPage``…);
- :mod:`bot.store.core`: the :class:`Store` (logins, Pages, keys, links, audit);
- :mod:`bot.store.ledger`: the reminder ledger (``store.reminders``).
"""

from bot.store.core import Store
from bot.store.engine import Engine, SchemaError, StoreError
from bot.store.ledger import ReminderLedger, next_threshold_due
from bot.store.models import Claim, FacebookLogin, Link, LinkState, OAuthState, StoredPage, days_left
from bot.store.opening import engine_for, open_engine

__all__ = [
    "Claim",
    "Engine",
    "FacebookLogin",
    "Link",
    "LinkState",
    "OAuthState",
    "ReminderLedger",
    "SchemaError",
    "Store",
    "StoreError",
    "StoredPage",
    "days_left",
    "engine_for",
    "next_threshold_due",
    "open_engine",
]
