"""Key rotation: several FBLINK_SECRET_KEY keys, `fblink rotate-keys`, safe beside a running writer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest
from cryptography.fernet import Fernet

from bot.crypto import CryptoError, Vault
from bot.graph import Page
from bot.rotation import rotate_keys
from bot.store import FacebookLogin, open_engine
from tests import pg
from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import log_in
from tests.store_sync import SyncStore, sync_store
from tests.test_store_settings_cli import BASE_ENV, clean_env

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
SECRETS = {"user": "EAAuser-token-1", "page": "EAApage-token-2", "key": "vonage-secret-3", "link": "EAAlink-token-4"}


def seed(path: str, key: str, *, pages: int = 1) -> SyncStore:
    store = sync_store(path, Vault(key))
    store.save_login(FacebookLogin("T1", "U1", "FB1", "Ada", SECRETS["user"], None, None, ()), now=1)
    store.save_pages(
        "T1", "U1", [Page(str(100 + i), f"P{i}", "c", ("MANAGE",), SECRETS["page"]) for i in range(pages)], now=1
    )
    store.add_key("T1", "k1", SECRETS["key"], by="U1", now=1)
    store.upsert_link("T1", "100", now=1, page_token=SECRETS["link"], page_name="P0", api_key="k1")
    return store


def rotate(path: str, vault: Vault, **kw: object):  # type: ignore[no-untyped-def]
    """`fblink rotate-keys`' work on its own engine (as the command runs it)."""

    async def go():  # type: ignore[no-untyped-def]
        engine = open_engine(path)
        await engine.connect()
        try:
            return await rotate_keys(engine, vault, **kw)  # type: ignore[arg-type]
        finally:
            await engine.close()

    return asyncio.run(go())


def columns(path: str) -> list[tuple[str, str]]:
    store = sync_store(path, Vault(OLD))
    try:
        return [(c.table, c.column) for c in store.run(lambda s: s.engine.encrypted_columns())]
    finally:
        store.close()


def stored(path: str) -> dict[str, list[str]]:
    store = sync_store(path, Vault(OLD))
    try:
        return {
            f"{t}.{c}": [r["v"] for r in store.select(f"SELECT {c} AS v FROM {t} WHERE {c} IS NOT NULL")]
            for t, c in columns(path)
        }
    finally:
        store.close()


def test_vault_encrypts_with_newest_and_decrypts_with_any():
    old_ct = Vault(OLD).encrypt("s")
    both = Vault(f"{NEW}, {OLD}")
    assert both.decrypt(old_ct) == "s" and not both.is_current(old_ct)
    new_ct = both.encrypt("t")
    assert both.is_current(new_ct) and Vault(NEW).decrypt(new_ct) == "t"
    with pytest.raises(CryptoError):
        Vault(OLD).decrypt(new_ct)
    assert OLD not in repr(both) and NEW not in repr(both)


def test_every_encrypted_column_is_found(database):
    seed(database, OLD).close()
    found = set(columns(database))
    assert {
        ("fb_users", "token_enc"),
        ("fb_pages", "token_enc"),
        ("vonage_keys", "secret_enc"),
        ("links", "token_enc"),
        ("oauth_states", "response_url_enc"),  # a login prompt's response_url
    } <= found


def test_rotate_then_old_key_alone_no_longer_decrypts(database):
    path = database
    seed(path, OLD, pages=7).close()
    reports = rotate(path, Vault(f"{NEW},{OLD}"), batch=3)  # several batches per column
    by_name = {r.name: r for r in reports}
    assert by_name["fb_pages.token_enc"].rewritten == 7
    assert by_name["fb_users.token_enc"].rewritten == 1 and by_name["vonage_keys.secret_enc"].rewritten == 1
    assert by_name["links.token_enc"].rewritten == 1
    assert all(not r.undecryptable and not r.busy for r in reports)
    values = [v for vs in stored(path).values() for v in vs]
    assert len(values) == 10
    for ct in values:
        with pytest.raises(CryptoError):
            Vault(OLD).decrypt(ct)
        assert Vault(NEW).decrypt(ct) in SECRETS.values()
    # The app with only the new key reads everything back through the store.
    store = sync_store(path, Vault(NEW))
    assert store.get_login("T1", "U1").token == SECRETS["user"]
    assert store.key_secret("T1", "k1") == SECRETS["key"]
    assert {p.token for p in store.get_pages("T1", "U1")} == {SECRETS["page"]}
    store.close()
    # A second run has nothing left to do.
    again = rotate(path, Vault(f"{NEW},{OLD}"))
    assert sum(r.rewritten for r in again) == 0 and sum(r.current for r in again) == 10


def test_a_concurrent_update_during_rotation_is_not_lost(database):
    """Another process (still on the old key alone) changed a row and has not committed:
    rotation reads the old value, then waits for that row; the writer's value survives."""
    path = database
    seed(path, OLD, pages=3).close()
    table, column = columns(path)[0]  # the first column rotation reads and writes
    fresh = Vault(OLD).encrypt("fresh-value")
    result: list = []
    if path.startswith("postgresql://"):
        import psycopg

        writer = psycopg.connect(path)  # a transaction: the row stays locked until COMMIT
        target = writer.execute(f"SELECT user_id FROM {table} ORDER BY team_id, user_id LIMIT 1").fetchone()[0]
        writer.execute(f"UPDATE {table} SET {column} = %s WHERE user_id = %s", [fresh, target])

        def waiting() -> bool:
            with psycopg.connect(pg.base_url()) as probe:
                return bool(
                    probe.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE%%'"
                    ).fetchone()[0]
                )
    else:
        import sqlite3

        writer = sqlite3.connect(path, isolation_level=None, timeout=30)
        writer.execute("BEGIN IMMEDIATE")
        target = writer.execute(f"SELECT user_id FROM {table} ORDER BY team_id, user_id LIMIT 1").fetchone()[0]
        writer.execute(f"UPDATE {table} SET {column} = ? WHERE user_id = ?", [fresh, target])
        started = time.monotonic()

        def waiting() -> bool:  # rotation's BEGIN IMMEDIATE waits on the writer's lock; give it time to get there
            return time.monotonic() - started > 0.5

    thread = threading.Thread(target=lambda: result.append(rotate(path, Vault(f"{NEW},{OLD}"))))
    thread.start()
    deadline = time.monotonic() + 10
    while not waiting():
        assert time.monotonic() < deadline, "rotation never tried to write"
        time.sleep(0.02)
    writer.commit()
    thread.join(30)
    writer.close()
    assert result, "rotation did not finish"
    store = sync_store(path, Vault(NEW))
    value = store.one(f"SELECT {column} AS v FROM {table} WHERE user_id = ?", [target])["v"]
    store.close()
    assert Vault(NEW).decrypt(value) == "fresh-value"  # the writer's value survived, and is rotated too
    assert all(Vault(NEW).is_current(ct) for vs in stored(path).values() for ct in vs)
    first = result[0][0]
    assert first.rewritten + first.current == 3 and not first.busy


def _db_env(path: str) -> dict[str, str]:
    return {"FBLINK_DATABASE_URL": path} if path.startswith("postgresql://") else {"FBLINK_DATABASE": path}


def test_an_undecryptable_row_is_reported_by_id_and_skipped(database, tmp_path):
    path = database
    store = seed(path, OLD)
    foreign = Vault(Fernet.generate_key().decode()).encrypt("contents-nobody-may-see")
    store.upsert_link("T1", "666", now=1, page_name="Bad", api_key="k1")
    store.execute("UPDATE links SET token_enc = ? WHERE page_id = '666'", [foreign])
    bad_id = store.get_link("T1", "666").id
    store.close()
    env = clean_env(**{**BASE_ENV, **_db_env(path), "FBLINK_SECRET_KEY": f"{NEW},{OLD}"})
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "rotate-keys", "--batch", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 1, out.stderr
    assert f"links.token_enc: 1 rewritten, 0 already current, 1 undecryptable (links(id={bad_id}))" in out.stdout
    assert "vonage_keys.secret_enc: 1 rewritten" in out.stdout
    assert "rotated 4 secret(s)" in out.stdout
    assert "contents-nobody-may-see" not in out.stdout + out.stderr and foreign not in out.stdout + out.stderr
    store = sync_store(path, Vault(NEW))
    assert store.one("SELECT token_enc FROM links WHERE id = ?", [bad_id])["token_enc"] == foreign  # untouched
    good = store.one("SELECT token_enc FROM links WHERE page_id = '100'")["token_enc"]
    store.close()
    assert Vault(NEW).decrypt(good) == SECRETS["link"]


def test_rotate_keys_cli_succeeds_and_refuses_bad_input(database, tmp_path):
    path = database
    seed(path, OLD).close()
    env = clean_env(**{**BASE_ENV, **_db_env(path), "FBLINK_SECRET_KEY": f"{NEW},{OLD}"})
    run = lambda *a, **e: subprocess.run(
        [sys.executable, "-m", "bot.cli", "rotate-keys", *a],
        env={**env, **e},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    ok = run()
    assert ok.returncode == 0 and "rotated 4 secret(s) to the newest of 2 key(s); 0 undecryptable" in ok.stdout
    assert run("--batch", "0").returncode == 2
    if not path.startswith("postgresql://"):
        missing = run(FBLINK_DATABASE=str(tmp_path / "nope.db"))
        assert missing.returncode == 2 and "FBLINK_DATABASE" in missing.stderr
        assert not os.path.exists(tmp_path / "nope.db")
    bad = run(FBLINK_SECRET_KEY=f"{NEW},not-a-key")
    assert bad.returncode == 2 and "FBLINK_SECRET_KEY: key 2 of 2 is not a Fernet key" in bad.stderr
    assert NEW not in bad.stderr and "not-a-key" not in bad.stderr


def test_rotation_procedure_beside_the_running_bot(start_app, graph, vonage):
    """README procedure: add the new key first everywhere, rotate while serving, then drop the old key."""
    pages = [
        {"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]},
        {"id": "102", "name": "Bolt Hardware", "category": "Shop", "tasks": ["MESSAGING"]},
    ]
    old_bot = start_app(fblink_secret_key=OLD)
    log_in(old_bot, graph, pages=pages, data_access_expires_at=START + 365 * 86400)
    old_bot.slack.wait_message("Connected to Facebook")
    old_bot.command("link 101")
    old_bot.slack.wait_response("Linked *Acme Coffee*")
    serving = start_app(fblink_secret_key=f"{NEW},{OLD}")  # step 1: every process gets "new,old"
    path = serving.services.settings.database
    reports = rotate(path, Vault(f"{NEW},{OLD}"), batch=1)  # step 2, while it serves
    assert sum(r.rewritten for r in reports) >= 4 and not any(r.undecryptable or r.busy for r in reports)
    assert serving.command("status").status_code == 200
    new_bot = start_app(fblink_secret_key=NEW)  # step 3: the old key is gone
    new_bot.command("link 102")  # needs the stored login and Page tokens, now under the new key
    new_bot.slack.wait_response("Linked *Bolt Hardware*")
    assert vonage.accounts[VONAGE_KEY]["102"]["access_token"] == graph.page_token("FB1", "102")
    assert new_bot.store.get_login(TEAM, "U1").fb_user_id == "FB1"
