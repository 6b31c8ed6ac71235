"""What one page behind an emailed link costs in database statements (a contract, not a
timing: the figures are in bench/web_load.py). The preference page and the one-click
unsubscribe run at hundreds a second during a send; the reader is read in one statement."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from newsletter.content.taxonomy import default_taxonomy
from newsletter.store import registrar
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.store.models import utcnow
from newsletter.store.reader_view import read_reader
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer

pytest_plugins = ["test_web_support"]


@contextlib.contextmanager
def statements(engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _many) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _reader(engine, settings) -> tuple[int, str]:
    with session_factory(engine)() as session:
        subscriber = api.add_subscriber(
            session,
            settings,
            default_taxonomy(),
            "cost@example.org",
            topics=["empathy", "attachment", "training"],
        )
        session.commit()
        return subscriber.id, subscriber.email


def test_the_preference_page_reads_the_reader_in_one_statement(client, engine, web_settings):
    subscriber_id, email = _reader(engine, web_settings)
    token = Signer(web_settings.secret_key()).make(PREFERENCES, subscriber_id, email)
    with statements(engine) as seen:
        page = client.get(f"/preferences/{token}")
    assert page.status_code == 200
    assert "cost@example.org" in page.text
    assert 'value="empathy" checked' in page.text or "empathy" in page.text
    selects = [s for s in seen if s.startswith("SELECT")]
    assert len(selects) == 1, selects  # the reader with topics, stopped topics and lists
    assert "subscriber_topics" in selects[0] and "subscriptions" in selects[0]


def test_one_click_unsubscribe_reads_once_and_writes_once(client, engine, web_settings):
    subscriber_id, email = _reader(engine, web_settings)
    token = Signer(web_settings.secret_key()).make(UNSUBSCRIBE, subscriber_id, email)
    with statements(engine) as seen:
        answer = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    selects = [s for s in seen if s.startswith("SELECT")]
    assert len(selects) == 1, seen
    # Only the status changes: the reader's lists are read, not their topics.
    assert "subscriptions" in selects[0] and "_topics " not in selects[0], selects
    with session_factory(engine)() as session:
        assert api.get_subscriber(session, email).status == "unsubscribed"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_preference_pages_read_of_a_reader_is_the_records(backend, request, settings):
    """`store.reader_view` reads in one Core statement what the ORM `Subscriber` says: the
    topics (chosen, or all but the stopped ones), the lists, the pause, on both databases."""
    engine = request.getfixturevalue("engine" if backend == "sqlite" else "pg_engine")
    taxonomy = default_taxonomy()
    now = utcnow()
    with session_factory(engine)() as session:
        chosen = api.add_subscriber(
            session, settings, taxonomy, "chosen@example.org", topics=["empathy", "training"]
        )
        stopped = api.add_subscriber(session, settings, taxonomy, "stopped@example.org")
        registrar.drop_topic(session, taxonomy, stopped, "empathy")
        registrar.drop_topic(session, taxonomy, stopped, "attachment")
        registrar.pause(session, stopped, 2, now)
        left = api.add_subscriber(session, settings, taxonomy, "left@example.org")
        api.unsubscribe(session, left)
        session.commit()
        people = [chosen, stopped, left]
        with engine.connect() as connection:
            for person in people:
                view = read_reader(connection, person.id)
                assert view is not None
                assert (view.id, view.email, view.name, view.status, view.frequency) == (
                    person.id,
                    person.email,
                    person.name,
                    person.status,
                    person.frequency,
                )
                assert view.topic_slugs == person.topic_slugs
                assert view.excluded_slugs == person.excluded_slugs
                assert view.topic_choice == person.topic_choice
                assert list(view.lists) == api.subscribed_lists(person)
                assert view.paused_until == person.paused_until
            assert read_reader(connection, 10**6) is None
    assert stopped.excluded_slugs == {"empathy", "attachment"} and left.status == "unsubscribed"
    assert chosen.topic_slugs == {"empathy", "training"} and stopped.paused_until is not None
