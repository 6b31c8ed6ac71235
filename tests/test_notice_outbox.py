"""The outbox of transactional emails (`store.outbox`, `sending.outbox`): a request is kept
(committed) before its page is answered, sent off the request path over one kept
connection, retried a bounded number of times, and never lost to a crash or sent twice by
two processes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient as StarletteClient
from smtp_sink import SmtpSink
from smtp_sink import running_sink
from sqlalchemy import event
from sqlalchemy import select
from sqlalchemy import update
from test_web_support import TestClient
from test_web_support import csrf
from test_web_support import parse

from newsletter.content.taxonomy import default_taxonomy
from newsletter.errors import PermanentFailure
from newsletter.errors import TemporaryFailure
from newsletter.sending.notices import Notices
from newsletter.sending.outbox import MAX_ATTEMPTS
from newsletter.sending.outbox import OutboxDrainer
from newsletter.store import outbox
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction
from newsletter.store.models import OUTBOX_FAILED
from newsletter.store.models import NoticeOutboxRow
from newsletter.store.models import utcnow
from newsletter.tokens import Signer
from newsletter.transport.base import Transport
from newsletter.transport.kept import KeptTransport
from newsletter.transport.memory import MemoryTransport
from newsletter.web import create_app

pytest_plugins = ["test_web_support"]


def notices(settings, engine, transport: Transport, **options) -> Notices:
    signer = Signer(settings.secret_key())
    return Notices(settings, default_taxonomy(), signer, engine, lambda: transport, **options)


def rows(engine) -> list[NoticeOutboxRow]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(NoticeOutboxRow)))


def make_due(engine) -> None:
    """As if the wait before the retry had passed."""
    with transaction(engine) as session:
        session.execute(update(NoticeOutboxRow).values(not_before=utcnow()))


def subscribe(client, address: str, **fields) -> None:
    token = csrf(client, "/subscribe")
    data = {"email": address, "name": "", "topic_mode": "all", "csrf_token": token, **fields}
    assert client.post("/subscribe", data=data).status_code == 200


def test_a_queued_confirmation_survives_a_restart(web_settings, engine) -> None:
    """The request is committed when queued: a process that dies before sending loses
    nothing, the next one to drain the outbox sends it."""
    first = MemoryTransport()
    notices(web_settings, engine, first, background=False).queue_subscribe("ana@example.com")
    assert first.outbox == [] and len(rows(engine)) == 1  # the process dies here
    restarted = MemoryTransport()
    assert notices(web_settings, engine, restarted, background=False).flush() == 1
    [sent] = restarted.outbox
    assert parse(sent.message)["Subject"] == "Please confirm your subscription to Test Digest"
    assert rows(engine) == []  # a sent email is not kept


class Gate(MemoryTransport):
    """A transport that holds every email until `release`."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.released = threading.Event()

    def send(self, envelope_from: str, recipient: str, message: bytes) -> str:
        self.entered.set()
        assert self.released.wait(30)
        return super().send(envelope_from, recipient, message)


def test_the_page_is_answered_after_the_commit_and_before_the_email(web_settings, engine):
    gate = Gate()
    app = create_app(web_settings, transport_factory=lambda: gate, engine=engine)
    with StarletteClient(app, base_url="https://testserver") as client:  # no flush after
        subscribe(client, "ana@example.com")
        assert gate.entered.wait(30)  # the outbox thread is sending it, the page is answered
        assert gate.outbox == [] and len(rows(engine)) == 1
        gate.released.set()
        app.state.ctx.mailer.flush()  # waits for the thread's pass
        assert [m.recipient for m in gate.outbox] == ["ana@example.com"]
        assert rows(engine) == []


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with running_sink() as server:
        yield server


def test_confirmations_share_one_kept_smtp_connection(web_settings, engine, sink) -> None:
    web_settings.delivery.transport = "smtp"
    web_settings.smtp.host, web_settings.smtp.port = sink.host, sink.port
    app = create_app(web_settings, engine=engine)
    with TestClient(app, base_url="https://testserver") as client:
        for n in range(5):
            subscribe(client, f"reader{n}@example.com")
    assert sorted(m.recipients[0] for m in sink.messages) == [
        f"reader{n}@example.com" for n in range(5)
    ]
    assert sink.connections == 1
    assert app.state.ctx.mailer.kept.opened == 1


def test_a_temporary_failure_is_retried_later(web_settings, engine) -> None:
    failures = [TemporaryFailure("451 try again later", code=451)]
    transport = MemoryTransport(fail=lambda _to: failures.pop() if failures else None)
    mailer = notices(web_settings, engine, transport, background=False)
    mailer.queue_subscribe("ana@example.com")
    mailer.flush()
    [row] = rows(engine)
    assert (row.kind, row.attempts, row.status) == (outbox.MAIL, 1, "queued")
    assert "451" in row.last_error and row.not_before > utcnow()
    assert mailer.flush() == 0 and transport.outbox == []  # not due yet
    make_due(engine)
    assert mailer.flush() == 1
    assert [m.recipient for m in transport.outbox] == ["ana@example.com"]
    assert rows(engine) == []


def test_a_permanent_failure_or_too_many_temporary_ones_give_up(web_settings, engine) -> None:
    refused = MemoryTransport(fail=lambda _to: PermanentFailure("550 no such user", code=550))
    mailer = notices(web_settings, engine, refused, background=False)
    mailer.queue_subscribe("ana@example.com")
    mailer.flush()
    [row] = rows(engine)
    assert row.status == OUTBOX_FAILED and "550" in row.last_error
    assert outbox.counts(engine) == {"queued": 0, "failed": 1}

    down = MemoryTransport(fail=lambda _to: TemporaryFailure("421 closing", code=421))
    mailer = notices(web_settings, engine, down, background=False)
    mailer.queue_subscribe("ben@example.com")
    for _ in range(20):
        mailer.flush()
        make_due(engine)
    assert outbox.counts(engine) == {"queued": 0, "failed": 2}  # bounded: it stopped trying


def test_a_row_that_cannot_be_read_is_not_retried_for_ever(web_settings, engine) -> None:
    # Its payload no longer parses: it fails before its own attempt count is read, and must
    # still stop after MAX_ATTEMPTS tries like any other row.
    mailer = notices(web_settings, engine, MemoryTransport(), background=False)
    mailer.queue_subscribe("ana@example.com")
    with transaction(engine) as session:
        session.execute(update(NoticeOutboxRow).values(payload="{not json"))
    for _ in range(MAX_ATTEMPTS + 5):
        mailer.flush()
        make_due(engine)
    [row] = rows(engine)
    assert row.status == OUTBOX_FAILED and "JSONDecodeError" in row.last_error
    assert row.attempts == MAX_ATTEMPTS


def test_two_processes_never_send_the_same_email(web_settings, engine) -> None:
    queueing = notices(web_settings, engine, MemoryTransport(), background=False)
    for n in range(30):
        queueing.queue_subscribe(f"reader{n}@example.com")
    transports = [MemoryTransport(), MemoryTransport()]
    workers = [notices(web_settings, engine, t, background=False) for t in transports]
    threads = [threading.Thread(target=worker.flush) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    sent = [m.recipient for t in transports for m in t.outbox]
    assert sorted(sent) == sorted(f"reader{n}@example.com" for n in range(30))
    assert rows(engine) == []


def test_the_rule_and_the_email_are_one_transaction(web_settings, engine, tmp_path) -> None:
    """A request whose email cannot be composed stays queued, and nothing of it is applied
    (the address is not added without its confirmation); once it can be, it goes out."""
    overrides = tmp_path / "overrides" / "email"
    overrides.mkdir(parents=True)
    (overrides / "confirm.txt.j2").write_text("{{ no_such_value }}\n", encoding="utf-8")
    web_settings.templates.dir = overrides.parent
    transport = MemoryTransport()
    notices(web_settings, engine, transport, background=False).queue_subscribe("ana@example.com")
    notices(web_settings, engine, transport, background=False).flush()
    [row] = rows(engine)
    assert (row.kind, row.attempts) == ("subscribe", 1) and "no_such_value" in row.last_error
    with session_factory(engine)() as session:
        assert api.get_subscriber(session, "ana@example.com") is None
    (overrides / "confirm.txt.j2").unlink()  # the operator fixes the template
    make_due(engine)
    assert notices(web_settings, engine, transport, background=False).flush() == 1
    assert [m.recipient for m in transport.outbox] == ["ana@example.com"]
    with session_factory(engine)() as session:
        assert api.get_subscriber(session, "ana@example.com").status == "pending"


def test_no_write_lock_is_held_while_a_request_is_handled(engine) -> None:
    """On SQLite one connection writes at a time, and a send beside the web app commits each
    acceptance: the claim is committed before the rule runs, so the rule's reads and Python
    work leave the lock free (another writer that does not wait at all gets it)."""
    path = engine.url.database
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE scratch (x INTEGER)")
    written: list[int] = []

    def prepare(session, kind, payload):
        other = sqlite3.connect(path, timeout=0)  # no busy wait: a held lock is an error
        try:
            other.execute("INSERT INTO scratch VALUES (1)")
            other.commit()
            written.append(1)
        finally:
            other.close()
        return "ana@example.com", b"Subject: hello\r\n\r\nhello\r\n"

    with transaction(engine) as session:
        outbox.add(session, "subscribe", {"email": "ana@example.com"})
    sent: list[str] = []
    drainer = OutboxDrainer(engine, prepare, lambda to, message: sent.append(to) or "250 ok")
    assert drainer.flush() == 1
    assert written == [1] and sent == ["ana@example.com"] and rows(engine) == []


def test_one_email_costs_one_look_for_due_rows(web_settings, engine) -> None:
    """A pass that found every due row in one batch, with nothing queued here meanwhile,
    does not look again (at 50 subscribe requests a second, one query less for each); and a
    new address is looked up once on the suppression list."""
    drainer = notices(web_settings, engine, MemoryTransport(), background=False)
    drainer.queue_subscribe("ana@example.com")
    selects: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _many) -> None:
        if statement.lstrip().startswith("SELECT"):
            selects.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert drainer.flush() == 1
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len([s for s in selects if "lease_until" in s]) == 1, selects
    assert len([s for s in selects if "FROM suppressions" in s]) == 1, selects
    assert rows(engine) == []


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Counting(MemoryTransport):
    def __init__(self) -> None:
        super().__init__()
        self.opens = 0
        self.closes = 0

    def open(self) -> None:
        self.opens += 1

    def close(self) -> None:
        self.closes += 1


def test_the_kept_connection_reopens_after_idling_or_failing() -> None:
    clock = Clock()
    transports: list[Counting] = []

    def factory() -> Counting:
        transports.append(Counting())
        return transports[-1]

    kept = KeptTransport(factory, idle_seconds=60, clock=clock)
    kept.send("a@example.org", "b@example.org", b"Subject: 1\n\n1\n")
    clock.now = 30
    kept.send("a@example.org", "b@example.org", b"Subject: 2\n\n2\n")
    assert kept.opened == 1 and len(transports[0].outbox) == 2
    clock.now = 100  # idle for 70 s
    kept.close_if_idle()
    assert transports[0].closes == 1
    kept.send("a@example.org", "b@example.org", b"Subject: 3\n\n3\n")
    assert kept.opened == 2
    transports[1].fail = lambda _to: TemporaryFailure("421 bye", code=421)
    with pytest.raises(TemporaryFailure):
        kept.send("a@example.org", "b@example.org", b"Subject: 4\n\n4\n")
    assert transports[1].closes == 1  # a failed connection is not reused
    kept.send("a@example.org", "b@example.org", b"Subject: 5\n\n5\n")
    assert kept.opened == 3 and len(transports[2].outbox) == 1


def test_the_cli_sends_what_a_stopped_server_left(tmp_path, runner) -> None:
    """`subscribers send-notices`: the outbox's rows go out now, the line says what is left."""
    import mailbox

    from conftest import write_config

    from newsletter.cli import main
    from newsletter.config import load_settings
    from newsletter.store import engine as db

    config = write_config(tmp_path, delivery={"transport": "maildir", "maildir": "outbox"})
    assert runner.invoke(main, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    settings = load_settings(config)
    engine = db.make_engine(settings.database.url)
    left = notices(settings, engine, MemoryTransport(), background=False)  # a server that stops
    left.queue_subscribe("ana@example.com")
    left.queue_subscribe("ben@example.com")
    result = runner.invoke(main, ["--config", str(config), "subscribers", "send-notices"])
    assert result.exit_code == 0, result.output
    assert "handled 2 outbox emails; waiting for a retry: 0, given up on: 0" in result.output
    recipients = sorted(message["To"] for message in mailbox.Maildir(tmp_path / "outbox"))
    assert recipients == ["ana@example.com", "ben@example.com"]
    assert rows(engine) == []
    engine.dispose()


def test_forgetting_an_address_removes_its_waiting_emails(web_settings, engine) -> None:
    refused = MemoryTransport(fail=lambda _to: PermanentFailure("550 no", code=550))
    mailer = notices(web_settings, engine, refused, background=False)
    mailer.queue_subscribe("ana@example.com")
    mailer.flush()  # now a failed row holding Ana's composed email
    mailer.queue_subscribe("ben@example.com")  # still a request
    mailer.queue_subscribe("cy@example.com")
    with transaction(engine) as session:
        ana = api.get_subscriber(session, "ana@example.com")
        api.forget_subscriber(session, ana)
        outbox.forget(session, "BEN@example.com", -1)  # an address not yet on record
    assert [r.payload for r in rows(engine)] == [
        '{"email": "cy@example.com", "name": "", '
        '"topics": null, "lists": null, "source": "web", "ip": ""}'
    ]
