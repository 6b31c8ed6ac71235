"""APScheduler on a real SQLite job store: restarts, missed runs, one-offs, the single lock."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.header
import mailbox
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import REPO
from conftest import write_config

from newsletter.config import Settings
from newsletter.config import load_settings
from newsletter.content.taxonomy import default_taxonomy
from newsletter.errors import ContentError
from newsletter.errors import ScheduleError
from newsletter.errors import SchedulerLockedError
from newsletter.scheduling import jobs
from newsletter.scheduling import service
from newsletter.scheduling.lock import DatabaseLock
from newsletter.scheduling.lock import SchedulerLock
from newsletter.store import engine as db
from newsletter.store.models import utcnow
from newsletter.store.subscribers import add_subscriber

TORONTO = ZoneInfo("America/Toronto")
SCHEDULE = {"day": "1st tue", "time": "09:00", "timezone": "America/Toronto"}
T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path, schedule=SCHEDULE, delivery={"transport": "maildir"})


@pytest.fixture
def settings(config_path: Path) -> Settings:
    return load_settings(config_path)


@pytest.fixture
def engine(settings: Settings):
    engine = db.make_engine(settings.database.url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait for something another thread or process does (not a timing assumption)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def maildir_messages(settings: Settings) -> list:
    # The scheduler's thread may be creating the Maildir right now: until tmp/, new/ and cur/
    # are all there it holds no message (reading a half-made one raises FileNotFoundError).
    folder = settings.delivery.maildir
    if not all((folder / name).is_dir() for name in ("tmp", "new", "cur")):
        return []
    return list(mailbox.Maildir(folder, create=False))


# --- restarts ---------------------------------------------------------------------------------


def test_restarts_never_duplicate_the_monthly_job(settings, config_path, engine) -> None:
    for start in range(3):
        with service.job_store(settings, engine) as scheduler:
            service.install_monthly_job(scheduler, settings, config_path, now=T0)
            monthly = [job for job in scheduler.get_jobs() if job.id == service.MONTHLY_JOB_ID]
            assert len(scheduler.get_jobs()) == 1, f"start {start}"
    job = monthly[0]
    assert job.func is jobs.monthly_job  # stored by reference: module-level, picklable
    assert job.args == (str(config_path.resolve()),)
    assert job.coalesce is True
    assert job.misfire_grace_time == 6 * 3600
    assert job.next_run_time == dt.datetime(2026, 1, 6, 9, tzinfo=TORONTO)


def _start_then_restart_at(settings, config_path, engine, restart_at: dt.datetime):
    with service.job_store(settings, engine) as scheduler:
        service.install_monthly_job(scheduler, settings, config_path, now=T0)
    # ... the scheduler is down over the 6 January slot, and comes back at `restart_at`.
    with service.job_store(settings, engine) as scheduler:
        decision = service.install_monthly_job(scheduler, settings, config_path, now=restart_at)
        return decision, service.monthly_next_run(scheduler)


def test_a_run_missed_while_down_fires_once_inside_the_grace_window(
    settings, config_path, engine
) -> None:
    slot = dt.datetime(2026, 1, 6, 9, tzinfo=TORONTO)
    decision, stored = _start_then_restart_at(
        settings, config_path, engine, slot + dt.timedelta(hours=2)
    )
    assert decision.action == "fire"
    assert decision.month == "2026-01"
    # Kept due: APScheduler runs it as soon as the scheduler resumes (coalesced: once).
    assert stored == slot


def test_a_run_missed_outside_the_grace_window_is_skipped(
    settings, config_path, engine, caplog
) -> None:
    slot = dt.datetime(2026, 1, 6, 9, tzinfo=TORONTO)
    decision, stored = _start_then_restart_at(
        settings, config_path, engine, slot + dt.timedelta(days=1)
    )
    assert decision.action == "skip"
    assert stored == dt.datetime(2026, 2, 3, 9, tzinfo=TORONTO)
    with caplog.at_level("WARNING", logger="newsletter.scheduler"):
        service.log_catch_up(decision, settings.schedule.misfire_grace)
    assert "was missed" in caplog.text and "misfire_grace (6h)" in caplog.text
    assert "newsletter send 2026-01" in caplog.text


def test_a_changed_slot_reschedules_the_job(settings, config_path, engine) -> None:
    with service.job_store(settings, engine) as scheduler:
        service.install_monthly_job(scheduler, settings, config_path, now=T0)
    settings.schedule.day = "15"
    with service.job_store(settings, engine) as scheduler:
        service.install_monthly_job(scheduler, settings, config_path, now=T0)
        assert len(scheduler.get_jobs()) == 1
        assert service.monthly_next_run(scheduler) == dt.datetime(2026, 1, 15, 9, tzinfo=TORONTO)


# --- one-off sends -----------------------------------------------------------------------------


def test_one_offs_are_validated_listed_and_removed(settings, config_path, engine) -> None:
    at = dt.datetime(2026, 12, 1, 9, 0, tzinfo=TORONTO)
    now = at - dt.timedelta(days=1)
    with service.job_store(settings, engine) as scheduler:
        one = service.add_one_off(scheduler, settings, config_path, "2025-01", at, now=now)
        assert (one.id, one.month, one.run_time) == ("send-2025-01", "2025-01", at)
        with pytest.raises(ScheduleError, match="already queued"):
            service.add_one_off(scheduler, settings, config_path, "2025-01", at, now=now)
        with pytest.raises(ScheduleError, match="in the past"):
            service.add_one_off(scheduler, settings, config_path, "2025-02", now, now=at)
        with pytest.raises(ScheduleError, match="2025-03 cannot be sent"):
            service.add_one_off(scheduler, settings, config_path, "2025-03", at, now=now)
        quarter = service.add_one_off(scheduler, settings, config_path, "2025-Q1", at, now=now)
        assert (quarter.id, quarter.month) == ("send-2025-Q1", "2025-Q1")
        with pytest.raises(
            ScheduleError, match=r"2025-Q2 cannot be sent: .*no issue for any month"
        ):
            service.add_one_off(scheduler, settings, config_path, "2025-Q2", at, now=now)
        with pytest.raises(ContentError, match="YYYY-Qn"):
            service.add_one_off(scheduler, settings, config_path, "2025-Q5", at, now=now)
    # Another process (a new scheduler object on the same store) sees and removes it.
    with service.job_store(settings, engine) as scheduler:
        assert sorted(o.id for o in service.one_offs(scheduler)) == [
            "send-2025-01",
            "send-2025-Q1",
        ]
        with pytest.raises(ScheduleError, match="monthly job"):
            service.remove_one_off(scheduler, service.MONTHLY_JOB_ID)
        service.remove_one_off(scheduler, "send-2025-01")
        service.remove_one_off(scheduler, "send-2025-Q1")
        assert service.one_offs(scheduler) == []
        with pytest.raises(ScheduleError, match="no queued send"):
            service.remove_one_off(scheduler, "send-2025-01")


def test_parse_local_time() -> None:
    at = service.parse_local_time("2026-12-01 09:00", TORONTO)
    assert at == dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC)
    assert service.parse_local_time("2026-07-01T09:00", TORONTO).utcoffset() == dt.timedelta(
        hours=-4
    )
    with pytest.raises(ScheduleError, match="does not exist"):
        service.parse_local_time("2026-03-08 02:30", TORONTO)  # clocks jump 02:00 -> 03:00
    with pytest.raises(ScheduleError, match="YYYY-MM-DD HH:MM"):
        service.parse_local_time("tomorrow 9am", TORONTO)


# --- the single-scheduler lock ---------------------------------------------------------------


def test_a_second_scheduler_is_refused_while_the_first_is_alive(engine) -> None:
    first = DatabaseLock(engine, owner="host-a:100:aaaa", heartbeat_seconds=30)
    second = DatabaseLock(engine, owner="host-b:200:bbbb", heartbeat_seconds=30)
    assert first.acquire(now=T0) == "acquired the scheduler lock"
    first.heartbeat(now=T0 + dt.timedelta(seconds=60))
    with pytest.raises(SchedulerLockedError, match="another scheduler is already running") as info:
        second.acquire(now=T0 + dt.timedelta(seconds=140))  # 80 s since the last heartbeat
    assert "host-a:100:aaaa" in str(info.value)
    assert first.holder().owner == "host-a:100:aaaa"
    # The holder may acquire again (a restart of the same process object).
    assert first.acquire(now=T0 + dt.timedelta(seconds=150)) == "acquired the scheduler lock"


def test_a_stale_lock_is_taken_over_and_the_old_holder_stops(engine) -> None:
    dead = DatabaseLock(engine, owner="host-a:100:aaaa", heartbeat_seconds=30)
    new = DatabaseLock(engine, owner="host-b:200:bbbb", heartbeat_seconds=30)
    dead.acquire(now=T0)
    message = new.acquire(now=T0 + dt.timedelta(seconds=91))  # > 3 heartbeats without one
    assert message.startswith("took over the scheduler lock from host-a:100:aaaa")
    assert new.holder().owner == "host-b:200:bbbb"
    # The old one comes back to life (e.g. a suspended VM): its next heartbeat says it lost.
    with pytest.raises(SchedulerLockedError, match="lost the scheduler lock"):
        dead.heartbeat(now=T0 + dt.timedelta(seconds=95))
    dead.release()  # only the holder's release counts
    assert new.holder() is not None
    new.release()
    assert new.holder() is None


def test_run_scheduler_refuses_to_start_when_locked(settings, config_path, engine) -> None:
    DatabaseLock(engine, owner="elsewhere:1:cccc").acquire()
    stop = threading.Event()
    with pytest.raises(SchedulerLockedError, match="elsewhere:1:cccc"):
        service.run_scheduler(settings, config_path, stop, engine=engine)
    with service.job_store(settings, engine) as scheduler:
        assert scheduler.get_jobs() == []  # refused before touching the job store


# --- the real scheduler, in a thread ----------------------------------------------------------


@contextlib.contextmanager
def scheduler_thread(settings, config_path, engine, wake_seconds: float = 0.1):
    stop = threading.Event()
    started = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            service.run_scheduler(
                settings,
                config_path,
                stop,
                engine=engine,
                wake_seconds=wake_seconds,
                on_started=lambda _scheduler: started.set(),
            )
        except BaseException as error:  # reported in the test thread
            errors.append(error)
            started.set()

    thread = threading.Thread(target=target)
    thread.start()
    try:
        assert started.wait(15)
        assert not errors, errors
        yield
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
    assert not errors, errors


def test_a_one_off_added_by_another_process_goes_out(settings, config_path, engine) -> None:
    with db.session_factory(engine)() as session:
        add_subscriber(session, settings, default_taxonomy(), "reader@example.org")
        session.commit()
    with scheduler_thread(settings, config_path, engine):
        assert DatabaseLock(engine).holder() is not None
        with service.job_store(settings, engine) as other:
            at = utcnow() + dt.timedelta(seconds=1)
            service.add_one_off(other, settings, config_path, "2025-01", at)
        wait_for(lambda: len(maildir_messages(settings)) == 1)
        with service.job_store(settings, engine) as other:
            wait_for(lambda: service.one_offs(other) == [])  # a date job is gone once run
    assert DatabaseLock(engine).holder() is None  # released on stop
    assert maildir_messages(settings)[0]["To"] == "reader@example.org"


def test_a_one_off_round_up_goes_out_to_the_quarterly_readers(
    settings, config_path, engine
) -> None:
    from newsletter.store.registrar import set_frequency

    with db.session_factory(engine)() as session:
        add_subscriber(session, settings, default_taxonomy(), "monthly@example.org")
        quarterly = add_subscriber(session, settings, default_taxonomy(), "q@example.org")
        set_frequency(session, quarterly, "quarterly")
        session.commit()
    with scheduler_thread(settings, config_path, engine):
        with service.job_store(settings, engine) as other:
            at = utcnow() + dt.timedelta(seconds=1)
            one = service.add_one_off(other, settings, config_path, "2025-Q1", at)
            assert (one.id, one.month) == ("send-2025-Q1", "2025-Q1")
        wait_for(lambda: len(maildir_messages(settings)) == 1)
        with service.job_store(settings, engine) as other:
            wait_for(lambda: service.one_offs(other) == [])
    (message,) = maildir_messages(settings)
    assert message["To"] == "q@example.org"
    subject = str(email.header.make_header(email.header.decode_header(message["Subject"])))
    assert "quarterly round-up, January–March 2025" in subject


def test_a_missed_monthly_run_fires_on_start(settings, config_path, engine) -> None:
    # The stored monthly run is ten minutes overdue: inside the 6 h grace, so it runs at
    # start. Its month (the real current one) has no content: the admin alert is the proof.
    with service.job_store(settings, engine) as scheduler:
        service.install_monthly_job(scheduler, settings, config_path)
        scheduler.modify_job(
            service.MONTHLY_JOB_ID, next_run_time=utcnow() - dt.timedelta(minutes=10)
        )
    with scheduler_thread(settings, config_path, engine):
        wait_for(lambda: len(maildir_messages(settings)) == 1)
    alert = maildir_messages(settings)[0]
    assert alert["To"] == "admin@example.org"
    assert "was not sent" in alert["Subject"]
    with service.job_store(settings, engine) as scheduler:
        assert service.monthly_next_run(scheduler) > utcnow()  # fired once, then next month


def test_a_one_off_missed_beyond_the_grace_is_reported_and_dropped(
    settings, config_path, engine, caplog
) -> None:
    with service.job_store(settings, engine) as other:
        at = utcnow() + dt.timedelta(days=1)
        service.add_one_off(other, settings, config_path, "2025-01", at)
        # ... but the scheduler was down until 7 hours after its time (grace: 6 h).
        other.modify_job("send-2025-01", next_run_time=utcnow() - dt.timedelta(hours=7))
    with (
        caplog.at_level("WARNING", logger="newsletter.scheduler"),
        scheduler_thread(settings, config_path, engine),
    ):
        with service.job_store(settings, engine) as other:
            wait_for(lambda: service.one_offs(other) == [])
        wait_for(lambda: "missed its run" in caplog.text)
    assert "job send-2025-01 missed its run" in caplog.text
    assert "`newsletter send 2025-01`" in caplog.text
    assert maildir_messages(settings) == []


# --- the command, as a service manager runs it ------------------------------------------------


def _newsletter(config_path: Path, *args: str) -> subprocess.Popen:
    code = "import sys; from newsletter.cli import main; main(sys.argv[1:])"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, "--config", str(config_path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO,
    )


def test_scheduler_command_stops_on_sigterm_and_refuses_a_second_instance(
    config_path, engine
) -> None:
    first = _newsletter(config_path, "scheduler")
    try:
        lines: list[str] = []
        assert first.stdout is not None
        for line in first.stdout:
            lines.append(line)
            if "scheduler started" in line:
                break
        assert any("scheduler started" in line for line in lines), "".join(lines)
        second = _newsletter(config_path, "scheduler")
        output, _ = second.communicate(timeout=60)
        assert second.returncode == 1
        assert "another scheduler is already running" in output
        first.send_signal(signal.SIGTERM)
        rest, _ = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, rest
    assert "SIGTERM: stopping the scheduler" in rest and "scheduler stopped" in rest
    with db.session_factory(engine)() as session:
        assert session.get(SchedulerLock, 1) is None


@pytest.mark.postgres
def test_lock_and_job_store_on_postgresql(settings, config_path, pg_engine) -> None:
    first = DatabaseLock(pg_engine, owner="host-a:1:aaaa")
    second = DatabaseLock(pg_engine, owner="host-b:2:bbbb")
    first.acquire(now=T0)
    with pytest.raises(SchedulerLockedError, match="host-a:1:aaaa"):
        second.acquire(now=T0 + dt.timedelta(seconds=30))
    assert second.acquire(now=T0 + dt.timedelta(seconds=91)).startswith("took over")
    with pytest.raises(SchedulerLockedError, match="lost the scheduler lock"):
        first.heartbeat(now=T0 + dt.timedelta(seconds=92))
    for _start in range(2):
        with service.job_store(settings, pg_engine) as scheduler:
            service.install_monthly_job(scheduler, settings, config_path, now=T0)
            assert [job.id for job in scheduler.get_jobs()] == [service.MONTHLY_JOB_ID]
