"""Alembic environment: uses the engine handed over by `newsletter.db.upgrade` when present."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from newsletter.store.engine import make_engine
from newsletter.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        url = config.get_main_option("sqlalchemy.url")
        engine = make_engine(url) if url else create_engine("sqlite://")
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch migration rebuilds a SQLite table (copy, DROP TABLE, rename), and with
            # foreign keys on, DROP TABLE first deletes every row, cascading into the tables
            # that refer to it (0007 emptied subscriber_topics and subscriptions that way).
            # The pragma only takes effect outside a transaction; the keys are checked after.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=True,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    _check_foreign_keys(connection)
            connection.commit()
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _check_foreign_keys(connection) -> None:
    """What SQLite would have refused with foreign keys on: a migration that leaves a row
    pointing at nothing fails (and is rolled back) instead of committing it."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = ", ".join(sorted({row[0] for row in broken}))
        raise RuntimeError(f"the migration left rows without their parent row in: {tables}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
