"""Bounce scans: the policy, idempotence, identification, odd mail, the API, the CLI, PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_config
from conftest import write_config
from test_bounce_support import FLUFL
from test_bounce_support import NOW
from test_bounce_support import PEOPLE
from test_bounce_support import bounce_rows
from test_bounce_support import maildir
from test_bounce_support import mbox
from test_bounce_support import sample
from test_bounce_support import status
from test_bounce_support import verp_settings

from newsletter.cli import main
from newsletter.config import settings_from_dict
from newsletter.errors import MailboxError
from newsletter.message.envelope import envelope_sender
from newsletter.returns.bounces import scan
from newsletter.store import engine as db
from newsletter.store.bounces import HARD
from newsletter.store.bounces import apply_policy
from newsletter.store.bounces import bounce_counts
from newsletter.store.bounces import enhanced_status
from newsletter.store.bounces import list_bounces
from newsletter.store.bounces import record_bounce
from newsletter.store.subscribers import add_subscriber
from newsletter.store.subscribers import require_subscriber
from newsletter.store.subscribers import set_status
from newsletter.store.subscribers import unsubscribe

pytest_plugins = ["test_bounce_support"]

# --- scanning: the policy ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_hard_bounce_marks_bounced(tmp_path: Path, settings, engine, people, kind) -> None:
    make = maildir if kind == "maildir" else mbox
    path = make(tmp_path, sample("failed-5.1.1.eml"), sample("not-a-bounce.eml"))
    report = scan(path, settings, engine, now=NOW)
    assert report.messages == 2
    assert report.hard == 1
    assert report.bounced == ["ana@example.net"]
    assert report.ignored == [(report.ignored[0][0], "not a bounce report (no failed recipient)")]
    assert status(engine, "ana@example.net") == "bounced"
    assert status(engine, "ben@example.net") == "active"
    (row,) = bounce_rows(engine)
    assert (row.email, row.kind, row.status_code, row.source) == (
        "ana@example.net",
        "hard",
        "5.1.1",
        "dsn",
    )
    assert row.subscriber_id == people["ana@example.net"]
    assert row.received_at == NOW - dt.timedelta(days=1)
    assert "User unknown" in row.diagnostic


def test_three_soft_bounces_within_the_window(tmp_path: Path, settings, engine, people) -> None:
    reports = [sample("delayed-4.2.2.eml", days_ago=d) for d in (2, 9, 20)]
    report = scan(maildir(tmp_path, *reports), settings, engine, now=NOW)
    assert report.soft == 3
    assert report.bounced == ["ana@example.net"]
    assert status(engine, "ana@example.net") == "bounced"


def test_two_soft_bounces_stay_active(tmp_path: Path, settings, engine, people) -> None:
    reports = [sample("delayed-4.2.2.eml", days_ago=d) for d in (2, 9)]
    report = scan(mbox(tmp_path, *reports), settings, engine, now=NOW)
    assert report.soft == 2
    assert report.bounced == []
    assert status(engine, "ana@example.net") == "active"


def test_soft_bounces_older_than_the_window_do_not_count(
    tmp_path: Path, settings, engine, people
) -> None:
    reports = [sample("delayed-4.2.2.eml", days_ago=d) for d in (3, 10, 45, 90)]
    report = scan(maildir(tmp_path, *reports), settings, engine, now=NOW)
    assert report.soft == 4  # all recorded ...
    assert report.bounced == []  # ... but only two are recent
    assert status(engine, "ana@example.net") == "active"
    with db.transaction(engine) as session:
        counts = bounce_counts(session, settings, people["ana@example.net"], NOW)
    assert (counts.hard, counts.soft) == (0, 2)


def test_reports_about_one_message_count_once(tmp_path: Path, settings, engine, people) -> None:
    # Two "delayed" warnings and the final "failed 4.4.7" for the same digest.
    same = "<2025-01.1.same@example.org>"
    reports = [
        sample("delayed-4.2.2.eml", days_ago=6, original=same),
        sample("delayed-4.2.2.eml", days_ago=5, original=same),
        sample("failed-4.4.7.eml", days_ago=1, original=same),
    ]
    report = scan(maildir(tmp_path, *reports), settings, engine, now=NOW)
    assert report.soft == 3
    assert report.bounced == []
    assert status(engine, "ana@example.net") == "active"


def test_thresholds_come_from_config(tmp_path: Path, engine, people) -> None:
    settings = settings_from_dict(
        make_config(tmp_path, bounces={"soft_threshold": 2, "soft_window_days": 7}), tmp_path
    )
    reports = [sample("delayed-4.2.2.eml", days_ago=d) for d in (1, 6, 8)]
    report = scan(maildir(tmp_path, *reports), settings, engine, now=NOW)
    assert report.bounced == ["ana@example.net"]


def test_hard_threshold_of_two(tmp_path: Path, engine, people) -> None:
    settings = settings_from_dict(make_config(tmp_path, bounces={"hard_threshold": 2}), tmp_path)
    first = maildir(tmp_path, sample("failed-5.1.1.eml"), name="one")
    assert scan(first, settings, engine, now=NOW).bounced == []
    second = maildir(tmp_path, sample("failed-5.1.1.eml"), name="two")
    assert scan(second, settings, engine, now=NOW).bounced == ["ana@example.net"]


def test_unsubscribed_stays_unsubscribed(tmp_path: Path, settings, engine, people) -> None:
    with db.transaction(engine) as session:
        unsubscribe(session, require_subscriber(session, "ana@example.net"))
    report = scan(maildir(tmp_path, sample("failed-5.1.1.eml")), settings, engine, now=NOW)
    assert report.hard == 1
    assert report.bounced == []
    assert status(engine, "ana@example.net") == "unsubscribed"


def test_reactivated_subscriber_starts_anew(tmp_path: Path, settings, engine, people) -> None:
    scan(maildir(tmp_path, sample("failed-5.1.1.eml"), name="a"), settings, engine, now=NOW)
    late = maildir(tmp_path, sample("failed-5.1.1.eml", days_ago=0.5), name="b")
    assert scan(late, settings, engine, now=NOW).bounced == []  # already bounced
    with db.transaction(engine) as session:
        set_status(session, require_subscriber(session, "ana@example.net"), "active")
    soft = maildir(tmp_path, sample("delayed-4.2.2.eml", days_ago=0.1), name="c")
    assert scan(soft, settings, engine, now=NOW).bounced == []  # old hard bounces set aside
    assert status(engine, "ana@example.net") == "active"
    hard = maildir(tmp_path, sample("failed-5.1.1.eml", days_ago=0.1), name="d")
    assert scan(hard, settings, engine, now=NOW).bounced == ["ana@example.net"]
    assert all(row.applied_at is not None for row in bounce_rows(engine))


def test_bounced_subscribers_are_not_in_the_audience(
    tmp_path: Path, settings, engine, people
) -> None:
    from newsletter.store.audience import iter_audience

    scan(maildir(tmp_path, sample("failed-5.1.1.eml")), settings, engine, now=NOW)
    with db.transaction(engine) as session:
        audience = {m.email for m in iter_audience(session, ["digest"])}
    assert audience == {"ben@example.net", "cleo@example.net"}


# --- idempotence, identification, odd mail ------------------------------------------------


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_rescanning_counts_nothing_twice(tmp_path: Path, settings, engine, people, kind) -> None:
    make = maildir if kind == "maildir" else mbox
    reports = [sample("delayed-4.2.2.eml", days_ago=d, RECIPIENT="ben@example.net") for d in (1, 2)]
    path = make(tmp_path, *reports)
    first = scan(path, settings, engine, now=NOW)
    again = scan(path, settings, engine, now=NOW)
    assert (first.soft, first.duplicates) == (2, 0)
    assert (again.soft, again.duplicates, again.messages) == (0, 2, 2)
    assert len(bounce_rows(engine)) == 2
    assert status(engine, "ben@example.net") == "active"  # still 2, not 4


def test_maildir_messages_marked_seen(tmp_path: Path, settings, engine, people) -> None:
    path = maildir(tmp_path, sample("failed-5.1.1.eml"), sample("not-a-bounce.eml"))
    scan(path, settings, engine, now=NOW)
    assert len(list((path / "new").iterdir())) == 1  # the ordinary message stays unread
    (seen,) = (path / "cur").iterdir()
    assert seen.name.endswith(":2,S")
    # Still found (and not counted again) by the next scan.
    assert scan(path, settings, engine, now=NOW).duplicates == 1


def test_mbox_is_never_rewritten(tmp_path: Path, settings, engine, people) -> None:
    path = mbox(tmp_path, sample("failed-5.1.1.eml"))
    before = path.read_bytes()
    scan(path, settings, engine, now=NOW)
    assert path.read_bytes() == before


def test_verp_identifies_a_forwarded_address(tmp_path: Path, engine, people) -> None:
    settings = verp_settings(tmp_path)
    verp = envelope_sender(settings, people["cleo@example.net"], "cleo@example.net")
    report_bytes = sample("failed-5.1.1.eml", TO=verp, RECIPIENT="cleo.b@elsewhere.example")
    report = scan(maildir(tmp_path, report_bytes), settings, engine, now=NOW)
    assert [(r.email, r.by) for r in report.recorded] == [("cleo@example.net", "verp")]
    assert report.unknown == []
    assert report.bounced == ["cleo@example.net"]
    (row,) = bounce_rows(engine)
    assert row.source == "verp"
    assert "cleo.b@elsewhere.example" in row.diagnostic


def test_verp_identifies_a_report_without_recipient(tmp_path: Path, engine, people) -> None:
    settings = verp_settings(tmp_path)
    verp = envelope_sender(settings, people["ben@example.net"], "ben@example.net")
    path = maildir(tmp_path, sample("failed-no-recipient.eml", TO=f"Digest <{verp}>"))
    report = scan(path, settings, engine, now=NOW)
    assert report.bounced == ["ben@example.net"]
    assert bounce_rows(engine)[0].status_code == "5.0.0"


def test_verp_works_after_verp_is_turned_off(tmp_path: Path, settings, engine, people) -> None:
    verp = envelope_sender(verp_settings(tmp_path), people["ben@example.net"], "ben@example.net")
    path = maildir(tmp_path, sample("failed-no-recipient.eml", TO=verp))
    assert scan(path, settings, engine, now=NOW).bounced == ["ben@example.net"]


def test_stale_verp_token_falls_back_to_the_address(tmp_path: Path, engine, people) -> None:
    settings = verp_settings(tmp_path)
    # A token made for another address under Ana's id: the id is not trusted.
    stale = envelope_sender(settings, people["ana@example.net"], "old@example.net")
    path = maildir(tmp_path, sample("failed-5.1.1.eml", TO=stale, RECIPIENT="ben@example.net"))
    report = scan(path, settings, engine, now=NOW)
    assert report.bounced == ["ben@example.net"]
    assert status(engine, "ana@example.net") == "active"


def test_scan_records_a_report_without_from(tmp_path: Path, settings, engine, taxonomy) -> None:
    # The defect: flufl.bounce finds the address in simple_13, the scan said "not a bounce".
    with db.transaction(engine) as session:
        userx = add_subscriber(session, settings, taxonomy, "userx@example.fr").id
    path = maildir(tmp_path, (FLUFL / "simple_13.txt").read_bytes())
    report = scan(path, settings, engine, now=NOW)
    assert report.ignored == []
    assert [(r.email, r.kind, r.subscriber_id, r.by) for r in report.recorded] == [
        ("userx@example.fr", HARD, userx, "address")
    ]
    assert report.bounced == ["userx@example.fr"]
    assert status(engine, "userx@example.fr") == "bounced"
    (row,) = bounce_rows(engine)
    assert (row.email, row.kind, row.source, row.message_id) == (
        "userx@example.fr",
        HARD,
        "dsn",
        "N77056c0a550a010202b5c",
    )
    assert row.received_at == dt.datetime(2006, 3, 14, 12, 47, 54, tzinfo=dt.UTC)
    assert not list((path / "new").iterdir())  # recorded, so marked seen


def test_report_without_recipient_or_verp_is_ignored(
    tmp_path: Path, settings, engine, people
) -> None:
    report = scan(maildir(tmp_path, sample("failed-no-recipient.eml")), settings, engine, now=NOW)
    assert report.recorded == []
    assert "names no recipient" in report.ignored[0][1]


def test_unknown_recipients_are_reported(tmp_path: Path, settings, engine, people) -> None:
    path = mbox(
        tmp_path,
        sample("failed-5.1.1.eml", RECIPIENT="stranger@example.com"),
        sample("failed-5.1.1.eml"),
    )
    report = scan(path, settings, engine, now=NOW)
    assert report.unknown == [("#1", "stranger@example.com")]
    assert report.bounced == ["ana@example.net"]
    rows = bounce_rows(engine)
    assert [(r.email, r.subscriber_id) for r in rows] == [
        ("stranger@example.com", None),
        ("ana@example.net", people["ana@example.net"]),
    ]
    assert scan(path, settings, engine, now=NOW).unknown == []  # recorded: not reported twice


def test_dry_run_changes_nothing(tmp_path: Path, settings, engine, people) -> None:
    path = maildir(tmp_path, sample("failed-5.1.1.eml"))
    report = scan(path, settings, engine, now=NOW, dry_run=True)
    assert report.dry_run
    assert report.bounced == ["ana@example.net"]
    assert status(engine, "ana@example.net") == "active"
    assert bounce_rows(engine) == []
    assert len(list((path / "new").iterdir())) == 1


def test_not_a_mailbox(tmp_path: Path, settings, engine) -> None:
    with pytest.raises(MailboxError, match="not a Maildir"):
        scan(tmp_path, settings, engine)
    with pytest.raises(MailboxError, match="no such"):
        scan(tmp_path / "missing", settings, engine)


def test_empty_mailbox(tmp_path: Path, settings, engine) -> None:
    report = scan(maildir(tmp_path), settings, engine)
    assert (report.messages, report.recorded, report.ignored) == (0, [], [])


# --- the Python API the sender uses --------------------------------------------------------


def test_record_bounce_at_send_time(settings, engine, people) -> None:
    with db.transaction(engine) as session:
        ana = require_subscriber(session, "ana@example.net")
        row = record_bounce(
            session,
            email_address=ana.email,
            kind=HARD,
            message_id="<2025-01.1.x@example.org>",
            subscriber_id=ana.id,
            diagnostic="550 5.1.1 user unknown",
            source="smtp",
        )
        assert row is not None
        again = record_bounce(
            session,
            email_address=ana.email,
            kind=HARD,
            message_id="<2025-01.1.x@example.org>",
            subscriber_id=ana.id,
        )
        assert again is None
        assert apply_policy(session, settings, ana, NOW)
        assert ana.status == "bounced"
        with pytest.raises(ValueError, match="kind"):
            record_bounce(session, email_address="x@y.org", kind="maybe", message_id="<m>")


def test_list_bounces_by_address(tmp_path: Path, settings, engine, people) -> None:
    settings_verp = verp_settings(tmp_path)
    verp = envelope_sender(settings_verp, people["cleo@example.net"], "cleo@example.net")
    path = maildir(
        tmp_path,
        sample("failed-5.1.1.eml", days_ago=3),
        sample("failed-5.1.1.eml", TO=verp, RECIPIENT="cleo.b@elsewhere.example"),
    )
    scan(path, settings_verp, engine, now=NOW)
    with db.transaction(engine) as session:
        assert [b.email for b in list_bounces(session)] == ["cleo@example.net", "ana@example.net"]
        assert [b.email for b in list_bounces(session, "ANA@example.net")] == ["ana@example.net"]
        assert list_bounces(session, "nobody@example.net") == []


# --- CLI ---------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, runner: CliRunner):
    config = write_config(tmp_path)

    def invoke(*args: str):
        return runner.invoke(main, ["--config", str(config), *args])

    assert invoke("db", "upgrade").exit_code == 0
    for address in PEOPLE:
        assert invoke("subscribers", "add", address).exit_code == 0
    return invoke


def test_cli_bounces_scan_and_list(tmp_path: Path, cli) -> None:
    path = maildir(
        tmp_path,
        sample("failed-5.1.1.eml", days_ago=0),
        sample("delayed-4.2.2.eml", days_ago=0, RECIPIENT="ben@example.net"),
        sample("failed-5.1.1.eml", days_ago=0, RECIPIENT="stranger@example.com"),
        sample("not-a-bounce.eml"),
    )
    dry = cli("bounces", "scan", str(path), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output
    assert "ana@example.net" in dry.output
    result = cli("bounces", "scan", str(path))
    assert result.exit_code == 0, result.output
    assert "4 message(s)" in result.output
    assert "2 hard, 1 soft" in result.output
    assert "stranger@example.com (not a subscriber)" in result.output
    assert "now bounced: ana@example.net" in result.output
    listed = cli("bounces", "list", "--email", "ben@example.net")
    assert listed.exit_code == 0, listed.output
    assert "ben@example.net" in listed.output
    assert "4.2.2" in listed.output
    assert "ana@example.net" not in listed.output
    records = json.loads(cli("bounces", "list", "--format", "json").output)
    assert {r["email"] for r in records} == {
        "ana@example.net",
        "ben@example.net",
        "stranger@example.com",
    }
    subscribers = json.loads(cli("subscribers", "list", "--format", "json").output)
    assert {s["email"]: s["status"] for s in subscribers}["ana@example.net"] == "bounced"


LONG_ADDRESS = "a.very.long.local.part.that.goes.on.and.on@mail.department.example-university.ca"
LONG_DIAGNOSTIC = (
    "smtp; 550 5.1.1 <a.very.long.local.part@mail.department.example-university.ca>: "
    "Recipient address rejected: User unknown in virtual mailbox table; see "
    "https://postmaster.example-university.ca/bounces/5.1.1 for the reasons\tand the fix"
)


def test_cli_bounces_list_prints_whole_values_off_a_terminal(tmp_path: Path, cli) -> None:
    settings = settings_from_dict(make_config(tmp_path), tmp_path)  # the cli fixture's config
    engine = db.make_engine(settings.database.url)
    try:
        with db.transaction(engine) as session:
            record_bounce(
                session,
                email_address=LONG_ADDRESS,
                kind=HARD,
                message_id="<m1@example.org>",
                status_code="5.1.1",
                diagnostic=LONG_DIAGNOSTIC,
                received_at=NOW,
            )
    finally:
        engine.dispose()

    # CliRunner's stdout is no terminal: one tab-separated line a bounce, nothing cut or folded.
    table = cli("bounces", "list")
    assert table.exit_code == 0, table.output
    header, row = table.output.splitlines()
    assert header.split("\t") == ["received", "email", "kind", "status", "diagnostic", "source"]
    [cells] = csv.reader([row], delimiter="\t")
    assert cells[1:5] == [LONG_ADDRESS, "hard", "5.1.1", LONG_DIAGNOSTIC]
    assert "…" not in table.output

    listed = cli("bounces", "list", "--format", "csv")
    assert listed.exit_code == 0, listed.output
    [record] = csv.DictReader(io.StringIO(listed.output))
    assert (record["email"], record["diagnostic"]) == (LONG_ADDRESS, LONG_DIAGNOSTIC)
    assert record["message_id"] == "<m1@example.org>"
    [record] = json.loads(cli("bounces", "list", "--format", "json").output)
    assert (record["email"], record["diagnostic"]) == (LONG_ADDRESS, LONG_DIAGNOSTIC)


def test_cli_bounces_scan_bad_path(tmp_path: Path, cli) -> None:
    (tmp_path / "folder").mkdir()
    result = cli("bounces", "scan", str(tmp_path / "folder"))
    assert result.exit_code == 1
    assert "not a Maildir" in result.output


# --- PostgreSQL --------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_scan_and_policy(tmp_path: Path, settings, taxonomy, pg_engine) -> None:
    with db.transaction(pg_engine) as session:
        for address in PEOPLE:
            add_subscriber(session, settings, taxonomy, address)
    same = "<2025-01.2.same@example.org>"
    path = maildir(
        tmp_path,
        sample("failed-5.1.1.eml"),
        sample("delayed-4.2.2.eml", days_ago=3, RECIPIENT="ben@example.net", original=same),
        sample("failed-4.4.7.eml", days_ago=1, RECIPIENT="ben@example.net", original=same),
        sample("delayed-4.2.2.eml", days_ago=2, RECIPIENT="ben@example.net"),
        sample("failed-5.1.1.eml", RECIPIENT="stranger@example.com"),
    )
    report = scan(path, settings, pg_engine, now=NOW)
    assert (report.hard, report.soft, report.bounced) == (2, 3, ["ana@example.net"])
    assert scan(path, settings, pg_engine, now=NOW).duplicates == 5
    with db.transaction(pg_engine) as session:
        ben = require_subscriber(session, "ben@example.net")
        counts = bounce_counts(session, settings, ben.id, NOW)
        assert (counts.hard, counts.soft, ben.status) == (0, 2, "active")
        assert len(list_bounces(session, "BEN@example.net")) == 3


MANGLED = [
    b"",
    b"\x00\xff\xfe binary junk\n\n\x80\x81",
    b"Subject: =?utf-8?q?broken=ZZ?=\nFrom: =?x-unknown?b?AAAA?=\nDate: yesterday\n\nhi\n",
    (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=X\n"
        b"Message-ID: <m1@x>\n\n--X\nContent-Type: message/delivery-status\n\n"
        b"Action: failed\nFinal-Recipient: rfc822\nStatus: 5.1.1 extra\n"
    ),
    (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=Y\n\n"
        b"--Y\nContent-Type: message/rfc822\n\nnot really a message\n--Y\n"
        b"Content-Type: text/rfc822-headers\nContent-Transfer-Encoding: base64\n\n!!!\n--Y--\n"
    ),
]


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_mangled_mail_does_not_stop_a_scan(tmp_path: Path, settings, engine, people, kind) -> None:
    make = maildir if kind == "maildir" else mbox
    path = make(tmp_path, *MANGLED, sample("failed-5.1.1.eml"))
    report = scan(path, settings, engine, now=NOW)
    assert report.bounced == ["ana@example.net"]
    assert report.messages == len(MANGLED) + 1


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ("550 5.1.1 <ana@example.net>: user unknown", "5.1.1"),
        ("553 sorry, that domain isn't in my list of allowed rcpthosts", "5.0.0"),
        ("451 4.3.0 try later", "4.3.0"),
        ("", ""),
    ],
)
def test_send_time_bounces_carry_a_status(reply: str, status: str) -> None:
    assert enhanced_status(reply) == status
