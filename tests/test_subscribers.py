"""The subscriber API: validation, lists, topics, status changes, suppression, import/export."""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from newsletter.config import ListSpec
from newsletter.config import Settings
from newsletter.config import settings_from_dict
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import ImportFileError
from newsletter.errors import InvalidAddress
from newsletter.errors import SubscriberError
from newsletter.errors import TaxonomyError
from newsletter.store import engine as db
from newsletter.store import import_export
from newsletter.store import subscribers as api
from newsletter.store.models import ACTIVE
from newsletter.store.models import BOUNCED
from newsletter.store.models import PENDING
from newsletter.store.models import SUBSCRIBED
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import MailingList
from newsletter.store.models import Subscriber
from newsletter.store.models import SubscriberTopic
from newsletter.store.models import Subscription
from newsletter.store.models import Suppression


@pytest.fixture
def multi(settings: Settings) -> Settings:
    """Settings with two extra lists besides the default 'digest'."""
    settings.lists = [
        ListSpec(slug="events", name="Events"),
        ListSpec(slug="staff", name="Staff notes", public=False),
    ]
    return settings


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def slugs(subscriber: Subscriber) -> frozenset[str] | None:
    return subscriber.topic_slugs


# --- addresses, lists, topics -------------------------------------------------------------


def test_normalize_email_lowercases_the_domain_and_makes_a_key() -> None:
    assert api.normalize_email("  Jane.Doe@Example.ORG ") == (
        "Jane.Doe@example.org",
        "jane.doe@example.org",
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("no-at-sign", "@-sign"),
        ("a@b", "period"),
        ("two..dots@example.org", "two periods"),
        ("x@example.invalid", "special-use"),
    ],
)
def test_normalize_email_rejects_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        api.normalize_email(text)


def test_ensure_lists_creates_and_updates(session, multi: Settings) -> None:
    lists = api.ensure_lists(session, multi)
    assert list(lists) == ["digest", "events", "staff"]
    assert lists["digest"].name == "Test Digest"
    assert lists["staff"].public is False
    multi.lists = [ListSpec(slug="events", name="Events and workshops")]
    again = api.ensure_lists(session, multi)
    assert again["events"].id == lists["events"].id
    assert again["events"].name == "Events and workshops"
    assert count(session, MailingList) == 3  # lists no longer configured are kept


def test_parse_topics_accepts_labels_and_slugs_in_any_case(taxonomy: Taxonomy) -> None:
    assert api.parse_topics("Empathy; attachment ;TRAUMA AND/OR PTSD", taxonomy) == {
        "empathy",
        "attachment",
        "trauma-and-or-ptsd",
    }
    assert api.parse_topics(["Group Psychotherapy", "termination"], taxonomy) == {
        "group-psychotherapy",
        "termination",
    }
    assert api.parse_topics("Adherance", taxonomy) == {"adherence"}  # old spelling


@pytest.mark.parametrize("value", [None, "", "  ", "*", "all", " ALL ", [], ["*"], "empathy;*"])
def test_parse_topics_all(value, taxonomy: Taxonomy) -> None:
    assert api.parse_topics(value, taxonomy) is None


def test_parse_topics_unknown_names_the_closest(taxonomy: Taxonomy) -> None:
    with pytest.raises(TaxonomyError, match="unknown topic 'empaty'; did you mean 'Empathy'"):
        api.parse_topics("attachment;empaty", taxonomy)


# --- add, get, remove ---------------------------------------------------------------------


def test_add_active_subscriber(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(
        session,
        settings,
        taxonomy,
        "Ann@Example.org",
        name=" Ann ",
        topics="Empathy;attachment",
        source="web",
        ip="192.0.2.1",
    )
    assert subscriber.id is not None
    assert subscriber.email == "Ann@example.org"
    assert subscriber.email_key == "ann@example.org"
    assert subscriber.name == "Ann"
    assert subscriber.status == ACTIVE
    assert subscriber.confirmed_at is not None
    assert subscriber.unsubscribed_at is None
    assert (subscriber.consent_source, subscriber.consent_ip) == ("web", "192.0.2.1")
    assert slugs(subscriber) == {"empathy", "attachment"}
    assert api.subscribed_lists(subscriber) == ["digest"]


def test_add_pending_subscriber_is_not_confirmed(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(session, settings, taxonomy, "p@example.org", status=PENDING)
    assert subscriber.confirmed_at is None
    assert slugs(subscriber) is None  # all topics by default


def test_add_rejects_duplicates_case_insensitively(session, settings, taxonomy) -> None:
    api.add_subscriber(session, settings, taxonomy, "dup@example.org")
    with pytest.raises(SubscriberError, match="already subscribed"):
        api.add_subscriber(session, settings, taxonomy, "DUP@Example.Org")
    assert count(session, Subscriber) == 1


def test_add_rejects_unknown_list_and_status(session, multi, taxonomy) -> None:
    with pytest.raises(SubscriberError, match=r"unknown list 'nope' \(known lists: digest"):
        api.add_subscriber(session, multi, taxonomy, "a@example.org", lists=["events", "nope"])
    with pytest.raises(SubscriberError, match="unknown status 'sleeping'"):
        api.add_subscriber(session, multi, taxonomy, "a@example.org", status="sleeping")
    with pytest.raises(InvalidAddress):
        api.add_subscriber(session, multi, taxonomy, "not an address")
    assert count(session, Subscriber) == 0


def test_add_to_several_lists(session, multi, taxonomy) -> None:
    subscriber = api.add_subscriber(
        session, multi, taxonomy, "l@example.org", lists=["staff", "events", "staff"]
    )
    assert api.subscribed_lists(subscriber) == ["events", "staff"]


def test_get_and_require(session, settings, taxonomy) -> None:
    added = api.add_subscriber(session, settings, taxonomy, "g@example.org")
    assert api.get_subscriber(session, " G@EXAMPLE.ORG ") is added
    assert api.get_subscriber(session, "other@example.org") is None
    assert api.get_subscriber(session, "not an address") is None
    with pytest.raises(SubscriberError, match=r"no subscriber other@example\.org"):
        api.require_subscriber(session, "other@example.org")


def test_remove_cascades(session, settings, taxonomy) -> None:
    api.add_subscriber(session, settings, taxonomy, "r@example.org", topics="empathy")
    api.add_subscriber(session, settings, taxonomy, "keep@example.org", topics="empathy")
    api.remove_subscriber(session, "R@example.org")
    assert api.get_subscriber(session, "r@example.org") is None
    assert count(session, Subscriber) == 1
    assert count(session, SubscriberTopic) == 1
    assert count(session, Subscription) == 1
    with pytest.raises(SubscriberError, match="no subscriber"):
        api.remove_subscriber(session, "r@example.org")


# --- suppression --------------------------------------------------------------------------


def test_suppression_stores_only_a_hash(session, settings, taxonomy) -> None:
    api.suppress(session, "Gone@Example.org", "forget-me")
    api.suppress(session, "gone@example.org", "again")  # idempotent, keeps the first reason
    row = session.scalars(select(Suppression)).one()
    assert row.email_hash == hashlib.sha256(b"gone@example.org").hexdigest()
    assert row.reason == "forget-me"
    assert api.is_suppressed(session, "GONE@example.org")
    assert not api.is_suppressed(session, "other@example.org")
    with pytest.raises(SubscriberError, match="suppression list"):
        api.add_subscriber(session, settings, taxonomy, "gone@EXAMPLE.org")


# --- status, topics, lists ----------------------------------------------------------------


def test_confirm_pending(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(session, settings, taxonomy, "c@example.org", status=PENDING)
    api.confirm(session, subscriber, ip="198.51.100.7")
    assert subscriber.status == ACTIVE
    assert subscriber.confirmed_at is not None
    assert subscriber.consent_ip == "198.51.100.7"
    first = subscriber.confirmed_at
    api.confirm(session, subscriber)  # a second click changes nothing
    assert subscriber.confirmed_at == first


def test_confirm_cannot_revive_an_unsubscribed_address(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(session, settings, taxonomy, "u@example.org", status=PENDING)
    api.set_status(session, subscriber, UNSUBSCRIBED)
    with pytest.raises(SubscriberError, match="unsubscribed"):
        api.confirm(session, subscriber)


def test_set_status_timestamps(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(session, settings, taxonomy, "s@example.org", status=PENDING)
    api.set_status(session, subscriber, ACTIVE)
    assert subscriber.confirmed_at is not None
    api.set_status(session, subscriber, UNSUBSCRIBED)
    assert subscriber.unsubscribed_at is not None
    api.set_status(session, subscriber, ACTIVE)
    assert subscriber.unsubscribed_at is None
    with pytest.raises(SubscriberError, match="unknown status"):
        api.set_status(session, subscriber, "gone")


def test_unsubscribe_from_one_list(session, multi, taxonomy) -> None:
    subscriber = api.add_subscriber(
        session, multi, taxonomy, "one@example.org", lists=["digest", "events"]
    )
    api.unsubscribe(session, subscriber, "events")
    assert subscriber.status == ACTIVE
    assert api.subscribed_lists(subscriber) == ["digest"]
    with pytest.raises(SubscriberError, match="not on the list 'staff'"):
        api.unsubscribe(session, subscriber, "staff")


def test_unsubscribe_globally(session, multi, taxonomy) -> None:
    subscriber = api.add_subscriber(
        session, multi, taxonomy, "all@example.org", lists=["digest", "events"]
    )
    api.unsubscribe(session, subscriber)
    assert subscriber.status == UNSUBSCRIBED
    assert subscriber.unsubscribed_at is not None
    assert api.subscribed_lists(subscriber) == []
    assert {s.status for s in subscriber.subscriptions} == {UNSUBSCRIBED}


def test_set_topics(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(session, settings, taxonomy, "t@example.org", topics="empathy")
    api.set_topics(session, subscriber, frozenset({"empathy", "training"}))  # overlapping set
    assert slugs(subscriber) == {"empathy", "training"}
    api.set_topics(session, subscriber, None)
    assert slugs(subscriber) is None
    assert count(session, SubscriberTopic) == 0
    api.set_topics(session, subscriber, frozenset({"termination"}))
    session.expire_all()
    assert slugs(api.require_subscriber(session, "t@example.org")) == {"termination"}


def test_set_lists_keeps_unsubscribed_rows(session, multi, taxonomy) -> None:
    subscriber = api.add_subscriber(session, multi, taxonomy, "sl@example.org")
    api.set_lists(session, multi, subscriber, ["events", "staff"])
    assert api.subscribed_lists(subscriber) == ["events", "staff"]
    statuses = {s.mailing_list.slug: s.status for s in subscriber.subscriptions}
    assert statuses == {"digest": UNSUBSCRIBED, "events": SUBSCRIBED, "staff": SUBSCRIBED}
    api.set_lists(session, multi, subscriber, ["digest"])
    assert api.subscribed_lists(subscriber) == ["digest"]
    with pytest.raises(SubscriberError, match="unknown list 'x'"):
        api.set_lists(session, multi, subscriber, ["x"])


def test_query_subscribers(session, multi, taxonomy) -> None:
    add = api.add_subscriber
    add(session, multi, taxonomy, "everything@example.org", name="Eve")
    add(session, multi, taxonomy, "empathy@example.org", topics="empathy", lists=["events"])
    add(session, multi, taxonomy, "train@example.org", topics="training", status=PENDING)
    add(session, multi, taxonomy, "odd_100%@example.org", name="Percy")
    unsub = add(session, multi, taxonomy, "gone@example.org", lists=["digest", "events"])
    api.unsubscribe(session, unsub, "events")

    def emails(**filters) -> list[str]:
        return [s.email for s in api.query_subscribers(session, **filters)]

    assert len(emails()) == 5
    assert emails(status=PENDING) == ["train@example.org"]
    assert emails(list_slug="events") == ["empathy@example.org"]
    # all-topics subscribers get every topic
    assert emails(topic="empathy") == [
        "everything@example.org",
        "empathy@example.org",
        "odd_100%@example.org",
        "gone@example.org",
    ]
    assert emails(topic="training", status=PENDING) == ["train@example.org"]
    assert emails(search="EVE") == ["everything@example.org"]
    assert emails(search="percy") == ["odd_100%@example.org"]
    assert emails(search="_100%") == ["odd_100%@example.org"]  # LIKE wildcards are literal
    assert emails(limit=2, offset=1) == ["empathy@example.org", "train@example.org"]


def test_subscriber_to_dict(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(
        session, settings, taxonomy, "d@example.org", name="Dee", topics="training;empathy"
    )
    record = import_export.subscriber_to_dict(subscriber)
    assert record["topics"] == ["empathy", "training"]
    assert record["lists"] == ["digest"]
    assert record["status"] == ACTIVE
    assert record["consent_source"] == "cli"
    assert record["unsubscribed_at"] is None
    assert record["created_at"].endswith("+00:00")
    assert record["confirmed_at"].startswith(record["created_at"][:10])
    api.set_topics(session, subscriber, None)
    assert import_export.subscriber_to_dict(subscriber)["topics"] == "*"


# --- import -------------------------------------------------------------------------------


GOOD = """\
email,name,topics,lists,status
ann@example.org,Ann,Empathy;attachment,,
Bob@Example.org,"Bob, Jr.",*,digest;events,pending
cy@example.org,,,events,unsubscribed
dee@example.org,Dee,termination,,BOUNCED
"""


def test_import_good_file(session, multi, taxonomy) -> None:
    report = import_export.import_csv(session, multi, taxonomy, GOOD)
    assert (report.added, report.updated, report.skipped_existing, report.rejected) == (4, 0, 0, [])
    assert report.rows == 4
    ann = api.require_subscriber(session, "ann@example.org")
    assert slugs(ann) == {"empathy", "attachment"}
    assert api.subscribed_lists(ann) == ["digest"]
    assert ann.status == ACTIVE
    assert ann.confirmed_at is not None
    assert ann.consent_source == "import"
    bob = api.require_subscriber(session, "bob@example.org")
    assert (bob.email, bob.name, bob.status, bob.confirmed_at) == (
        "Bob@example.org",
        "Bob, Jr.",
        PENDING,
        None,
    )
    assert slugs(bob) is None
    assert api.subscribed_lists(bob) == ["digest", "events"]
    cy = api.require_subscriber(session, "cy@example.org")
    assert (cy.status, slugs(cy), api.subscribed_lists(cy)) == (UNSUBSCRIBED, None, ["events"])
    assert cy.unsubscribed_at is not None
    assert api.require_subscriber(session, "dee@example.org").status == BOUNCED


def test_import_only_email_column(session, settings, taxonomy) -> None:
    report = import_export.import_csv(
        session, settings, taxonomy, "Email\none@example.org\n\ntwo@example.org"
    )
    assert report.added == 2
    two = api.require_subscriber(session, "two@example.org")
    assert (two.name, slugs(two), api.subscribed_lists(two), two.status) == (
        "",
        None,
        ["digest"],
        ACTIVE,
    )


BAD = """\
email,name,topics,lists,status
good@example.org,Good,empathy,,
not-an-address,,,,
typo@example.org,,empaty,,
list@example.org,,,digest;nope,
status@example.org,,,,asleep
GOOD@example.org,Again,,,
fields@example.org,,,
"""


def test_import_bad_rows_writes_nothing(session, multi, taxonomy) -> None:
    with pytest.raises(ImportFileError, match=r"^6 of 7 rows rejected$") as caught:
        import_export.import_csv(session, multi, taxonomy, BAD)
    rejected = caught.value.rejected
    assert [line for line, _ in rejected] == [3, 4, 5, 6, 7, 8]
    reasons = dict(rejected)
    assert "invalid email address 'not-an-address'" in reasons[3]
    assert "unknown topic 'empaty'; did you mean 'Empathy'?" in reasons[4]
    assert "unknown list 'nope'" in reasons[5]
    assert "unknown status 'asleep'" in reasons[6]
    assert reasons[7] == "GOOD@example.org is a duplicate of line 2"
    assert reasons[8] == "4 fields, but the header has 5"
    assert count(session, Subscriber) == 0
    assert count(session, MailingList) == 0  # not even the lists


def test_import_skip_invalid(session, multi, taxonomy) -> None:
    report = import_export.import_csv(session, multi, taxonomy, BAD, skip_invalid=True)
    assert report.added == 1
    assert [line for line, _ in report.rejected] == [3, 4, 5, 6, 7, 8]
    assert [s.email for s in api.query_subscribers(session)] == ["good@example.org"]
    assert api.require_subscriber(session, "good@example.org").name == "Good"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("email,name,phone,age", "unknown columns 'phone', 'age'; expected email, name"),
        ("name,topics", "no 'email' column"),
        ("email,email", "'email' appears more than once"),
        ("", "no header row"),
    ],
)
def test_import_bad_header(session, settings, taxonomy, header: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message) as caught:
        import_export.import_csv(session, settings, taxonomy, header + "\nx@example.org,a,b,c\n")
    assert caught.value.rejected[0][0] == 1
    assert count(session, Subscriber) == 0


def test_import_line_numbers_count_quoted_newlines(session, settings, taxonomy) -> None:
    data = (
        "email,name,topics\n"
        'multi@example.org,Multi,"anxiety-disorders;\ngroup-psychotherapy;\ntherapist-factors"\n'
        'evil@example.org,"Bob\nBcc: victim@example.net",\n'
        "\n"
        "bad-address,x,\n"
        "fine@example.org,Fine,\n"
    )
    report = import_export.import_csv(session, settings, taxonomy, data, skip_invalid=True)
    assert report.added == 2
    # Line numbers count the quoted line breaks: the name with a line break is refused at its
    # first line (5), the bad address at line 8.
    assert [line for line, _ in report.rejected] == [5, 8]
    assert "control characters or line breaks" in report.rejected[0][1]
    topics = api.require_subscriber(session, "multi@example.org").topic_slugs
    assert topics == {"anxiety-disorders", "group-psychotherapy", "therapist-factors"}


def test_import_crlf_and_bom(session, settings, taxonomy) -> None:
    data = "\ufeffemail,name\r\nbom@example.org,B\r\nbad,x\r\n"
    with pytest.raises(ImportFileError) as caught:
        import_export.import_csv(session, settings, taxonomy, data)
    assert caught.value.rejected[0][0] == 3
    report = import_export.import_csv(
        session, settings, taxonomy, data.encode("utf-8"), skip_invalid=True
    )
    assert report.added == 1


def test_decode_csv() -> None:
    assert (
        import_export.decode_csv("\ufeffemail\nä@example.org\n".encode())
        == "email\nä@example.org\n"
    )
    with pytest.raises(ImportFileError, match=r"byte 0xe9 at position 9 \(line 2\)"):
        import_export.decode_csv("email\nRené@example.org\n".encode("latin-1"))


def test_import_rejects_suppressed_addresses(session, settings, taxonomy) -> None:
    api.suppress(session, "ghost@example.org", "complaint")
    with pytest.raises(ImportFileError) as caught:
        import_export.import_csv(
            session, settings, taxonomy, "email\nok@example.org\nGhost@example.org\n"
        )
    assert caught.value.rejected == [(3, "Ghost@example.org is on the suppression list")]
    assert count(session, Subscriber) == 0


def test_import_field_too_large_is_a_file_error(session, settings, taxonomy) -> None:
    data = "email,name\n" + "a@example.org," + "x" * 200_000 + "\n"
    with pytest.raises(ImportFileError, match="line 2: field larger than field limit"):
        import_export.import_csv(session, settings, taxonomy, data)


def test_import_existing_is_skipped(session, settings, taxonomy) -> None:
    api.add_subscriber(session, settings, taxonomy, "old@example.org", name="Old", topics="empathy")
    report = import_export.import_csv(
        session, settings, taxonomy, "email,name,topics\nOLD@example.org,New,*\nnew@example.org,,\n"
    )
    assert (report.added, report.skipped_existing, report.updated) == (1, 1, 0)
    old = api.require_subscriber(session, "old@example.org")
    assert (old.name, slugs(old)) == ("Old", {"empathy"})


def test_import_update_existing(session, multi, taxonomy) -> None:
    api.add_subscriber(session, multi, taxonomy, "up@example.org", name="Up", topics="empathy")
    api.add_subscriber(session, multi, taxonomy, "p@example.org", name="Pat", status=PENDING)
    data = "email,topics,lists,status\nup@example.org,training;empathy,events,\np@example.org,,,\n"
    report = import_export.import_csv(session, multi, taxonomy, data, update_existing=True)
    assert (report.added, report.updated, report.skipped_existing) == (0, 2, 0)
    up = api.require_subscriber(session, "up@example.org")
    assert up.name == "Up"  # no name column: names are kept
    assert slugs(up) == {"training", "empathy"}
    assert api.subscribed_lists(up) == ["events"]
    pat = api.require_subscriber(session, "p@example.org")
    assert (pat.status, api.subscribed_lists(pat), slugs(pat)) == (ACTIVE, ["digest"], None)
    assert pat.confirmed_at is not None


def test_import_cannot_resubscribe(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(session, settings, taxonomy, "left@example.org", name="L")
    api.unsubscribe(session, subscriber)
    data = "email,name,status\nleft@example.org,Back,active\n"
    with pytest.raises(ImportFileError) as caught:
        import_export.import_csv(session, settings, taxonomy, data, update_existing=True)
    assert caught.value.rejected == [
        (2, "left@example.org is unsubscribed; an import cannot subscribe it again")
    ]
    # without update_existing the row is simply skipped
    report = import_export.import_csv(session, settings, taxonomy, data)
    assert report.skipped_existing == 1
    assert api.require_subscriber(session, "left@example.org").status == UNSUBSCRIBED


def test_import_dry_run_writes_nothing(session, multi, taxonomy) -> None:
    report = import_export.import_csv(session, multi, taxonomy, GOOD, dry_run=True)
    assert (report.added, report.dry_run) == (4, True)
    assert count(session, Subscriber) == 0
    with pytest.raises(ImportFileError):
        import_export.import_csv(session, multi, taxonomy, BAD, dry_run=True)


def test_import_10k_rows(session, settings, taxonomy) -> None:
    topic_slugs = [t.slug for t in taxonomy.topics]
    lines = ["email,name,topics"]
    for i in range(10_000):
        topics = ";".join(topic_slugs[i % 30 : i % 30 + 3]) if i % 2 else "*"
        lines.append(f"user{i}@example.org,User {i},{topics}")
    report = import_export.import_csv(session, settings, taxonomy, "\n".join(lines))
    session.commit()
    assert report.added == 10_000
    assert count(session, SubscriberTopic) == 15_000


# --- export -------------------------------------------------------------------------------


def _populate(session, settings, taxonomy) -> None:
    add = api.add_subscriber
    add(session, settings, taxonomy, "Ann@example.org", name="Ann", topics="empathy;training")
    add(session, settings, taxonomy, "bob@example.org", name='Bob "B", Jr. — Ünal')
    add(session, settings, taxonomy, "pen@example.org", status=PENDING, lists=["events"])
    many = add(session, settings, taxonomy, "many@example.org", lists=["digest", "events"])
    api.unsubscribe(session, many, "digest")
    add(session, settings, taxonomy, "b@example.org", status=BOUNCED, topics="attachment")


def _comparable(records: list[dict]) -> list[dict]:
    keep = ("email", "name", "status", "topics", "lists")
    return [{k: r[k] for k in keep} for r in records]


def test_export_csv_round_trip(session, multi, taxonomy, tmp_path: Path) -> None:
    _populate(session, multi, taxonomy)
    session.commit()
    stream = io.StringIO()
    assert import_export.export_csv(session, stream) == 5
    exported = stream.getvalue()
    assert exported.splitlines()[0] == "email,name,topics,lists,status"
    assert "Ann@example.org,Ann,empathy;training,digest,active" in exported

    other = settings_from_dict({"database": {"url": "sqlite:///other.db"}}, tmp_path)
    other.lists = multi.lists
    engine = db.make_engine(other.database.url)
    db.upgrade(engine)
    try:
        with db.transaction(engine) as copy:
            report = import_export.import_csv(copy, other, taxonomy, exported)
            assert report.added == 5
        with db.transaction(engine) as copy:
            assert _comparable(import_export.export_json(copy)) == _comparable(
                import_export.export_json(session)
            )
            again = io.StringIO()
            import_export.export_csv(copy, again)
            assert again.getvalue() == exported
    finally:
        engine.dispose()


def test_export_json(session, multi, taxonomy) -> None:
    _populate(session, multi, taxonomy)
    records = import_export.export_json(session)
    assert [r["email"] for r in records] == [
        "Ann@example.org",
        "bob@example.org",
        "pen@example.org",
        "many@example.org",
        "b@example.org",
    ]
    assert records[0]["topics"] == ["empathy", "training"]
    assert records[1]["topics"] == "*"
    assert records[1]["excluded_topics"] == []
    assert records[2]["lists"] == ["events"]
    assert records[2]["confirmed_at"] is None
    assert records[3]["lists"] == ["events"]
    assert set(records[0]) == {
        "email",
        "name",
        "status",
        "topics",
        "excluded_topics",
        "lists",
        "created_at",
        "confirmed_at",
        "unsubscribed_at",
        "consent_source",
    }


# --- PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_round_trip(postgres_url: str, multi: Settings, taxonomy: Taxonomy) -> None:
    schema = f"test_subscribers_{uuid.uuid4().hex[:10]}"
    admin = db.make_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = db.make_engine(postgres_url)

    @event.listens_for(engine, "connect", insert=True)
    def _search_path(dbapi_connection, _record) -> None:
        # Outside a transaction, so a rollback cannot undo it.
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f'SET search_path TO "{schema}"')
        dbapi_connection.autocommit = autocommit

    try:
        db.upgrade(engine)
        with db.transaction(engine) as session:
            _populate(session, multi, taxonomy)
            api.suppress(session, "ghost@example.org", "forget-me")
        with db.transaction(engine) as session:
            with pytest.raises(SubscriberError, match="already subscribed"):
                api.add_subscriber(session, multi, taxonomy, "ANN@EXAMPLE.ORG")
            assert api.is_suppressed(session, "Ghost@Example.org")
            assert [s.email for s in api.query_subscribers(session, search="AN")] == [
                "Ann@example.org",
                "many@example.org",
            ]
            assert len(api.query_subscribers(session, topic="empathy")) == 4
            stream = io.StringIO()
            import_export.export_csv(session, stream)
            before = _comparable(import_export.export_json(session))
        with db.transaction(engine) as session:
            for subscriber in api.query_subscribers(session):
                api.remove_subscriber(session, subscriber.email)
        with db.transaction(engine) as session:
            report = import_export.import_csv(session, multi, taxonomy, stream.getvalue())
            assert report.added == 5
        with db.transaction(engine) as session:
            assert _comparable(import_export.export_json(session)) == before
            with pytest.raises(ImportFileError, match="1 of 2 rows rejected"):
                import_export.import_csv(
                    session, multi, taxonomy, "email\nnew@example.org\nghost@example.org"
                )
            assert api.get_subscriber(session, "new@example.org") is None
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_search_folds_the_case_of_every_letter(session, settings, taxonomy) -> None:
    api.add_subscriber(session, settings, taxonomy, "emilie@example.org", name="Émilie Dubois")
    api.add_subscriber(session, settings, taxonomy, "zoe@example.org", name="ZOË")
    found = [s.email for s in api.query_subscribers(session, search="émilie")]
    assert found == ["emilie@example.org"]
    assert [s.email for s in api.query_subscribers(session, search="zoë")] == ["zoe@example.org"]
