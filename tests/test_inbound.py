"""`newsletter inbound scan`: unsubscribe requests sent to the List-Unsubscribe mailto address."""

from __future__ import annotations

import email
import email.policy
import re
import urllib.parse
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TEST_SECRET
from conftest import write_config
from test_bounce_support import maildir
from test_bounce_support import mbox
from test_bounce_support import sample

from newsletter.cli import main
from newsletter.content.reader import load_issue
from newsletter.errors import MailboxError
from newsletter.message.preview import preview_parts
from newsletter.personalize import make_recipient
from newsletter.returns.mailbox import read_mailbox
from newsletter.returns.unsubscribe import parse_request
from newsletter.returns.unsubscribe import scan
from newsletter.store import engine as db
from newsletter.store.subscribers import add_subscriber
from newsletter.store.subscribers import require_subscriber
from newsletter.store.subscribers import unsubscribe
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer

PEOPLE = ("ana@example.net", "ben@example.net", "cleo@example.net")
MAILTO = "unsubscribe@example.org"


@pytest.fixture
def people(engine, settings, taxonomy) -> dict[str, int]:
    with db.transaction(engine) as session:
        return {
            address: add_subscriber(session, settings, taxonomy, address).id for address in PEOPLE
        }


def token(subscriber_id: int, address: str, purpose: str = UNSUBSCRIBE) -> str:
    return Signer(TEST_SECRET).make(purpose, subscriber_id, address)


def request(sender: str, subject: str, body: str = "Sent from my phone") -> bytes:
    return sample("unsubscribe-request.eml", FROM=sender, TO=MAILTO, SUBJECT=subject, BODY=body)


def status(engine, address: str) -> str:
    with db.transaction(engine) as session:
        return require_subscriber(session, address).status


# --- reading a request (pure) ------------------------------------------------------------


def test_parse_request_subject_and_body() -> None:
    assert parse_request(request("a@x.org", "unsubscribe abcdefghijklmnopqrstuvwxyz")).token == (
        "abcdefghijklmnopqrstuvwxyz"
    )
    encoded = parse_request(request("a@x.org", "unsubscribe%20abcdefghij.klmnop-qrstu_vw"))
    assert encoded.token == "abcdefghij.klmnop-qrstu_vw"
    by_body = parse_request(request("a@x.org", "", body="\n  Unsubscribe abcdefghijklmnopqrstu\n"))
    assert (by_body.asks, by_body.token) == (True, "abcdefghijklmnopqrstu")
    plain = parse_request(request("Ana <Ana@Example.net>", "Please UNSUBSCRIBE me"))
    assert (plain.asks, plain.token, plain.sender) == (True, None, "Ana@Example.net")
    other = parse_request(request("a@x.org", "Re: the January digest", body="Thanks!"))
    assert (other.asks, other.automatic) == (False, "")


def test_parse_request_spots_automatic_mail() -> None:
    auto = parse_request(sample("auto-reply.eml", TO=MAILTO, SUBJECT="unsubscribe abc"))
    assert "Auto-Submitted" in auto.automatic
    assert parse_request(sample("failed-5.1.1.eml")).automatic
    bulk = request("a@x.org", "unsubscribe").replace(b"Subject:", b"Precedence: bulk\nSubject:")
    assert "Precedence" in parse_request(bulk).automatic


# --- scanning ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_token_in_subject_unsubscribes(tmp_path: Path, settings, engine, people, kind: str) -> None:
    make = maildir if kind == "maildir" else mbox
    ben = token(people["ben@example.net"], "ben@example.net")
    # Sent from another address (an alias, a forwarding account): the token decides.
    path = make(tmp_path, request("ben.alias@elsewhere.example", f"unsubscribe {ben}"))
    report = scan(path, settings, engine)
    assert report.messages == 1
    assert [(address, how) for _, address, how in report.unsubscribed] == [
        ("ben@example.net", "token")
    ]
    assert status(engine, "ben@example.net") == "unsubscribed"
    assert status(engine, "ana@example.net") == "active"


def test_mailto_from_a_real_digest(tmp_path: Path, settings, engine, people, taxonomy) -> None:
    """What a mail client sends for the List-Unsubscribe mailto of a digest we built."""
    issue = load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)
    cleo_id = people["cleo@example.net"]
    recipient = make_recipient(settings, "cleo@example.net", "Cleo", None, cleo_id)
    digest = preview_parts(settings, issue, recipient, subscriber_id=cleo_id).eml
    header = email.message_from_bytes(digest, policy=email.policy.default)["List-Unsubscribe"]
    mailto = re.search(r"<mailto:([^?>]+)\?subject=([^>]+)>", str(header))
    assert mailto is not None
    to, subject = mailto.group(1), urllib.parse.unquote(mailto.group(2))
    assert to == settings.newsletter.from_email  # no unsubscribe_mailto configured
    message = sample(
        "unsubscribe-request.eml", FROM="cleo@example.net", TO=to, SUBJECT=subject, BODY=""
    )
    report = scan(maildir(tmp_path, message), settings, engine)
    assert [how for _, _, how in report.unsubscribed] == ["token"]
    assert status(engine, "cleo@example.net") == "unsubscribed"


def test_token_in_first_body_line(tmp_path: Path, settings, engine, people) -> None:
    ana = token(people["ana@example.net"], "ana@example.net")
    path = mbox(tmp_path, request("someone@else.example", "", body=f"unsubscribe {ana}"))
    assert len(scan(path, settings, engine).unsubscribed) == 1
    assert status(engine, "ana@example.net") == "unsubscribed"


def test_sender_address_without_token(tmp_path: Path, settings, engine, people) -> None:
    path = maildir(tmp_path, request("Ana Reader <ANA@example.net>", "unsubscribe"))
    report = scan(path, settings, engine)
    assert [(address, how) for _, address, how in report.unsubscribed] == [
        ("ana@example.net", "sender")
    ]
    assert status(engine, "ana@example.net") == "unsubscribed"


def test_invalid_token_falls_back_to_the_sender(tmp_path: Path, settings, engine, people) -> None:
    forged = token(people["ana@example.net"], "ana@example.net")[:-4] + "AAAA"
    preferences = token(people["cleo@example.net"], "cleo@example.net", PREFERENCES)
    path = maildir(
        tmp_path,
        request("ben@example.net", f"unsubscribe {forged}"),
        request("stranger@example.com", f"unsubscribe {forged}"),
        request("stranger@example.com", f"unsubscribe {preferences}"),
    )
    report = scan(path, settings, engine)
    assert [(a, how) for _, a, how in report.unsubscribed] == [("ben@example.net", "sender")]
    assert status(engine, "ana@example.net") == "active"  # the forged token named Ana
    assert status(engine, "cleo@example.net") == "active"  # a token for another purpose
    reasons = [reason for _, reason in report.ignored]
    assert len(reasons) == 2
    assert all("token is not valid" in r and "not a subscriber" in r for r in reasons)


def test_token_for_a_changed_address(tmp_path: Path, settings, engine, people) -> None:
    old = token(people["ana@example.net"], "ana.old@example.net")
    report = scan(maildir(tmp_path, request("x@y.example", f"unsubscribe {old}")), settings, engine)
    assert "no longer matches" in report.ignored[0][1]
    assert status(engine, "ana@example.net") == "active"


def test_test_message_token(tmp_path: Path, settings, engine, people) -> None:
    test = token(0, "editor@example.org")
    report = scan(
        maildir(tmp_path, request("editor@example.org", f"unsubscribe {test}")), settings, engine
    )
    assert "test message" in report.ignored[0][1]


def test_ignored_messages_change_nothing(tmp_path: Path, settings, engine, people) -> None:
    ana = token(people["ana@example.net"], "ana@example.net")
    path = maildir(
        tmp_path,
        request("ana@example.net", "Re: January digest", body="Loved the CBT summary."),
        sample("auto-reply.eml", FROM="ana@example.net", TO=MAILTO, SUBJECT=f"unsubscribe {ana}"),
        sample("failed-5.1.1.eml", TO=MAILTO),
        request("", "unsubscribe").replace(b"From: \n", b""),
    )
    report = scan(path, settings, engine)
    assert report.messages == 4
    assert report.unsubscribed == []
    reasons = sorted(reason for _, reason in report.ignored)
    assert reasons == [
        "a delivery or read report",
        "automatic message (Auto-Submitted: auto-replied)",
        "not an unsubscribe request",
        "the message has no From address",
    ]
    assert status(engine, "ana@example.net") == "active"
    assert len(list((path / "new").iterdir())) == 4  # left unread for a person to see


def test_already_unsubscribed_or_bounced(tmp_path: Path, settings, engine, people) -> None:
    with db.transaction(engine) as session:
        unsubscribe(session, require_subscriber(session, "ana@example.net"))
        require_subscriber(session, "ben@example.net").status = "bounced"
    path = maildir(
        tmp_path,
        request("ana@example.net", "unsubscribe"),
        request("ben@example.net", "unsubscribe"),
    )
    report = scan(path, settings, engine)
    assert report.unsubscribed == []
    assert sorted((a, s) for _, a, s in report.already) == [
        ("ana@example.net", "unsubscribed"),
        ("ben@example.net", "bounced"),
    ]
    assert status(engine, "ben@example.net") == "bounced"


def test_dry_run_and_rescan(tmp_path: Path, settings, engine, people) -> None:
    path = maildir(tmp_path, request("cleo@example.net", "unsubscribe"))
    dry = scan(path, settings, engine, dry_run=True)
    assert len(dry.unsubscribed) == 1
    assert status(engine, "cleo@example.net") == "active"
    assert len(list((path / "new").iterdir())) == 1
    scan(path, settings, engine)
    assert status(engine, "cleo@example.net") == "unsubscribed"
    (seen,) = (path / "cur").iterdir()
    assert seen.name.endswith(":2,S")
    again = scan(path, settings, engine)  # harmless: already unsubscribed
    assert (again.messages, again.unsubscribed, len(again.already)) == (1, [], 1)


def test_read_mailbox_errors_and_order(tmp_path: Path) -> None:
    with pytest.raises(MailboxError, match="not a Maildir"):
        list(read_mailbox(tmp_path))
    with pytest.raises(MailboxError, match="no such"):
        list(read_mailbox(tmp_path / "nope"))
    not_mail = tmp_path / "report.pdf"
    not_mail.write_bytes(b"%PDF-1.7 not a mailbox")
    with pytest.raises(MailboxError, match="not an mbox file"):
        list(read_mailbox(not_mail))
    empty = tmp_path / "empty.mbox"
    empty.write_bytes(b"")
    assert list(read_mailbox(empty)) == []
    path = mbox(
        tmp_path, b"From: a@x.org\nSubject: one\n\n1\n", b"From: b@x.org\nSubject: two\n\n2\n"
    )
    assert [item.key for item in read_mailbox(path)] == ["#1", "#2"]


# --- CLI ---------------------------------------------------------------------------------


def test_cli_inbound_scan(tmp_path: Path, runner: CliRunner) -> None:
    config = write_config(tmp_path)

    def invoke(*args: str):
        return runner.invoke(main, ["--config", str(config), *args])

    assert invoke("db", "upgrade").exit_code == 0
    for address in PEOPLE:
        assert invoke("subscribers", "add", address).exit_code == 0
    path = mbox(
        tmp_path,
        request("ana@example.net", "unsubscribe"),
        request("stranger@example.com", "unsubscribe"),
        request("ben@example.net", "Question about the digest"),
    )
    dry = invoke("inbound", "scan", str(path), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would unsubscribe ana@example.net (by sender)" in dry.output
    result = invoke("inbound", "scan", str(path))
    assert result.exit_code == 0, result.output
    assert "3 message(s): 1 unsubscribed, 0 already off the list, 2 ignored" in result.output
    assert "#2: ignored: the sender stranger@example.com is not a subscriber" in result.output
    assert "#3: ignored: not an unsubscribe request" in result.output
    listed = invoke("subscribers", "list", "--status", "unsubscribed")
    assert "ana@example.net" in listed.output
    missing = invoke("inbound", "scan", str(tmp_path / "missing"))
    assert missing.exit_code == 2  # click: the path does not exist


def test_mangled_mail_does_not_stop_a_scan(tmp_path: Path, settings, engine, people) -> None:
    from test_bounce_scan import MANGLED

    path = maildir(tmp_path, *MANGLED, request("ana@example.net", "unsubscribe"))
    report = scan(path, settings, engine)
    assert [a for _, a, _ in report.unsubscribed] == ["ana@example.net"]
    assert len(report.ignored) == len(MANGLED)
