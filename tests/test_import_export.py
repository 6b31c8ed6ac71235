"""Subscriber import and export: CSV and JSON files, their errors by line, round trips."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.config import settings_from_dict
from newsletter.content.choice import TopicChoice
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import ImportFileError
from newsletter.errors import SubscriberError
from newsletter.store import engine as db
from newsletter.store import import_export
from newsletter.store import subscribers as api
from newsletter.store.models import ACTIVE
from newsletter.store.models import BOUNCED
from newsletter.store.models import PENDING
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import MailingList
from newsletter.store.models import Subscriber
from newsletter.store.models import SubscriberTopic


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def slugs(subscriber: Subscriber) -> frozenset[str] | None:
    return subscriber.topic_slugs


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
    # Blank cells keep what is stored: a blank status never confirms a pending address.
    assert (pat.status, api.subscribed_lists(pat), slugs(pat)) == (PENDING, ["digest"], None)
    assert pat.confirmed_at is None


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
    # Non-ASCII names, labels with commas, a consent record from the web form.
    add(
        session,
        settings,
        taxonomy,
        "zoe@example.org",
        name="Zoë Ångström-Łukasz, 李",
        topics="Attendance, Attrition, and Drop-Out;Trauma and/or PTSD",
        source="web",
        ip="2001:db8::1",
        status=PENDING,
    )
    api.confirm(session, api.require_subscriber(session, "zoe@example.org"), ip="203.0.113.9")
    gone = add(session, settings, taxonomy, "gone@example.org", name="Gone")
    api.unsubscribe(session, gone)  # left every list: its subscription rows stay, unsubscribed
    nowhere = add(session, settings, taxonomy, "nowhere@example.org", lists=[])
    api.set_topics(session, nowhere, TopicChoice.every({"empathy"}))


EMAILS = [
    "Ann@example.org",
    "bob@example.org",
    "pen@example.org",
    "many@example.org",
    "b@example.org",
    "zoe@example.org",
    "gone@example.org",
    "nowhere@example.org",
]


def _exports(session) -> tuple[str, list[dict]]:
    stream = io.StringIO()
    import_export.export_csv(session, stream)
    return stream.getvalue(), import_export.export_json(session)


def _empty_copy(tmp_path: Path, settings: Settings):
    """An engine on a new, migrated, empty SQLite database with the same lists."""
    other = settings_from_dict({"database": {"url": "sqlite:///other.db"}}, tmp_path)
    engine = db.make_engine(other.database.url)
    db.upgrade(engine)
    return engine


def test_export_csv_round_trip(session, multi, taxonomy, tmp_path: Path) -> None:
    _populate(session, multi, taxonomy)
    session.commit()
    exported, records = _exports(session)
    lines = exported.splitlines()
    assert lines[0] == ",".join(import_export.CSV_COLUMNS)
    assert lines[0].startswith("email,name,topics,lists,status,created_at,confirmed_at,")
    rows = {row["email"]: row for row in csv.DictReader(io.StringIO(exported))}
    assert list(rows) == EMAILS
    assert rows["Ann@example.org"]["topics"] == "empathy;training"
    assert rows["many@example.org"]["lists"] == "events;-digest"
    assert rows["gone@example.org"]["lists"] == "-digest"
    assert rows["nowhere@example.org"]["lists"] == "-"
    assert rows["nowhere@example.org"]["topics"] == "*;-empathy"
    zoe = rows["zoe@example.org"]
    assert zoe["topics"] == "attendance-attrition-and-drop-out;trauma-and-or-ptsd"
    assert (zoe["consent_source"], zoe["consent_ip"]) == ("web", "203.0.113.9")
    assert zoe["created_at"].endswith("+00:00") and zoe["confirmed_at"] > zoe["created_at"]
    assert rows["gone@example.org"]["unsubscribed_at"]

    engine = _empty_copy(tmp_path, multi)
    try:
        with db.transaction(engine) as copy:
            report = import_export.import_csv(copy, multi, taxonomy, exported)
            assert report.added == len(EMAILS)
        with db.transaction(engine) as copy:
            # The same file, consent record included: a backup restores the proof of consent.
            assert _exports(copy) == (exported, records)
    finally:
        engine.dispose()


def test_export_json_round_trip(session, multi, taxonomy, tmp_path: Path) -> None:
    _populate(session, multi, taxonomy)
    session.commit()
    exported, records = _exports(session)
    text = json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    assert import_export.detect_format(text) == "json"
    assert import_export.detect_format(text, "backup.JSON") == "json"
    engine = _empty_copy(tmp_path, multi)
    try:
        with db.transaction(engine) as copy:
            report = import_export.import_subscribers(copy, multi, taxonomy, text.encode())
            assert report.added == len(EMAILS)
        with db.transaction(engine) as copy:
            assert _exports(copy) == (exported, records)
    finally:
        engine.dispose()


def test_export_json(session, multi, taxonomy) -> None:
    _populate(session, multi, taxonomy)
    records = import_export.export_json(session)
    assert [r["email"] for r in records] == EMAILS
    assert records[0]["topics"] == ["empathy", "training"]
    assert records[1]["topics"] == "*"
    assert records[1]["excluded_topics"] == []
    assert records[2]["lists"] == ["events"]
    assert records[2]["confirmed_at"] is None
    assert records[3]["lists"] == ["events"]
    assert records[3]["unsubscribed_lists"] == ["digest"]
    assert records[5]["consent_ip"] == "203.0.113.9"
    assert set(records[0]) == {
        "email",
        "name",
        "status",
        "topics",
        "excluded_topics",
        "lists",
        "unsubscribed_lists",
        "created_at",
        "confirmed_at",
        "unsubscribed_at",
        "consent_source",
        "consent_ip",
    }


def test_update_existing_never_clears_a_field_from_a_blank_cell(session, multi, taxonomy) -> None:
    _populate(session, multi, taxonomy)
    session.commit()
    before, records = _exports(session)
    # Every subscriber, every column, every cell but the address blank.
    blank = ",".join(import_export.CSV_COLUMNS) + "\n"
    blank += "".join(email + "," * (len(import_export.CSV_COLUMNS) - 1) + "\n" for email in EMAILS)
    report = import_export.import_csv(session, multi, taxonomy, blank, update_existing=True)
    assert report.updated == len(EMAILS)
    session.commit()
    assert _exports(session) == (before, records)
    # The same in JSON: null is a blank cell.
    nulls = [{key: None for key in import_export.CSV_COLUMNS} | {"email": e} for e in EMAILS]
    import_export.import_subscribers(
        session, multi, taxonomy, json.dumps(nulls), fmt="json", update_existing=True
    )
    session.commit()
    assert _exports(session) == (before, records)


def test_update_existing_changes_only_the_cells_given(session, multi, taxonomy) -> None:
    _populate(session, multi, taxonomy)
    zoe = api.require_subscriber(session, "zoe@example.org")
    consent = (zoe.created_at, zoe.confirmed_at, zoe.consent_source, zoe.consent_ip)
    data = (
        "email,name,topics,lists,status,created_at,consent_source,consent_ip\n"
        "zoe@example.org,,Empathy,,,2001-01-01T00:00:00+00:00,import,10.0.0.1\n"
        "pen@example.org,Pen,,events;-digest,,,,\n"
        "many@example.org,,,-,unsubscribed,,,\n"
    )
    import_export.import_csv(session, multi, taxonomy, data, update_existing=True)
    assert (zoe.name, slugs(zoe), zoe.status) == ("Zoë Ångström-Łukasz, 李", {"empathy"}, ACTIVE)
    # An import never rewrites the consent record of a subscriber already there.
    assert (zoe.created_at, zoe.confirmed_at, zoe.consent_source, zoe.consent_ip) == consent
    pen = api.require_subscriber(session, "pen@example.org")
    assert (pen.name, pen.status, api.subscribed_lists(pen)) == ("Pen", PENDING, ["events"])
    assert import_export.lists_cell(pen) == "events;-digest"
    many = api.require_subscriber(session, "many@example.org")
    assert (many.status, api.subscribed_lists(many)) == (UNSUBSCRIBED, [])


def test_import_reads_labels_with_commas_and_the_consent_record(session, multi, taxonomy) -> None:
    data = (
        "email,name,topics,lists,status,created_at,confirmed_at,consent_source,consent_ip\n"
        'ana@example.org,Ana Pérez,"Attendance, Attrition, and Drop-Out;Empathy",events;-digest,'
        "active,2019-05-01T10:00:00Z,2019-05-02 11:30:00,paper form,\n"
        "nat@example.org,,,,,2019-05-01,,,\n"
    )
    import_export.import_csv(session, multi, taxonomy, data)
    ana = api.require_subscriber(session, "ana@example.org")
    assert slugs(ana) == {"attendance-attrition-and-drop-out", "empathy"}
    assert api.subscribed_lists(ana) == ["events"]
    assert import_export.lists_cell(ana) == "events;-digest"
    assert ana.created_at.isoformat() == "2019-05-01T10:00:00+00:00"
    assert ana.confirmed_at.isoformat() == "2019-05-02T11:30:00+00:00"  # naive: UTC
    assert (ana.consent_source, ana.consent_ip) == ("paper form", "")
    nat = api.require_subscriber(session, "nat@example.org")
    assert nat.created_at.isoformat() == "2019-05-01T00:00:00+00:00"
    assert nat.consent_source == "import" and nat.confirmed_at is not None


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ("x@example.org,,,,,yesterday,", "created_at 'yesterday' is not an ISO 8601 date"),
        ("x@example.org,,,digest;-digest,,,", "'digest' is both subscribed and left"),
        ("x@example.org,,,-nope,,,", "unknown list 'nope'"),
        ("x@example.org,,,,,," + "s" * 51, "consent_source is longer than 50 characters"),
    ],
)
def test_import_rejects_a_bad_consent_record(session, multi, taxonomy, cells, reason) -> None:
    data = "email,name,topics,lists,status,created_at,consent_source\n" + cells + "\n"
    with pytest.raises(ImportFileError) as caught:
        import_export.import_csv(session, multi, taxonomy, data)
    [(line, why)] = caught.value.rejected
    assert line == 2 and reason in why


def test_json_import_names_the_line_of_each_bad_record(session, multi, taxonomy) -> None:
    text = (
        "[\n"
        '  {"email": "ok@example.org", "topics": ["empathy"], "lists": ["events"]},\n'
        '  {"email": "not-an-address"},\n'
        '  {"email": "t@example.org",\n   "topics": "empaty"},\n'
        '  {"email": "p@example.org", "phone": "1"},\n'
        '  {"email": "n@example.org", "name": 7}\n'
        "]\n"
    )
    with pytest.raises(ImportFileError) as caught:
        import_export.import_subscribers(session, multi, taxonomy, text)
    assert [line for line, _ in caught.value.rejected] == [3, 4, 6, 7]
    reasons = " | ".join(reason for _, reason in caught.value.rejected)
    assert "invalid email address 'not-an-address'" in reasons
    assert "unknown topic 'empaty'" in reasons
    assert "unknown field 'phone'" in reasons
    assert "'name' must be a string" in reasons
    for broken, where in (("[{]", "line 1: invalid JSON"), ('{"email": 1}', "line 1: a JSON")):
        with pytest.raises(ImportFileError, match=where):
            import_export.import_subscribers(session, multi, taxonomy, broken, fmt="json")
    report = import_export.import_subscribers(
        session, multi, taxonomy, text, skip_invalid=True, filename="x.json"
    )
    assert report.added == 1
    ok = api.require_subscriber(session, "ok@example.org")
    assert (slugs(ok), api.subscribed_lists(ok), ok.consent_source) == (
        {"empathy"},
        ["events"],
        "import",
    )


# --- PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_round_trip(pg_engine, multi: Settings, taxonomy: Taxonomy, engine) -> None:
    with db.transaction(pg_engine) as session:
        _populate(session, multi, taxonomy)
        api.suppress(session, "ghost@example.org", "forget-me")
    with db.transaction(pg_engine) as session:
        with pytest.raises(SubscriberError, match="already subscribed"):
            api.add_subscriber(session, multi, taxonomy, "ANN@EXAMPLE.ORG")
        assert api.is_suppressed(session, "Ghost@Example.org")
        assert [s.email for s in api.query_subscribers(session, search="AN")] == [
            "Ann@example.org",
            "many@example.org",
        ]
        assert [s.email for s in api.query_subscribers(session, search="ångström")] == [
            "zoe@example.org"
        ]
        exported, records = _exports(session)
    text = json.dumps(records, ensure_ascii=False)
    for data in (exported, text):
        with db.transaction(pg_engine) as session:
            for subscriber in api.query_subscribers(session):
                api.remove_subscriber(session, subscriber.email)
        with db.transaction(pg_engine) as session:
            report = import_export.import_subscribers(session, multi, taxonomy, data)
            assert report.added == len(EMAILS)
        with db.transaction(pg_engine) as session:
            assert _exports(session) == (exported, records)
    # A PostgreSQL backup restores into SQLite, and back, as the same file.
    with db.transaction(engine) as session:
        import_export.import_csv(session, multi, taxonomy, exported)
    with db.transaction(engine) as session:
        assert _exports(session) == (exported, records)
    with db.transaction(pg_engine) as session:
        with pytest.raises(ImportFileError, match="1 of 2 rows rejected"):
            import_export.import_csv(
                session, multi, taxonomy, "email\nnew@example.org\nghost@example.org"
            )
        assert api.get_subscriber(session, "new@example.org") is None
