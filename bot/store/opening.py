"""Opening an engine: from a path or URL, or from the settings (the one place serve, the worker
and every database command open theirs)."""

from __future__ import annotations

from typing import Any

from bot.settings import Settings
from bot.store.engine import Engine


def open_engine(target: str, **pg_options: Any) -> Engine:
    """The engine for a SQLite path (``sqlite:`` prefix optional) or a ``postgresql://`` URL;
    ``pg_options`` (pool size, timeouts) apply to PostgreSQL only."""
    if target.startswith(("postgresql://", "postgres://")):
        from bot.store.postgres import PostgresEngine  # noqa: PLC0415  # psycopg only when asked for

        return PostgresEngine(target, **pg_options)
    from bot.store.sqlite import SqliteEngine  # noqa: PLC0415

    return SqliteEngine(target.removeprefix("sqlite:"))


def engine_for(settings: Settings, target: str | None = None) -> Engine:
    """An engine on ``target`` (a path or URL) or the configured database, with the pool settings."""
    return open_engine(
        target or settings.database,
        pool_size=settings.fblink_db_pool_size,
        connect_timeout=settings.fblink_db_connect_timeout,
        statement_timeout=settings.fblink_db_statement_timeout,
        prepared_statements=settings.fblink_db_prepared_statements,
    )
