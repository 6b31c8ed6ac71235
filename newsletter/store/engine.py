"""Engine, sessions and migrations. SQLite file by default, PostgreSQL by URL."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import inspect
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from newsletter.errors import ConfigError
from newsletter.errors import DatabaseError
from newsletter.paths import data_path
from newsletter.store.quick import declared_head as _declared_head


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers (web app, `deliveries`) run while a send writes; foreign keys are off
    # by default in SQLite; the busy timeout turns lock contention into waiting, not errors.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # SQLite's lower() folds ASCII only, so a search for "émilie" missed "Émilie"; Python's
    # str.lower folds every letter, as PostgreSQL's lower() does.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def make_engine(url: str) -> Engine:
    """An engine for `url`, with SQLite tuned for one writer and several readers."""
    try:
        engine = create_engine(url, future=True)
    except Exception as error:  # bad URL or missing driver
        raise ConfigError(f"database.url {url!r}: {error}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


# One sessionmaker per engine: each sessionmaker makes a Session subclass, whose event
# dispatch SQLAlchemy builds again for its first session (~0.35 ms, as much as the rest of a
# short transaction; a web page or a ledger commit pays it every time).
_FACTORIES: weakref.WeakKeyDictionary[Engine, sessionmaker[Session]] = weakref.WeakKeyDictionary()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (one factory per engine)."""
    factory = _FACTORIES.get(engine)
    if factory is None:  # two threads may both make one: either serves
        factory = _FACTORIES[engine] = sessionmaker(engine, expire_on_commit=False)
    return factory


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with session_factory(engine).begin() as session:
        yield session


def alembic_config(engine: Engine):
    """An Alembic Config pointing at our migrations and bound to `engine`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(data_path("migrations")))
    # Alembic's config is a ConfigParser: '%' (percent-encoded passwords, options) must be doubled.
    url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["engine"] = engine
    return config


@contextlib.contextmanager
def reaching(engine: Engine) -> Iterator[None]:
    """Turn "cannot reach the database" into a `DatabaseError` naming `[database] url`.

    OperationalError covers refused connections, unknown hosts, bad passwords and files that
    are not databases; integrity or programming errors are bugs and keep their traceback.
    """
    try:
        yield
    except OperationalError as error:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(error.orig or error).strip().splitlines()[0]
        raise DatabaseError(
            f"[database] url: cannot use the database at {where}: {reason}"
        ) from None


@contextlib.contextmanager
def known_revision(engine: Engine, revision: str) -> Iterator[None]:
    """Alembic's CommandError (an unknown or ambiguous revision, a downgrade target above the
    current one) as one `DatabaseError` line naming the revision and the known ones."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        yield
    except CommandError as error:
        reason = str(error).strip().splitlines()[0]
        script = ScriptDirectory.from_config(alembic_config(engine))
        known = ", ".join(["base", *sorted(r.revision for r in script.walk_revisions()), "head"])
        raise DatabaseError(f"revision {revision!r}: {reason} (known: {known})") from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` (creates the database file if needed)."""
    from alembic import command

    with reaching(engine), known_revision(engine, revision):
        command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to `revision` ('base' empties the schema)."""
    from alembic import command

    with reaching(engine), known_revision(engine, revision):
        command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The applied migration revision, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with reaching(engine), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str:
    """The newest migration revision in `migrations/`."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None, "the migrations folder has no revisions"
    return head


def _at_declared_head(engine: Engine) -> bool:
    """Whether the database's `alembic_version` is the declared head (one cheap query)."""
    head = _declared_head(data_path("migrations") / "versions")
    if head is None or not inspect(engine).has_table("alembic_version"):
        return False
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return [row[0] for row in versions] == [head]


def require_schema(engine: Engine) -> None:
    """ConfigError unless the database is migrated to head (tells the user what to run)."""
    url = engine.url
    database = url.database or ""
    if (
        url.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not (database.startswith("file:") or "mode" in url.query)
        and Path(database).parent.is_dir()  # else connecting says it cannot open the file
        and not Path(database).exists()
    ):
        # Said before connecting: SQLite would create an empty file, which every later command
        # would then find and refuse in the same words.
        raise ConfigError(f"there is no database at {database} yet: run `newsletter db upgrade`")
    with reaching(engine):
        migrated = inspect(engine).has_table("subscribers")
        if migrated and _at_declared_head(engine):
            return  # the common case, answered without importing Alembic
    if not migrated or current_revision(engine) != head_revision(engine):
        raise ConfigError(
            f"the database at {engine.url.render_as_string()} is not up to date: "
            "run `newsletter db upgrade`"
        )


def rows_affected(result: object) -> int:
    """Rows an UPDATE or DELETE touched (`Session.execute` is typed as returning a plain
    Result; for DML it is a CursorResult, which has `rowcount`)."""
    return int(getattr(result, "rowcount", 0) or 0)
