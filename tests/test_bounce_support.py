"""Bounce test support: sample reports, mailboxes, three subscribers, their rows."""

from __future__ import annotations

import datetime as dt
import email.utils
import mailbox
from pathlib import Path

import pytest
from conftest import FIXTURES
from conftest import make_config
from sqlalchemy import select

from newsletter.config import settings_from_dict
from newsletter.store import engine as db
from newsletter.store.models import Bounce
from newsletter.store.subscribers import add_subscriber
from newsletter.store.subscribers import require_subscriber

NOW = dt.datetime(2025, 1, 31, 12, 0, tzinfo=dt.UTC)
DSN = FIXTURES / "dsn"
FLUFL = FIXTURES / "flufl"  # flufl.bounce's own sample corpus
PEOPLE = ("ana@example.net", "ben@example.net", "cleo@example.net")
_serial = iter(range(1, 10_000))


def sample(name: str, *, days_ago: float = 1, original: str | None = None, **values: str) -> bytes:
    """A fixture message with its {{PLACEHOLDERS}} filled in; a fresh Message-ID each time."""
    number = next(_serial)
    filled = {
        "TO": "digest@example.org",
        "DATE": email.utils.format_datetime(NOW - dt.timedelta(days=days_ago)),
        "ID": f"<dsn.{number}@mx.example.org>",
        "ORIGINAL_ID": original or f"<2025-01.{number}.abc@example.org>",
        "RECIPIENT": "ana@example.net",
        "FROM": "ana@example.net",
        "SUBJECT": "Research Digest",
        **values,
    }
    text = (DSN / name).read_text(encoding="utf-8")
    for key, value in filled.items():
        text = text.replace("{{" + key + "}}", value)
    assert "{{" not in text, text
    return text.encode()


def maildir(tmp_path: Path, *messages: bytes, name: str = "Maildir") -> Path:
    box = mailbox.Maildir(tmp_path / name, create=True)
    for message in messages:
        box.add(message)
    box.close()
    return tmp_path / name


def mbox(tmp_path: Path, *messages: bytes, name: str = "bounces.mbox") -> Path:
    box = mailbox.mbox(tmp_path / name)
    for message in messages:
        box.add(message)
    box.flush()
    box.close()
    return tmp_path / name


@pytest.fixture
def people(engine, settings, taxonomy) -> dict[str, int]:
    with db.transaction(engine) as session:
        return {
            address: add_subscriber(session, settings, taxonomy, address).id for address in PEOPLE
        }


def status(engine, address: str) -> str:
    with db.transaction(engine) as session:
        return require_subscriber(session, address).status


def bounce_rows(engine) -> list[Bounce]:
    with db.transaction(engine) as session:
        return list(session.scalars(select(Bounce).order_by(Bounce.id)))


def verp_settings(tmp_path: Path, **values):
    bounces = {"verp": True, **values}
    return settings_from_dict(make_config(tmp_path, bounces=bounces), tmp_path)
