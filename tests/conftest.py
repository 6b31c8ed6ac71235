"""Shared fixtures: settings over a temp folder, a migrated SQLite database, a CLI runner."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
from click.testing import CliRunner
from outside_tools import in_ci
from outside_tools import require_tool
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from newsletter.config import ListSpec
from newsletter.config import Settings
from newsletter.config import settings_from_dict
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import default_taxonomy
from newsletter.store import engine as db

# CI runs property tests with a fixed seed, so a red build is reproducible; by hand they explore.
hypothesis.settings.register_profile("ci", derandomize=True)
if in_ci():
    hypothesis.settings.load_profile("ci")

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent
# At least 32 bytes: the web app and the serving commands refuse shorter keys.
TEST_SECRET = "test-secret-key-for-the-test-suite-only"
ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", TEST_SECRET)
    monkeypatch.delenv("NEWSLETTER_CONFIG", raising=False)


def make_config(tmp_path: Path, **sections: dict) -> dict:
    """A config mapping for a temp folder holding a copy of the fixture content."""
    content = tmp_path / "content"
    if not content.exists():
        shutil.copytree(FIXTURES / "content", content)
    data: dict = {
        "newsletter": {
            "name": "Test Digest",
            "from_email": "digest@example.org",
            "from_name": "Test Digest",
            "reply_to": "editor@example.org",
            "base_url": "https://news.example.org",
            "postal_address": "1 Test Street, Testville",
            "admin_email": "admin@example.org",
        },
        "content": {"dir": "content"},
        "templates": {"dir": str(REPO / "templates")},
        "database": {"url": "sqlite:///subscribers.db"},
        "delivery": {"transport": "memory", "maildir": "outbox"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return data


def write_config(tmp_path: Path, **sections: dict) -> Path:
    """Write make_config(...) as config.toml in tmp_path and return its path."""
    lines = []
    for section, values in make_config(tmp_path, **sections).items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml(value)}")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_from_dict(make_config(tmp_path), tmp_path)


@pytest.fixture
def taxonomy() -> Taxonomy:
    return default_taxonomy()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session: `engine` copies it for each test."""
    path = tmp_path_factory.mktemp("migrated") / "subscribers.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    # WAL mode: closing the last connection folds the log into the file, so the file is whole.
    assert not path.with_name(path.name + "-wal").exists(), "the migrated database kept a WAL"
    return path


@pytest.fixture
def engine(settings: Settings, migrated_sqlite: Path):
    """An engine on the test's own migrated database (a fresh copy of `migrated_sqlite`)."""
    url = make_url(settings.database.url)
    target = Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None
    if target is not None and target.is_absolute() and not target.exists():
        shutil.copyfile(migrated_sqlite, target)
        engine = db.make_engine(settings.database.url)
    else:  # not a fresh SQLite file: migrate it in place
        engine = db.make_engine(settings.database.url)
        db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    with db.session_factory(engine)() as session:
        yield session


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get("NEWSLETTER_TEST_DATABASE_URL")
    require_tool(url, "NEWSLETTER_TEST_DATABASE_URL is not set (PostgreSQL tests need it)")
    return url


@pytest.fixture(scope="session")
def admin_password_hash() -> str:
    """NEWSLETTER_ADMIN_PASSWORD_HASH for ADMIN_PASSWORD, hashed once: scrypt is slow on purpose."""
    from newsletter.passwords import hash_password

    return hash_password(ADMIN_PASSWORD)


@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[Engine]:
    """A migrated engine on a fresh PostgreSQL schema of its own, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy import text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # The schema travels in the URL, so subprocesses given engine.url use it too.
    separator = "&" if "?" in url else "?"
    engine = db.make_engine(f"{url}{separator}options=-csearch_path%3D{schema}")
    try:
        db.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_engine(postgres_url: str):
    """A migrated engine on a fresh PostgreSQL schema of its own, dropped afterwards."""
    with pg_schema(postgres_url) as engine:
        yield engine


@pytest.fixture(scope="session")
def axe_script(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """axe-core's script for the accessibility checks (tests/browser.py `axe_core`)."""
    from browser import axe_core

    if getattr(pytestconfig, "cache", None) is not None:
        return axe_core(pytestconfig.cache.mkdir("axe-core"))
    return axe_core(tmp_path_factory.mktemp("axe-core"))  # -p no:cacheprovider


@pytest.fixture
def multi(settings: Settings) -> Settings:
    """Settings with two extra lists besides the default 'digest'."""
    settings.lists = [
        ListSpec(slug="events", name="Events"),
        ListSpec(slug="staff", name="Staff notes", public=False),
    ]
    return settings
