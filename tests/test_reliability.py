"""The sending engine under faults: connection pool, throttling, pauses, drains and crashes.

Every test talks to a real aiosmtpd server on 127.0.0.1 that injects faults; subprocess tests
run the real `newsletter` command and stop it with SIGTERM or SIGKILL.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from click.testing import CliRunner
from conftest import write_config
from smtp_sink import running_sink
from sqlalchemy import select

from newsletter.cli import main
from newsletter.config import load_settings
from newsletter.content.reader import load_issue
from newsletter.errors import ConfigError
from newsletter.errors import PermanentFailure
from newsletter.errors import SendError
from newsletter.errors import TemporaryFailure
from newsletter.errors import TransportUnavailable
from newsletter.sending.campaign import resume_campaign
from newsletter.sending.campaign import send_month
from newsletter.sending.plan import plan_campaign
from newsletter.sending.runner import CampaignRunner
from newsletter.store import engine as db
from newsletter.store import ledger
from newsletter.store.models import Delivery
from newsletter.store.subscribers import add_subscriber
from newsletter.transport.memory import MemoryTransport

# What `waits.clock` prints: with the date when the moment is not today (runs near midnight).
CLOCK = r"(?:\d{4}-\d\d-\d\d )?\d\d:\d\d"


def add_people(engine, settings, taxonomy, count: int) -> list[str]:
    addresses = [f"reader{n:04d}@example.net" for n in range(count)]
    with db.transaction(engine) as session:
        for address in addresses:
            add_subscriber(session, settings, taxonomy, address)
    return addresses


def statuses(engine) -> Counter:
    with db.session_factory(engine)() as session:
        return Counter(session.scalars(select(Delivery.status)))


def smtp_settings(settings, sink, **delivery) -> None:
    settings.delivery.transport = "smtp"
    settings.smtp.host, settings.smtp.port = sink.host, sink.port
    settings.delivery.retry_base_seconds = 0
    for key, value in delivery.items():
        setattr(settings.delivery, key, value)


@pytest.fixture
def issue(settings, taxonomy):
    return load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)


def test_pool_uses_the_configured_connections(engine, settings, taxonomy, issue) -> None:
    addresses = add_people(engine, settings, taxonomy, 60)
    with running_sink(fault=lambda _e, phase, _a: "SLOW 0.01" if phase == "DATA" else None) as sink:
        smtp_settings(settings, sink)
        settings.smtp.connections = 3
        report = send_month(engine, settings, issue).report
        assert report.sent == 60 and report.finished
        assert sink.connections == 3
        assert sorted(m.recipients[0] for m in sink.messages) == addresses


def test_throttling_slows_down_without_spending_attempts(engine, settings, taxonomy, issue) -> None:
    add_people(engine, settings, taxonomy, 20)
    refusals = iter(range(6))

    def fault(_envelope, phase: str, _address: str):
        if phase == "RCPT" and next(refusals, None) is not None:
            return "454 4.7.0 Throttling failure: Maximum sending rate exceeded"
        return None

    with running_sink(fault=fault) as sink:
        smtp_settings(
            settings, sink, throttle_backoff_seconds=0, max_attempts=1, rate_per_second=500
        )
        runner = CampaignRunner(engine, settings, issue)
        plan_campaign(engine, settings, issue)
        report = runner.run()
        assert runner.limiter.rate < 500  # slowed down
        assert report.throttled == 6
        assert report.sent == 20 and report.failed == 0  # max_attempts=1, yet no failure
        assert len(sink.messages) == 20


def test_consecutive_errors_pause_the_send_until_resumed(engine, settings, taxonomy, issue) -> None:
    add_people(engine, settings, taxonomy, 30)
    broken = threading.Event()
    broken.set()

    def fault(_envelope, phase: str, _address: str):
        return (
            "451 4.3.0 mailbox store unavailable" if broken.is_set() and phase == "RCPT" else None
        )

    with running_sink(fault=fault) as sink:
        smtp_settings(settings, sink, pause_after_errors=5, retry_base_seconds=60)
        report = send_month(engine, settings, issue).report
        assert report.paused and not report.finished
        assert "5 consecutive errors" in report.stopped_reason
        assert "451" in report.stopped_reason
        with pytest.raises(SendError, match="--resume"):
            CampaignRunner(engine, settings, issue).run()
        broken.clear()
        assert resume_campaign(engine, "2025-01")
        settings.delivery.retry_base_seconds = 0
        with db.transaction(engine) as session:  # make the scheduled retries due now
            for row in session.scalars(select(Delivery).where(Delivery.status == "retry")):
                row.next_attempt_at = ledger.utcnow()
        report = CampaignRunner(engine, settings, issue).run()
        assert report.finished
        assert len({m.recipients[0] for m in sink.messages}) == 30 == len(sink.messages)


def test_every_message_arrives_exactly_once_despite_faults(
    engine, settings, taxonomy, issue
) -> None:
    addresses = add_people(engine, settings, taxonomy, 120)
    doomed = set(addresses[::17])  # permanent failures
    chance = random.Random(1234)
    lock = threading.Lock()

    def fault(_envelope, phase: str, address: str):
        with lock:
            roll = chance.random()
        if phase == "RCPT" and address in doomed:
            return "550 5.1.1 no such mailbox"
        if phase == "RCPT" and roll < 0.10:
            return "451 4.3.0 temporary local problem"
        if phase == "MAIL" and roll < 0.05:
            return "421 4.3.2 service shutting down"
        if phase == "DATA" and roll < 0.08:
            return "DROP"
        if phase == "DATA" and roll < 0.15:
            return "SLOW 0.05"
        return None

    with running_sink(fault=fault) as sink:
        smtp_settings(settings, sink, max_attempts=30, pause_after_errors=0)
        settings.smtp.connections = 3
        report = send_month(engine, settings, issue).report
        assert report.finished
        received = Counter(m.recipients[0] for m in sink.messages)
    assert set(received) == set(addresses) - doomed
    assert all(count == 1 for count in received.values()), received.most_common(3)
    assert statuses(engine) == Counter({"sent": 120 - len(doomed), "failed": len(doomed)})


# --- the real command, stopped from outside -----------------------------------------------


def start_send(config, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "newsletter",
            "--config",
            str(config),
            "send",
            "2025-01",
            "--yes",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "120"},
    )


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def slow_data(_envelope, phase: str, _address: str):
    return "SLOW 0.02" if phase == "DATA" else None


def test_sigterm_drains_and_exits_cleanly(tmp_path, taxonomy) -> None:
    with running_sink(fault=slow_data) as sink:
        config = write_config(
            tmp_path,
            delivery={"transport": "smtp"},
            smtp={"host": sink.host, "port": sink.port, "connections": 2},
        )
        settings = load_settings(config)
        engine = db.make_engine(settings.database.url)
        db.upgrade(engine)
        add_people(engine, settings, taxonomy, 150)
        process = start_send(config)
        wait_for(lambda: len(sink.messages) >= 20)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output.decode()
        counts = statuses(engine)
        assert counts["sending"] == 0  # nothing left claimed
        assert counts["sent"] == len(sink.messages) < 150
        assert counts["queued"] == 150 - counts["sent"]
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def crash_database(request, tmp_path) -> dict:
    """The [database] section for a crash test: the default SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        return {}
    engine = request.getfixturevalue("pg_engine")
    return {"url": engine.url.render_as_string(hide_password=False)}


def test_sigkill_repeats_at_most_one_message_per_connection(
    tmp_path, taxonomy, crash_database
) -> None:
    # Each accepted message is committed before its connection sends the next, so a kill can
    # repeat only the message whose acceptance was on the wire: one per open connection.
    chance = random.Random(99)
    connections, kills = 3, 3
    with running_sink(fault=slow_data) as sink:
        config = write_config(
            tmp_path,
            database=crash_database,
            delivery={"transport": "smtp", "lease_seconds": 0.5},
            smtp={"host": sink.host, "port": sink.port, "connections": connections},
        )
        settings = load_settings(config)
        engine = db.make_engine(settings.database.url)
        db.upgrade(engine)
        addresses = add_people(engine, settings, taxonomy, 200)
        for _ in range(kills):
            process = start_send(config)
            target = len(sink.messages) + chance.randint(5, 40)

            def reached(target=target, process=process) -> bool:
                return len(sink.messages) >= target or process.poll() is not None

            wait_for(reached)
            process.kill()
            process.communicate(timeout=30)
            with db.session_factory(engine)() as session:
                unrecorded = set(
                    session.scalars(select(Delivery.email).where(Delivery.status == "sending"))
                )
            received = Counter(m.recipients[0] for m in sink.messages)
            accepted_not_recorded = [a for a in unrecorded if received[a]]
            assert len(accepted_not_recorded) <= connections
            time.sleep(0.6)  # let the leases of the killed run expire
        final = start_send(config)
        output, _ = final.communicate(timeout=120)
        assert final.returncode == 0, output.decode()
        received = Counter(m.recipients[0] for m in sink.messages)
        assert set(received) == set(addresses)  # no address missing
        repeats = sum(count - 1 for count in received.values())
        assert repeats <= kills * connections  # at most one per connection per kill
        assert statuses(engine) == Counter({"sent": 200})
        engine.dispose()


# --- workers -------------------------------------------------------------------------------


def test_second_worker_on_sqlite_is_refused(tmp_path, taxonomy) -> None:
    config = write_config(tmp_path)
    settings = load_settings(config)
    engine = db.make_engine(settings.database.url)
    db.upgrade(engine)
    from newsletter.sending.worker import single_sqlite_worker

    with single_sqlite_worker(engine):
        result = subprocess.run(
            [sys.executable, "-m", "newsletter", "--config", str(config), "worker", "--once"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "another worker is running" in result.stderr
    engine.dispose()


def test_two_workers_on_postgresql_share_the_work(tmp_path, taxonomy, pg_engine) -> None:
    url = pg_engine.url
    with running_sink(fault=slow_data) as sink:
        config = write_config(
            tmp_path,
            database={"url": url.render_as_string(hide_password=False)},
            delivery={"transport": "smtp", "batch_size": 10},
            smtp={"host": sink.host, "port": sink.port, "connections": 1},
        )
        settings = load_settings(config)
        addresses = add_people(pg_engine, settings, taxonomy, 120)
        issue = load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)
        plan_campaign(pg_engine, settings, issue)
        command = [sys.executable, "-m", "newsletter", "--config", str(config), "worker", "--once"]
        workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)]
        time.sleep(0.3)
        workers.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        for worker in workers:
            output, _ = worker.communicate(timeout=120)
            assert worker.returncode == 0, output.decode()
        received = Counter(m.recipients[0] for m in sink.messages)
    assert set(received) == set(addresses)  # no gaps
    assert max(received.values()) == 1  # no duplicates
    with db.session_factory(pg_engine)() as session:
        per_worker = Counter(session.scalars(select(Delivery.worker_id)))
    assert len(per_worker) == 2 and min(per_worker.values()) > 0  # both did work


def test_one_pool_per_smtp_server(engine, settings, taxonomy, issue) -> None:
    from newsletter.config import SmtpServer

    addresses = add_people(engine, settings, taxonomy, 60)
    refusals = iter(range(3))

    def throttled_once(_envelope, phase: str, _address: str):
        if phase == "RCPT" and next(refusals, None) is not None:
            return "454 4.7.0 Throttling failure"
        return "SLOW 0.01" if phase == "DATA" else None

    with running_sink(fault=throttled_once) as first, running_sink(fault=slow_data) as second:
        smtp_settings(settings, first, throttle_backoff_seconds=0, rate_per_second=400)
        settings.smtp.connections = 2
        settings.smtp_servers = [
            SmtpServer(host=second.host, port=second.port, connections=1, rate_per_second=300)
        ]
        runner = CampaignRunner(engine, settings, issue)
        plan_campaign(engine, settings, issue)
        assert [pool.connections for pool in runner.pools] == [2, 1]
        report = runner.run()
        assert report.finished and report.sent == 60
        first_got = Counter(m.recipients[0] for m in first.messages)
        second_got = Counter(m.recipients[0] for m in second.messages)
        assert first.connections == 2 and second.connections == 1
    assert first_got and second_got  # both servers did work
    assert first_got + second_got == Counter(addresses)  # each address exactly once
    # Only the server that asked to slow down was slowed.
    assert runner.pools[0].limiter.rate < 400
    assert runner.pools[1].limiter.rate == 300


def attempts_and_statuses(engine) -> Counter:
    with db.session_factory(engine)() as session:
        return Counter(session.execute(select(Delivery.status, Delivery.attempts)).all())


def test_starttls_against_a_server_without_it_stops_before_claiming_a_row(
    engine, settings, taxonomy, issue
) -> None:
    add_people(engine, settings, taxonomy, 5)
    with running_sink() as sink:
        smtp_settings(settings, sink)
        settings.smtp.security = "starttls"
        with pytest.raises(TransportUnavailable, match="does not offer STARTTLS"):
            send_month(engine, settings, issue)
        assert sink.messages == []
    assert attempts_and_statuses(engine) == Counter({("queued", 0): 5})
    with db.session_factory(engine)() as session:
        assert ledger.find_campaign(session, "2025-01").status == "planned"


def test_a_refused_connection_at_start_is_one_clear_error_from_the_cli(
    engine, settings, taxonomy, tmp_path
) -> None:
    add_people(engine, settings, taxonomy, 3)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(tmp_path, delivery={"transport": "smtp"}, smtp={"port": port})
    result = CliRunner().invoke(main, ["--config", str(config), "send", "2025-01", "--yes"])
    assert result.exit_code == 1
    assert f"cannot send 2025-01 through 127.0.0.1:{port}" in result.output
    assert "nothing was claimed" in result.output
    assert attempts_and_statuses(engine) == Counter({("queued", 0): 3})


class DroppingTransport(MemoryTransport):
    """Accepts `good` messages, then can no longer (re)connect, like a relay that went away."""

    def __init__(self, good: int, error: Exception) -> None:
        super().__init__()
        self.good = good
        self.error = error

    def open(self) -> None:
        if len(self.outbox) >= self.good:
            raise self.error


@pytest.mark.parametrize(
    "error",
    [
        PermanentFailure("535 5.7.8 authentication failed", code=535),
        TemporaryFailure("connection refused"),
    ],
)
def test_a_connection_lost_mid_send_pauses_without_failing_untried_rows(
    engine, settings, taxonomy, issue, error
) -> None:
    add_people(engine, settings, taxonomy, 8)
    transport = DroppingTransport(3, error)
    report = send_month(engine, settings, issue, transport).report
    assert report is not None and report.paused and not report.finished
    assert "cannot connect to transport" in report.stopped_reason
    assert report.sent == 3 and report.failed == 0
    counts = attempts_and_statuses(engine)
    assert counts[("sent", 1)] == 3
    assert counts[("queued", 0)] == 5  # given back untried: no attempt spent


# --- issue 12: a send that waits says what for, and until when -----------------------------


def fail_once_for(address: str, reply: str = "451 4.3.0 mailbox busy, try later"):
    """A fault that refuses `address` once at RCPT, then accepts it."""
    refused: list[str] = []

    def fault(_envelope, phase: str, recipient: str):
        if phase == "RCPT" and recipient == address and not refused:
            refused.append(recipient)
            return reply
        return None

    return fault


def test_a_send_waiting_for_a_retry_says_when_and_sums_up_wall_and_render_time(
    engine, settings, taxonomy, tmp_path
) -> None:
    addresses = add_people(engine, settings, taxonomy, 4)
    with running_sink(fault=fail_once_for(addresses[1])) as sink:
        config = write_config(
            tmp_path,
            delivery={"transport": "smtp", "retry_base_seconds": 0.5},
            smtp={"host": sink.host, "port": sink.port, "connections": 1},
        )
        result = CliRunner().invoke(main, ["--config", str(config), "send", "2025-01", "--yes"])
        assert result.exit_code == 0, result.output
        assert sorted(m.recipients[0] for m in sink.messages) == addresses
    assert re.search(
        r"^1 address is being retried at " + CLOCK + r":\d\d; Ctrl-C leaves it queued$",
        result.output,
        re.M,
    ), result.output
    summary = re.search(
        r"sent 4, failed 0, skipped 0, retries scheduled 1; 1 variant rendered in "
        r"([\d.]+)s; wall time ([\d.]+)s, ([\d.]+)s of it waiting",
        result.output,
    )
    assert summary, result.output
    render, wall, waited = map(float, summary.groups())
    assert render <= wall and 0 < waited <= wall
    assert "campaign 2025-01: complete" in result.output
    # The bar counts the retried address once: it ends at its total, never past it.
    assert "4/4" in result.output and "5/4" not in result.output


def test_no_wait_ends_after_the_first_pass_and_says_how_to_continue(
    engine, settings, taxonomy, tmp_path
) -> None:
    addresses = add_people(engine, settings, taxonomy, 4)
    with running_sink(fault=fail_once_for(addresses[2])) as sink:
        config = write_config(
            tmp_path,
            delivery={"transport": "smtp", "retry_base_seconds": 600},
            smtp={"host": sink.host, "port": sink.port, "connections": 1},
        )
        args = ["--config", str(config), "send", "2025-01", "--yes", "--no-wait"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert len(sink.messages) == 3
    assert re.search(
        r"^1 address left queued for a retry \(the next at " + CLOCK + r"\): run `newsletter send "
        r"2025-01` again to send it, or let `newsletter worker` do it$",
        result.output,
        re.M,
    ), result.output
    assert "campaign 2025-01: not finished" in result.output
    assert statuses(engine) == Counter({"sent": 3, "retry": 1})


def exited_pid() -> int:
    """The pid of a process of this host that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def claim_for(engine, worker_id: str, count: int, lease: float = 300.0) -> None:
    """Claim `count` rows as `worker_id` would have, with a lease still running."""
    import datetime as dt

    with db.transaction(engine) as session:
        campaign = ledger.find_campaign(session, "2025-01")
        claimed = ledger.claim_batch(
            session, campaign.id, worker_id, count, dt.timedelta(seconds=lease), ["digest"]
        )
        assert len(claimed) == count


def test_rows_of_a_stopped_sender_are_waited_for_with_a_reason_or_taken_over(
    engine, settings, taxonomy, issue, tmp_path
) -> None:
    addresses = add_people(engine, settings, taxonomy, 8)
    plan_campaign(engine, settings, issue)
    crashed = f"{socket.gethostname()}:{exited_pid()}"
    claim_for(engine, crashed, 3)
    with running_sink() as sink:
        smtp_settings(settings, sink)
        # The library run waits, saying for what and until when; a stop ends the wait.
        stop = threading.Event()
        lines: list[str] = []

        def on_wait(line: str) -> None:
            lines.append(line)
            stop.set()

        report = send_month(engine, settings, issue, stop=stop, on_wait=on_wait).report
        assert lines == [
            f"waiting up to 5 min for 3 rows claimed by a stopped sender ({crashed}); "
            "--take-over to reclaim now"
        ]
        assert report.sent == 5 and not report.finished
        assert statuses(engine) == Counter({"sent": 5, "sending": 3})
        # --no-wait ends at once and says how to continue.
        config = write_config(
            tmp_path, delivery={"transport": "smtp"}, smtp={"host": sink.host, "port": sink.port}
        )
        base = ["--config", str(config), "send", "2025-01", "--yes"]
        left = CliRunner().invoke(main, [*base, "--no-wait"])
        assert left.exit_code == 0, left.output
        assert re.search(
            rf"^3 rows claimed by {re.escape(crashed)} until {CLOCK} \(stopped\): "
            r"`newsletter send 2025-01 --take-over` reclaims them now$",
            left.output,
            re.M,
        ), left.output
        # --take-over reclaims them now: every address once, nothing waited for.
        taken = CliRunner().invoke(main, [*base, "--take-over"])
        assert taken.exit_code == 0, taken.output
        assert f"took over 3 rows claimed by a stopped sender ({crashed})" in taken.output
        assert "campaign 2025-01: complete" in taken.output
        assert "waiting" not in taken.output
        assert Counter(m.recipients[0] for m in sink.messages) == Counter(addresses)
    assert statuses(engine) == Counter({"sent": 8})


def test_take_over_never_takes_the_rows_of_a_sender_still_running(
    engine, settings, taxonomy, issue, tmp_path
) -> None:
    add_people(engine, settings, taxonomy, 4)
    plan_campaign(engine, settings, issue)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        running = f"{socket.gethostname()}:{alive.pid}"
        claim_for(engine, running, 2)
        with running_sink() as sink:
            config = write_config(
                tmp_path,
                delivery={"transport": "smtp"},
                smtp={"host": sink.host, "port": sink.port},
            )
            args = ["--config", str(config), "send", "2025-01", "--yes", "--take-over", "--no-wait"]
            result = CliRunner().invoke(main, args)
            assert result.exit_code == 0, result.output
            assert len(sink.messages) == 2
        assert "took over" not in result.output
        assert re.search(
            rf"^2 rows claimed by {re.escape(running)} until {CLOCK}: run `newsletter send "
            r"2025-01` after that if they are still open$",
            result.output,
            re.M,
        ), result.output
        assert statuses(engine) == Counter({"sent": 2, "sending": 2})
    finally:
        alive.kill()
        alive.wait()


# --- [smtp] processes ----------------------------------------------------------------------


def test_two_sending_processes_share_one_send_without_duplicates(tmp_path, taxonomy) -> None:
    with running_sink(fault=slow_data) as sink:
        config = write_config(
            tmp_path,
            delivery={"transport": "smtp", "batch_size": 10},
            smtp={"host": sink.host, "port": sink.port, "connections": 2, "processes": 2},
        )
        settings = load_settings(config)
        engine = db.make_engine(settings.database.url)
        db.upgrade(engine)
        addresses = add_people(engine, settings, taxonomy, 120)
        output, _ = start_send(config).communicate(timeout=120)
        received = Counter(m.recipients[0] for m in sink.messages)
    text = output.decode()
    assert "sent 120, failed 0" in text, text
    assert "campaign 2025-01: complete" in text, text
    assert set(received) == set(addresses) and max(received.values()) == 1
    assert sink.connections == 4  # two per process
    with db.session_factory(engine)() as session:
        per_worker = Counter(session.scalars(select(Delivery.worker_id)))
    assert len(per_worker) == 2 and min(per_worker.values()) > 0  # both processes sent
    assert statuses(engine) == Counter({"sent": 120})
    engine.dispose()


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"delivery": {"rate_per_hour": 100}}, "smtp.processes: more than one sending process"),
        (
            {"smtp_servers": [{"host": "127.0.0.1", "processes": 2}]},
            "set processes in [smtp]",
        ),
    ],
)
def test_processes_that_cannot_work_are_refused_naming_the_setting(
    tmp_path, sections, message
) -> None:
    from newsletter.config import settings_from_dict

    data = {"smtp": {"processes": 2}, **sections}
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_from_dict(data, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request):
    """The test's SQLite engine, or one on PostgreSQL (its own schema)."""
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")


def test_the_recorder_commits_groups_of_one_and_more_and_gives_its_connection_back(
    any_engine, settings, taxonomy, issue
) -> None:
    """A group of one is its UPDATE alone in autocommit mode, a larger group one
    transaction; either is in the database once `wait` returns, and the pooled connection
    goes back in the transaction mode it came with."""
    import datetime as dt

    from newsletter.sending.durable import AcceptanceRecorder
    from newsletter.store.models import SENT
    from newsletter.store.models import utcnow

    engine = any_engine
    add_people(engine, settings, taxonomy, 5)
    plan_campaign(engine, settings, issue)
    with db.transaction(engine) as session:
        campaign = ledger.find_campaign(session, "2025-01")
        ids = ledger.claim_ids(session, campaign.id, "w1", 10, dt.timedelta(seconds=300))
    recorder = AcceptanceRecorder(engine, "w1")

    def sent(delivery_id: int) -> ledger.Result:
        return ledger.Result(delivery_id, SENT, reply="250 ok", sent_at=utcnow())

    def sent_ids() -> set[int]:
        with db.session_factory(engine)() as session:
            query = select(Delivery.id).where(Delivery.status == SENT)
            return set(session.scalars(query))

    assert recorder.submit(sent(ids[0])).wait()
    assert sent_ids() == {ids[0]}  # committed: another connection sees it
    driver = recorder._connection.dbapi_connection  # the one it keeps for the run
    tickets = [recorder.submit(sent(delivery_id)) for delivery_id in ids[1:4]]
    assert all(ticket.wait() for ticket in tickets)
    assert sent_ids() == set(ids[:4]) and recorder.commits == 2
    recorder.close()
    if engine.dialect.name == "sqlite":  # back in the pool as it came
        assert driver.isolation_level == ""
    else:
        assert driver.autocommit is False
