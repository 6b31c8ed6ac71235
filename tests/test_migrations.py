"""Migrations: upgrade and downgrade on SQLite and PostgreSQL; models match the migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from conftest import write_config
from sqlalchemy import inspect

from newsletter.cli import main
from newsletter.errors import ConfigError
from newsletter.store import engine as db
from newsletter.store.models import Base

TABLES = {
    "subscribers",
    "subscriber_topics",
    "subscriber_excluded_topics",
    "lists",
    "subscriptions",
    "campaigns",
    "deliveries",
}


def _differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_sqlite_upgrade_creates_every_table_and_matches_models(engine) -> None:
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert db.current_revision(engine) == db.head_revision(engine)
    assert _differences(engine) == []


def test_sqlite_downgrade_to_base_and_up_again(engine) -> None:
    db.downgrade(engine, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    db.upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_require_schema_tells_the_user_to_migrate(tmp_path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        db.require_schema(engine)
    except ConfigError as error:
        assert "newsletter db upgrade" in str(error)
    else:
        raise AssertionError("an empty database passed require_schema")
    finally:
        engine.dispose()


def test_postgresql_upgrade_matches_models_and_downgrades(pg_engine) -> None:
    assert set(inspect(pg_engine).get_table_names()) >= TABLES
    assert _differences(pg_engine) == []
    db.downgrade(pg_engine, "base")
    assert not TABLES & set(inspect(pg_engine).get_table_names())
    db.upgrade(pg_engine)
    assert db.current_revision(pg_engine) == db.head_revision(pg_engine)


def test_an_unreachable_database_is_a_clear_error_not_a_traceback(tmp_path) -> None:
    """A refused connection names [database] url, exits non-zero, and hides the password."""
    url = "postgresql+psycopg://editor:s3cret@127.0.0.1:1/digest"
    config = write_config(tmp_path, database={"url": url})
    for command in (["subscribers", "list"], ["db", "upgrade"], ["send", "2025-01", "--dry-run"]):
        result = CliRunner().invoke(main, ["--config", str(config), *command])
        assert result.exit_code == 1, (command, result.output)
        assert "[database] url: cannot use the database at" in result.output
        assert "127.0.0.1:1/digest" in result.output and "s3cret" not in result.output
        assert "Traceback" not in result.output
