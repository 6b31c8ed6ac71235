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


def _insert_subscriber_with_topic_and_list(connection) -> None:
    from sqlalchemy import text

    connection.execute(
        text(
            "INSERT INTO lists (id, slug, name, public, created_at) "
            "VALUES (1, 'main', 'Main', 1, '2026-01-01 00:00:00')"
        )
    )
    connection.execute(
        text(
            "INSERT INTO subscribers (id, email, email_key, name, status, all_topics, "
            "created_at, updated_at, consent_source, consent_ip) VALUES (7, 'a@example.org', "
            "'a@example.org', '', 'active', 0, '2026-01-01', '2026-01-01', 'cli', '')"
        )
    )
    connection.execute(text("INSERT INTO subscriber_topics VALUES (7, 'anxiety-disorders')"))
    connection.execute(
        text(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at) "
            "VALUES (7, 1, 'subscribed', '2026-01-01', '2026-01-01')"
        )
    )


def test_sqlite_table_rebuilds_keep_the_rows_that_refer_to_the_table(tmp_path) -> None:
    """0007 and 0011 rebuild `subscribers` (copy, drop, rename): with foreign keys on, the drop
    would cascade into topics and subscriptions. env.py turns them off for the migration only."""
    from sqlalchemy import text

    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        db.upgrade(engine, "0006")
        with engine.begin() as connection:
            _insert_subscriber_with_topic_and_list(connection)
        db.upgrade(engine)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM subscriber_topics")).scalar() == 1
            assert connection.execute(text("SELECT count(*) FROM subscriptions")).scalar() == 1
            # ... and the pooled connection has its foreign keys back on.
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            schema = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'subscribers'")
            ).scalar()
        assert "AUTOINCREMENT" in schema and "ck_subscribers_status" in schema
        assert "ck_subscribers_frequency" in schema
    finally:
        engine.dispose()


def test_sqlite_subscriber_ids_are_never_handed_out_twice(engine) -> None:
    from sqlalchemy import text

    with engine.begin() as connection:
        _insert_subscriber_with_topic_and_list(connection)
        connection.execute(text("DELETE FROM subscribers WHERE id = 7"))
        connection.execute(
            text(
                "INSERT INTO subscribers (email, email_key, name, status, all_topics, "
                "created_at, updated_at, consent_source, consent_ip, frequency) VALUES "
                "('b@example.org', 'b@example.org', '', 'active', 1, '2026-01-02', "
                "'2026-01-02', 'cli', '', 'monthly')"
            )
        )
        new_id = connection.execute(
            text("SELECT id FROM subscribers WHERE email_key = 'b@example.org'")
        ).scalar()
    assert new_id == 8  # not 7 again
