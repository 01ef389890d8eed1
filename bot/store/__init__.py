"""Storage: SQLite through sqlite-utils, behind a small typed interface.

- :mod:`bot.store.migrations`: the schema, applied once under a file lock;
- :mod:`bot.store.models`: the row models handed out (``Link``, ``StoredPage``…);
- :mod:`bot.store.core`: the :class:`Store` (logins, Pages, keys, links, audit);
- :mod:`bot.store.ledger`: the reminder ledger (``store.reminders``).
"""

from bot.store.core import Store
from bot.store.ledger import ReminderLedger, next_threshold_due
from bot.store.models import Claim, FacebookLogin, Link, LinkState, OAuthState, StoredPage, days_left

__all__ = [
    "Claim",
    "FacebookLogin",
    "Link",
    "LinkState",
    "OAuthState",
    "ReminderLedger",
    "Store",
    "StoredPage",
    "days_left",
    "next_threshold_due",
]
