"""Transports against real targets: a list, a Maildir folder and a live aiosmtpd server."""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import Envelope
from smtp_sink import Fault
from smtp_sink import SmtpSink
from smtp_sink import TlsMode
from smtp_sink import get_free_port
from smtp_sink import make_certificates
from smtp_sink import running_sink

from newsletter.config import settings_from_dict
from newsletter.errors import PermanentFailure
from newsletter.errors import TemporaryFailure
from newsletter.errors import TransportError
from newsletter.message.wire import smtp_data
from newsletter.transport import make_transport
from newsletter.transport.maildir import MaildirTransport
from newsletter.transport.memory import MemoryTransport
from newsletter.transport.smtp import SmtpTransport

SENDER = "bounces@example.org"

# A line that is only ".", and lines starting with dots, must survive SMTP dot-stuffing.
MESSAGE = (
    b"From: Research Digest <digest@example.org>\n"
    b"To: reader@example.org\n"
    b"Subject: Research Digest - March\n"
    b"Message-ID: <test-1@example.org>\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: 8bit\n"
    b"\n"
    b"Three summaries this month.\n"
    b".\n"
    b".leading dot\n"
    b"..two dots\n"
    b"Caf\xc3\xa9 and na\xc3\xafve readers.\n"
)
ASCII_MESSAGE = b"From: digest@example.org\nTo: reader@example.org\nSubject: Hi\n\nHello.\n"


def crlf(message: bytes) -> bytes:
    return message.replace(b"\n", b"\r\n")


def answer(reply: str, phase: str, address: str | None = None) -> Fault:
    """A fault that answers `reply` at `phase`, for every address or only for `address`."""

    def fault(envelope: Envelope, current: str, current_address: str) -> str | None:
        who = current_address if current != "DATA" else ",".join(envelope.rcpt_tos)
        if current == phase and address in (None, who):
            return reply
        return None

    return fault


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def sink(request: pytest.FixtureRequest) -> Iterator[SmtpSink]:
    """Every SMTP test against a server that offers PIPELINING and one that does not."""
    with running_sink(pipelining=request.param) as server:
        yield server


def smtp_to(sink: SmtpSink, **options: Any) -> SmtpTransport:
    options.setdefault("timeout", 5.0)
    options.setdefault("local_hostname", "client.test")
    return SmtpTransport(sink.host, sink.port, **options)


# --- memory -------------------------------------------------------------------------------


def test_memory_keeps_messages_in_order() -> None:
    with MemoryTransport() as transport:
        first = transport.send(SENDER, "a@example.org", MESSAGE)
        second = transport.send(SENDER, "b@example.org", ASCII_MESSAGE)
    assert (first, second) == ("memory 1", "memory 2")
    assert [m.recipient for m in transport.outbox] == ["a@example.org", "b@example.org"]
    assert transport.outbox[0].message == MESSAGE
    assert transport.outbox[0].envelope_from == SENDER


def test_memory_fail_hook_raises_per_recipient() -> None:
    def fail(recipient: str) -> Exception | None:
        if recipient == "gone@example.org":
            return PermanentFailure("no such user", code=550, reply="5.1.1 no such user")
        return None

    transport = MemoryTransport(fail=fail)
    with pytest.raises(PermanentFailure) as caught:
        transport.send(SENDER, "gone@example.org", MESSAGE)
    assert caught.value.code == 550
    transport.send(SENDER, "here@example.org", MESSAGE)
    assert [m.recipient for m in transport.outbox] == ["here@example.org"]


# --- Maildir ------------------------------------------------------------------------------


def test_maildir_writes_bytes_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "outbox"
    with MaildirTransport(path) as transport:
        receipts = [
            transport.send(SENDER, "a@example.org", MESSAGE),
            transport.send(SENDER, "b@example.org", ASCII_MESSAGE),
        ]
    assert {p.name for p in path.iterdir()} == {"cur", "new", "tmp"}
    assert all(r.startswith("maildir ") for r in receipts)
    box = mailbox.Maildir(path, create=False)
    keys = [r.removeprefix("maildir ") for r in receipts]
    assert sorted(box.keys()) == sorted(keys)
    assert box.get_bytes(keys[0]) == MESSAGE  # identical, LF endings kept
    assert b"\r" not in (path / "new" / keys[0]).read_bytes()
    parsed = email.message_from_bytes(box.get_bytes(keys[0]), policy=email.policy.default)
    assert parsed["Subject"] == "Research Digest - March"
    assert "Café and naïve readers." in parsed.get_content()


def test_maildir_write_error_is_temporary(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the Maildir should be")
    transport = MaildirTransport(blocker)
    with pytest.raises(TemporaryFailure, match="Maildir"):
        transport.send(SENDER, "a@example.org", MESSAGE)
    transport.close()


# --- make_transport -----------------------------------------------------------------------


def test_make_transport_follows_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def settings(**delivery: object) -> object:
        data = {
            "delivery": delivery,
            "smtp": {
                "host": "mail.example.org",
                "port": 587,
                "security": "starttls",
                "username": "digest",
                "password_env": "TEST_SMTP_PASSWORD",
                "ca_file": "ca.pem",
                "timeout": 7,
            },
        }
        return settings_from_dict(data, tmp_path)

    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    maildir = make_transport(settings(transport="maildir", maildir="out"))
    assert isinstance(maildir, MaildirTransport)
    assert maildir.path == tmp_path.resolve() / "out"
    assert isinstance(make_transport(settings(transport="memory")), MemoryTransport)
    smtp = make_transport(settings(transport="smtp"))
    assert isinstance(smtp, SmtpTransport)
    assert (smtp.host, smtp.port, smtp.security) == ("mail.example.org", 587, "starttls")
    assert (smtp.username, smtp.password, smtp.timeout) == ("digest", "s3cret", 7.0)
    assert smtp.ca_file == tmp_path.resolve() / "ca.pem"
    assert smtp.local_hostname is None


# --- SMTP: delivery -----------------------------------------------------------------------


def test_smtp_delivers_crlf_bytes_with_dots_intact(sink: SmtpSink) -> None:
    with smtp_to(sink) as transport:
        receipt = transport.send(SENDER, "reader@example.org", MESSAGE)
    assert receipt == "250 2.0.0 Ok: queued as SINK0001"
    [received] = sink.messages
    assert received.envelope_from == SENDER
    assert received.recipients == ("reader@example.org",)
    assert received.content == crlf(MESSAGE)
    assert "BODY=8BITMIME" in received.mail_options


def test_smtp_plain_ascii_message_needs_no_8bitmime(sink: SmtpSink) -> None:
    with smtp_to(sink) as transport:
        transport.send(SENDER, "reader@example.org", ASCII_MESSAGE)
    [received] = sink.messages
    assert received.content == crlf(ASCII_MESSAGE)
    assert received.mail_options == ()


def test_smtp_reuses_one_connection(sink: SmtpSink) -> None:
    recipients = [f"reader{n}@example.org" for n in range(5)]
    with smtp_to(sink) as transport:
        for recipient in recipients:
            transport.send(SENDER, recipient, ASCII_MESSAGE)
    assert [m.recipients[0] for m in sink.messages] == recipients
    assert sink.connections == 1


def test_smtp_reconnects_after_server_restart(sink: SmtpSink) -> None:
    with smtp_to(sink) as transport:
        transport.send(SENDER, "a@example.org", ASCII_MESSAGE)
        sink.restart()  # drops the open connection
        receipt = transport.send(SENDER, "b@example.org", ASCII_MESSAGE)
    assert receipt.startswith("250 ")
    assert [m.recipients for m in sink.messages] == [("a@example.org",), ("b@example.org",)]
    assert sink.connections == 2


def test_smtp_421_reconnects_and_retries_once(sink: SmtpSink) -> None:
    replies = ["421 4.4.2 sink.test Error: timeout exceeded"]

    def once(envelope: Envelope, phase: str, address: str) -> str | None:
        return replies.pop() if phase == "MAIL" and len(sink.messages) == 1 and replies else None

    sink.handler.fault = once
    with smtp_to(sink) as transport:
        transport.send(SENDER, "a@example.org", ASCII_MESSAGE)
        transport.send(SENDER, "b@example.org", ASCII_MESSAGE)
    assert len(sink.messages) == 2
    assert sink.connections == 2


def test_smtp_421_twice_is_temporary(sink: SmtpSink) -> None:
    sink.handler.fault = answer("421 4.3.2 shutting down", "MAIL")
    with smtp_to(sink) as transport, pytest.raises(TemporaryFailure) as caught:
        transport.send(SENDER, "a@example.org", ASCII_MESSAGE)
    assert caught.value.code == 421
    assert caught.value.reply == "4.3.2 shutting down"
    assert sink.connections == 2  # the first attempt and one retry on a new connection


# --- SMTP: TLS and AUTH -------------------------------------------------------------------


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_smtp_tls_with_test_ca(security: TlsMode) -> None:
    with running_sink(tls=security) as sink:
        with smtp_to(sink, security=security, ca_file=sink.ca_file) as transport:
            transport.send(SENDER, "a@example.org", MESSAGE)
            transport.send(SENDER, "b@example.org", MESSAGE)
        assert [m.content for m in sink.messages] == [crlf(MESSAGE)] * 2
        assert sink.connections == 1


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_smtp_untrusted_certificate_is_permanent(security: TlsMode, tmp_path: Path) -> None:
    other_ca = make_certificates(tmp_path / "other", name="some other CA").ca_file
    with running_sink(tls=security) as sink:
        transport = smtp_to(sink, security=security, ca_file=other_ca)
        with pytest.raises(PermanentFailure, match="certificate verification failed") as caught:
            transport.send(SENDER, "a@example.org", MESSAGE)
        transport.close()
        assert "configuration problem" in str(caught.value)
        assert sink.messages == []


def test_smtp_starttls_not_offered_is_permanent(sink: SmtpSink) -> None:
    transport = smtp_to(sink, security="starttls")
    with pytest.raises(PermanentFailure, match="does not offer STARTTLS"):
        transport.open()
    transport.close()


@pytest.mark.parametrize("tls", ["none", "starttls", "ssl"])
def test_smtp_auth_with_password(tls: TlsMode) -> None:
    with running_sink(tls=tls, credentials=("digest", "pa55word")) as sink:
        options = {"security": tls, "ca_file": sink.ca_file}
        with smtp_to(sink, username="digest", password="pa55word", **options) as transport:
            transport.send(SENDER, "a@example.org", ASCII_MESSAGE)
        assert len(sink.messages) == 1


def test_smtp_wrong_password_is_permanent() -> None:
    with running_sink(credentials=("digest", "pa55word")) as sink:
        transport = smtp_to(sink, username="digest", password="wrong")
        with pytest.raises(PermanentFailure, match="configuration problem") as caught:
            transport.send(SENDER, "a@example.org", ASCII_MESSAGE)
        transport.close()
    assert caught.value.code == 535


def test_smtp_missing_login_is_permanent() -> None:
    with running_sink(credentials=("digest", "pa55word")) as sink, smtp_to(sink) as transport:
        with pytest.raises(PermanentFailure) as caught:
            transport.send(SENDER, "a@example.org", ASCII_MESSAGE)
        assert caught.value.code == 530


# --- SMTP: refusals and errors ------------------------------------------------------------


def test_smtp_451_at_rcpt_is_temporary_and_connection_stays_usable(sink: SmtpSink) -> None:
    sink.handler.fault = answer("451 4.3.0 try later", "RCPT", "busy@example.org")
    with smtp_to(sink) as transport:
        with pytest.raises(TemporaryFailure) as caught:
            transport.send(SENDER, "busy@example.org", ASCII_MESSAGE)
        transport.send(SENDER, "ok@example.org", ASCII_MESSAGE)
    assert caught.value.code == 451
    assert caught.value.reply == "4.3.0 try later"
    assert [m.recipients for m in sink.messages] == [("ok@example.org",)]
    assert sink.connections == 1


def test_smtp_550_at_rcpt_is_permanent(sink: SmtpSink) -> None:
    sink.handler.fault = answer("550 5.1.1 no such user", "RCPT")
    with smtp_to(sink) as transport, pytest.raises(PermanentFailure) as caught:
        transport.send(SENDER, "gone@example.org", ASCII_MESSAGE)
    assert caught.value.code == 550
    assert caught.value.reply == "5.1.1 no such user"
    assert "gone@example.org" in str(caught.value)


def test_smtp_sender_refused_is_permanent(sink: SmtpSink) -> None:
    sink.handler.fault = answer("553 5.7.1 sender not allowed", "MAIL")
    with smtp_to(sink) as transport, pytest.raises(PermanentFailure) as caught:
        transport.send(SENDER, "a@example.org", ASCII_MESSAGE)
    assert caught.value.code == 553


@pytest.mark.parametrize(
    ("reply", "failure"),
    [
        ("452 4.3.1 insufficient system storage", TemporaryFailure),
        ("554 5.6.0 message content rejected", PermanentFailure),
    ],
)
def test_smtp_refusal_at_data(sink: SmtpSink, reply: str, failure: type[TransportError]) -> None:
    sink.handler.fault = answer(reply, "DATA", "bad@example.org")
    with smtp_to(sink) as transport:
        with pytest.raises(failure) as caught:
            transport.send(SENDER, "bad@example.org", MESSAGE)
        transport.send(SENDER, "good@example.org", MESSAGE)
    code, _, text = reply.partition(" ")
    assert caught.value.code == int(code)
    assert caught.value.reply == text
    assert [m.recipients for m in sink.messages] == [("good@example.org",)]
    assert sink.connections == 1


def test_smtp_connection_refused_is_temporary() -> None:
    transport = SmtpTransport("127.0.0.1", get_free_port(), timeout=5.0)
    with pytest.raises(TemporaryFailure, match="cannot connect"):
        transport.send(SENDER, "a@example.org", ASCII_MESSAGE)
    transport.close()


def test_smtp_silent_server_times_out_as_temporary() -> None:
    # Accepts TCP connections (the backlog) but never says hello.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        transport = SmtpTransport("127.0.0.1", port, timeout=0.2, local_hostname="client.test")
        with pytest.raises(TemporaryFailure, match="timed out"):
            transport.send(SENDER, "a@example.org", ASCII_MESSAGE)
        transport.close()


# --- SMTP: PIPELINING (RFC 2920) ----------------------------------------------------------


def test_smtp_pipelines_only_where_the_server_offers_it(sink: SmtpSink) -> None:
    recipients = [f"reader{n}@example.org" for n in range(3)]
    with smtp_to(sink) as transport:
        receipts = [transport.send(SENDER, r, MESSAGE) for r in recipients]
    assert receipts == [f"250 2.0.0 Ok: queued as SINK000{n}" for n in (1, 2, 3)]
    assert [m.recipients[0] for m in sink.messages] == recipients
    assert all(m.content == crlf(MESSAGE) for m in sink.messages)
    # MAIL, RCPT and DATA in one write where offered; one command at a time where not.
    assert sink.handler.pipelined == (3 if sink.handler.pipelining else 0)


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
def test_smtp_refusals_in_one_pipelined_group_leave_the_connection_usable(
    pipelining: bool,
) -> None:
    # Refused sender, refused recipient, refused DATA: every reply of the group is read, the
    # failure names the right command, and the next message goes out on the same connection.
    faults = {
        "bad-sender@example.org": ("MAIL", "553 5.1.8 sender refused"),
        "gone@example.org": ("RCPT", "550 5.1.1 no such user"),
        "busy@example.org": ("DATA", "451 4.3.0 try later"),
    }

    def fault(envelope: Envelope, phase: str, address: str) -> str | None:
        who = address if phase != "DATA" else ",".join(envelope.rcpt_tos)
        found = faults.get(who)
        return found[1] if found and found[0] == phase else None

    with running_sink(fault=fault, pipelining=pipelining) as sink, smtp_to(sink) as transport:
        with pytest.raises(
            PermanentFailure, match=re.escape("sender <bad-sender@example.org> refused")
        ):
            transport.send("bad-sender@example.org", "reader@example.org", ASCII_MESSAGE)
        with pytest.raises(
            PermanentFailure, match=re.escape("recipient <gone@example.org> refused")
        ) as gone:
            transport.send(SENDER, "gone@example.org", ASCII_MESSAGE)
        assert gone.value.code == 550
        with pytest.raises(TemporaryFailure, match="451") as busy:
            transport.send(SENDER, "busy@example.org", ASCII_MESSAGE)
        assert busy.value.code == 451
        assert transport.send(SENDER, "reader@example.org", ASCII_MESSAGE).startswith("250")
        assert [m.recipients for m in sink.messages] == [("reader@example.org",)]
        assert sink.connections == 1


def test_smtp_address_with_a_line_break_is_refused_before_any_command(sink: SmtpSink) -> None:
    with smtp_to(sink) as transport, pytest.raises(PermanentFailure, match="line break"):
        transport.send(SENDER, "reader@example.org\r\nRCPT TO:<x@example.net>", MESSAGE)
    assert sink.messages == []


def test_wire_data_stuffs_dots_and_ends_with_crlf_dot() -> None:
    from newsletter.transport.smtp import wire_data

    assert wire_data(b".top\nmid\n.\n..x") == b"..top\r\nmid\r\n..\r\n...x\r\n.\r\n"
    assert wire_data(b"a\r\nb\r\n") == b"a\r\nb\r\n.\r\n"  # CRLF input is not doubled


# --- SMTP: the next transaction announced with the message data (RFC 2920 3.1) -------------


def numbered(n: int) -> tuple[str, bytes]:
    """A recipient and its message in SMTP DATA form (with dot-started lines to stuff)."""
    return f"reader{n}@example.org", smtp_data(numbered_message(n))


def numbered_message(n: int) -> bytes:
    return MESSAGE.replace(b"Three summaries", b"Summary %d" % n)


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
def test_smtp_sends_the_next_envelope_with_the_message_data(pipelining: bool) -> None:
    # With PIPELINING the next MAIL, RCPT and DATA ride with this message's data, so from
    # the second message on each transaction's commands arrive before its turn.
    messages = [numbered(n) for n in range(4)]
    with running_sink(pipelining=pipelining) as sink, smtp_to(sink) as transport:
        for index, (recipient, data) in enumerate(messages):
            then = None
            if index + 1 < len(messages):
                then = (SENDER, *messages[index + 1])
            assert transport.send(SENDER, recipient, data, wire=True, then=then).startswith("250")
    assert [m.recipients[0] for m in sink.messages] == [r for r, _ in messages]
    assert [m.content for m in sink.messages] == [crlf(numbered_message(n)) for n in range(4)]
    assert sink.connections == 1


def test_smtp_refusals_with_the_next_envelope_announced_keep_the_connection() -> None:
    # Refused data, a refused announced recipient, then a clean message: no RSET lands in the
    # middle of the pipelined group, every reply is read in order, one connection throughout.
    (one, data_one), (two, data_two), (three, data_three) = (numbered(n) for n in (1, 2, 3))

    def fault(envelope: Envelope, phase: str, address: str) -> str | None:
        if phase == "DATA" and envelope.rcpt_tos == [one]:
            return "554 5.6.0 content refused"
        if phase == "RCPT" and address == two:
            return "550 5.1.1 no such user"
        return None

    with running_sink(fault=fault) as sink, smtp_to(sink) as transport:
        with pytest.raises(PermanentFailure, match="554"):
            transport.send(SENDER, one, data_one, wire=True, then=(SENDER, two, data_two))
        with pytest.raises(PermanentFailure, match=re.escape(f"recipient <{two}> refused")):
            transport.send(SENDER, two, data_two, wire=True, then=(SENDER, three, data_three))
        assert transport.send(SENDER, three, data_three, wire=True).startswith("250")
        assert [m.recipients for m in sink.messages] == [(three,)]
        assert sink.connections == 1


def test_smtp_a_different_message_after_an_announced_one_drops_the_connection() -> None:
    # The server has answered the announced DATA with 354 and waits for that message: another
    # one cannot follow on this connection, and the announced one must not be delivered.
    (one, data_one), (two, data_two), (three, data_three) = (numbered(n) for n in (1, 2, 3))
    with running_sink() as sink, smtp_to(sink) as transport:
        transport.send(SENDER, one, data_one, wire=True, then=(SENDER, two, data_two))
        assert transport.send(SENDER, three, data_three, wire=True).startswith("250")
        transport.send(SENDER, one, data_one, wire=True, then=(SENDER, two, data_two))
    # Closed with the announced message unsent: no QUIT inside its data, nothing delivered.
    assert [m.recipients[0] for m in sink.messages] == [one, three, one]
    assert sink.connections == 2
