"""`fblink copy-db` and `fblink migrate`: moving a single-machine install into PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

from cryptography.fernet import Fernet

from bot.crypto import Vault
from bot.graph import Page
from bot.store import FacebookLogin
from tests import pg
from tests.store_sync import sync_store
from tests.test_store_settings_cli import BASE_ENV, clean_env

KEY = Fernet.generate_key().decode()
T0 = 1_790_000_000


def fblink(*args: str, cwd: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=clean_env(**{**BASE_ENV, "FBLINK_SECRET_KEY": KEY, **env}),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def seeded_sqlite(path: str) -> None:
    store = sync_store(path, Vault(KEY))
    store.save_login(FacebookLogin("T1", "U1", "FB1", "Ada", "EAA-user", None, None, ("pages_messaging",)), now=T0)
    store.save_pages(
        "T1", "U1", [Page(str(100 + i), f"P{i}", "c", ("MANAGE",), f"EAA-page-{i}") for i in range(3)], now=T0
    )
    store.add_key("T1", "k2", "vonage-secret", by="U1", now=T0)
    for i in range(3):
        link = store.upsert_link(
            "T1",
            str(100 + i),
            now=T0,
            page_token=f"EAA-link-{i}",
            page_name=f"P{i}",
            api_key="k1",
            status="active",
            expires_at=T0 + 9 * 86400,
            next_due_at=T0,
        )
    store.reminders.claim_due(now=T0, thresholds=(14, 7), lease=600)
    store.audit("T1", "link", now=T0, user_id="U1", page_id="100")
    assert link.id
    store.close()


def test_copy_db_moves_every_row_and_secret_into_an_empty_postgresql(tmp_path):
    pg.require()
    path = str(tmp_path / "single.db")
    seeded_sqlite(path)
    with pg.fresh_schema("copy") as url:
        out = fblink("copy-db", "--from", f"sqlite:{path}", "--to", url, cwd=str(tmp_path))
        assert out.returncode == 0, out.stderr
        assert "row counts match" in out.stdout and "every encrypted value decrypts" in out.stdout
        assert "links: 3 row(s)" in out.stdout and "reminders: 3 row(s)" in out.stdout
        assert "EAA-" not in out.stdout + out.stderr and "vonage-secret" not in out.stdout + out.stderr
        copied = sync_store(url, Vault(KEY))
        try:
            assert copied.get_login("T1", "U1").token == "EAA-user"
            assert {p.token for p in copied.get_pages("T1", "U1")} == {f"EAA-page-{i}" for i in range(3)}
            assert copied.key_secret("T1", "k2") == "vonage-secret"
            assert [x.page_id for x in copied.list_links("T1")] == ["100", "101", "102"]
            assert len(copied.select("SELECT * FROM reminders WHERE status = 'claimed'")) == 3
            fresh = copied.upsert_link(
                "T1", "999", now=T0, page_name="New", api_key="k1"
            )  # ids go on above the copied ones
            assert fresh.id > max(x.id for x in copied.list_links("T1") if x.page_id != "999")
        finally:
            copied.close()
        again = fblink("copy-db", "--from", f"sqlite:{path}", "--to", url, cwd=str(tmp_path))
        assert again.returncode == 2 and "not empty" in again.stderr


def test_copy_db_reports_a_value_that_does_not_decrypt_by_its_row(tmp_path):
    pg.require()
    path = str(tmp_path / "bad.db")
    seeded_sqlite(path)
    store = sync_store(path, Vault(KEY))
    foreign = Vault(Fernet.generate_key().decode()).encrypt("nobody-may-read-this")
    store.execute("UPDATE vonage_keys SET secret_enc = ? WHERE api_key = 'k2'", [foreign])
    store.close()
    with pg.fresh_schema("copybad") as url:
        out = fblink("copy-db", "--from", path, "--to", url, cwd=str(tmp_path))
        assert out.returncode == 1
        assert "vonage_keys.secret_enc(team_id=T1, api_key=k2)" in out.stderr
        assert "nobody-may-read-this" not in out.stdout + out.stderr and foreign not in out.stdout + out.stderr


def test_serve_refuses_a_postgresql_database_that_needs_migrating_and_migrate_fixes_it(tmp_path):
    pg.require()
    with pg.fresh_schema("serve") as url:
        refused = fblink("serve", "--port", "1", cwd=str(tmp_path), FBLINK_DATABASE_URL=url)
        assert refused.returncode == 2
        assert "run `fblink migrate`" in refused.stderr and "m001_initial" in refused.stderr
        migrated = fblink("migrate", cwd=str(tmp_path), FBLINK_DATABASE_URL=url)
        assert migrated.returncode == 0 and "m101_unreadable_rows_and_retention" in migrated.stdout
        again = fblink("migrate", cwd=str(tmp_path), FBLINK_DATABASE_URL=url)
        assert again.returncode == 0 and "schema current" in again.stdout
        check = fblink("check-config", cwd=str(tmp_path), FBLINK_DATABASE_URL=url)
        assert check.returncode == 0 and "postgresql://postgres@127.0.0.1/test" in check.stdout
