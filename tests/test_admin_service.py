"""The subscriber service's admin operations and the admins store, on SQLite and PostgreSQL:
selections (filter, sort, count), `admin_edit`, `bulk_change`, and admins with their sessions."""

from __future__ import annotations

import datetime as dt

import pytest

from newsletter.config import ListSpec
from newsletter.content.taxonomy import default_taxonomy
from newsletter.errors import SubscriberError
from newsletter.store import admin_edits
from newsletter.store import admins
from newsletter.store import subscribers as api
from newsletter.store.admin_auth import session_owner
from newsletter.store.admin_auth import start_session
from newsletter.store.engine import transaction
from newsletter.store.models import ACTIVE
from newsletter.store.models import BOUNCED
from newsletter.store.models import PENDING
from newsletter.store.models import UNSUBSCRIBED

TAXONOMY = default_taxonomy()
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request, engine):
    return engine if request.param == "sqlite" else request.getfixturevalue("pg_engine")


def test_selection_filters_sorts_and_counts(any_engine, settings) -> None:
    with transaction(any_engine) as session:
        for address, name, status in (
            ("Cy@example.com", "Ann", ACTIVE),
            ("ab@example.com", "cyd", PENDING),
            ("bo@other.org", "Bea", BOUNCED),
        ):
            api.add_subscriber(session, settings, TAXONOMY, address, name=name, status=status)
    with transaction(any_engine) as session:
        emails = [s.email for s in api.query_subscribers(session, sort="email")]
        assert emails == ["ab@example.com", "bo@other.org", "Cy@example.com"]  # case-blind
        names = [s.name for s in api.query_subscribers(session, sort="name", descending=True)]
        assert names == ["cyd", "Bea", "Ann"]
        assert api.count_matching(session, search="EXAMPLE") == 2
        assert api.count_matching(session, search="cy") == 2  # address or name
        assert api.count_matching(session, status=BOUNCED) == 1
        page = api.query_subscribers(session, sort="email", limit=1, offset=1)
        assert [s.email for s in page] == ["bo@other.org"]
        with pytest.raises(SubscriberError, match="unknown sort"):
            api.query_subscribers(session, sort="password_hash")


def test_admin_edit_and_bulk_change(any_engine, settings) -> None:
    settings.lists = [ListSpec(slug="digest", name="Digest"), ListSpec(slug="events", name="E")]
    with transaction(any_engine) as session:
        ana = api.add_subscriber(session, settings, TAXONOMY, "ana@example.com", name="Ana")
        left = api.add_subscriber(session, settings, TAXONOMY, "lo@example.com")
        api.change_status(session, left, UNSUBSCRIBED)
        changed = admin_edits.admin_edit(
            session, settings, ana, name=" Ana L ", topics=frozenset({"empathy"}), lists=["events"]
        )
        assert changed == ["name", "topics", "lists"]
        assert (
            admin_edits.admin_edit(
                session,
                settings,
                ana,
                name="Ana L",
                topics=frozenset({"empathy"}),
                lists=["events"],
            )
            == []
        )
        with pytest.raises(SubscriberError, match="cannot put them on a list"):
            admin_edits.admin_edit(session, settings, left, name="", topics=None, lists=["digest"])
    with transaction(any_engine) as session:
        everyone = api.query_subscribers(session)
        assert admin_edits.bulk_change(session, settings, everyone, "add-list", "digest") == (1, 1)
        assert api.subscribed_lists(api.get_subscriber(session, "lo@example.com")) == []
        everyone = api.query_subscribers(session)
        assert admin_edits.bulk_change(session, settings, everyone, "status", BOUNCED) == (2, 0)
        for action, value in (("status", "royal"), ("add-list", "nope"), ("drop", "x")):
            with pytest.raises(SubscriberError):
                admin_edits.bulk_change(session, settings, everyone, action, value)
    with transaction(any_engine) as session:
        assert api.count_subscribers(session, BOUNCED) == 2


def test_admins_and_their_sessions(any_engine) -> None:
    def tag_of(session):
        return lambda name: admins.password_hash_of(session, name, "legacy-hash")[:32]

    with transaction(any_engine) as session:
        admins.add_admin(session, "Ana", "a long password")
        with pytest.raises(admins.AdminError, match="already an admin named 'ana'"):
            admins.add_admin(session, "ana", "another long one")
        with pytest.raises(admins.AdminError, match="at least 10"):
            admins.add_admin(session, "ben", "short")
        with pytest.raises(admins.AdminError, match="admin name"):
            admins.add_admin(session, "-bad", "a long password")
        names = [(i.name, i.legacy) for i in admins.list_admins(session, "legacy-hash")]
        assert names == [("admin", True), ("ana", False)]
        hour = dt.timedelta(hours=1)
        ana = start_session(session, tag_of(session)("ana"), hour, NOW, admin_name="ana")
        legacy = start_session(session, tag_of(session)("admin"), hour, NOW)
    with transaction(any_engine) as session:
        assert session_owner(session, ana, tag_of(session), NOW) == "ana"
        assert session_owner(session, legacy, tag_of(session), NOW) == "admin"
        assert session_owner(session, ana, tag_of(session), NOW + 2 * hour) is None  # expired
        admins.set_password(session, "ana", "a new long password")
    with transaction(any_engine) as session:
        assert session_owner(session, ana, tag_of(session), NOW) is None
        assert session_owner(session, legacy, tag_of(session), NOW) == "admin"
        admins.remove_admin(session, "ana")
        with pytest.raises(admins.AdminError, match="no admin named 'ana'"):
            admins.remove_admin(session, "ana")
        assert admins.password_hash_of(session, "ana", "legacy-hash") == ""
        assert admins.password_hash_of(session, "admin", "legacy-hash") == "legacy-hash"
        assert admins.password_hash_of(session, "x' OR 1=1 --", "legacy-hash") == ""
