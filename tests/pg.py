"""PostgreSQL for the tests: a real server, one fresh schema per test.

``FBLINK_TEST_ENGINE=postgresql`` runs the whole suite on PostgreSQL; the store's contract
suite runs on both engines in every run. The server is ``FBLINK_TEST_DATABASE_URL``
(default: the local one, database ``test``). Without a server the PostgreSQL tests skip,
saying how to run them; under ``CI`` they fail instead, so a broken CI machine is seen.
"""

from __future__ import annotations

import os
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
HOW = (
    "start PostgreSQL (e.g. `apt-get install postgresql`, or any server you can create schemas in) and set "
    "FBLINK_TEST_DATABASE_URL=postgresql://user@host:5432/db if it is not at {url}; then "
    "`FBLINK_TEST_ENGINE=postgresql python -m pytest -q` runs the whole suite on it"
)


def base_url() -> str:
    return os.environ.get("FBLINK_TEST_DATABASE_URL", DEFAULT_URL)


def engine_under_test() -> str:
    engine = os.environ.get("FBLINK_TEST_ENGINE", "sqlite").lower()
    if engine not in ("sqlite", "postgresql"):
        raise pytest.UsageError(f"FBLINK_TEST_ENGINE must be sqlite or postgresql, not {engine!r}")
    return engine


@cache
def unavailable() -> str | None:
    """Why no PostgreSQL can be used (None when one answers)."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - a dependency of fblink
        return f"psycopg is not installed ({exc})"
    try:
        with psycopg.connect(base_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"no PostgreSQL answered at {base_url()} ({type(exc).__name__}: {str(exc).strip()[:200]})"
    return None


def require() -> None:
    """Skip (or, under CI, fail) the calling test when no server answers."""
    why = unavailable()
    if why is None:
        return
    message = f"{why}; to run the PostgreSQL tests, " + HOW.format(url=base_url())
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def with_schema(url: str, schema: str) -> str:
    """The URL with ``search_path`` set to ``schema`` (everything fblink creates goes there)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    query = [(k, v) for k, v in query if k != "options"] + [("options", f"-csearch_path={schema}")]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


@contextmanager
def fresh_schema(prefix: str = "t") -> Iterator[str]:
    """A URL whose tables live in a new, empty schema, dropped afterwards."""
    import psycopg

    require()
    schema = f"fblink_{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_schema(base_url(), schema)
    finally:
        with psycopg.connect(base_url(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def migrate(url: str) -> None:
    """Apply fblink's schema to ``url`` as `fblink migrate` does (a fresh engine, closed after)."""
    import asyncio

    from bot.dbtools import migrate as run_migrate
    from bot.store import open_engine

    asyncio.run(run_migrate(open_engine(url)))
