"""The shared fixtures: each test's database is its own fresh copy of one migrated file; the
admin password is hashed once per session."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import ADMIN_PASSWORD
from sqlalchemy import inspect
from sqlalchemy import text

from newsletter.passwords import verify_password
from newsletter.store import engine as db


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_gets_its_own_migrated_database(engine, settings, migrated_sqlite, run):
    path = Path(engine.url.database)
    assert path.parent == settings.base_dir and path != migrated_sqlite
    assert db.current_revision(engine) == db.head_revision(engine)
    assert set(inspect(engine).get_table_names()) == _tables(migrated_sqlite)
    # Both runs create the table: the second would fail if they shared a database.
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE scratch (x INTEGER)"))
    assert "scratch" not in _tables(migrated_sqlite)


def _tables(path: Path) -> set[str]:
    """The tables in the SQLite file at `path`, read without writing to it."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows if not name.startswith("sqlite_")}
    finally:
        connection.close()


def test_the_session_admin_password_hash_matches_the_password(admin_password_hash):
    assert admin_password_hash.startswith("scrypt$")
    assert verify_password(ADMIN_PASSWORD, admin_password_hash)
    assert not verify_password(ADMIN_PASSWORD + "x", admin_password_hash)
