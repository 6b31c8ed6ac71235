"""APScheduler 3 wiring: the job store in the project database, the jobs, the foreground loop.

Jobs live in APScheduler's SQLAlchemy job store (table `scheduler_jobs`, created by APScheduler
on first start) so that they survive restarts. The monthly job has a fixed id and is replaced
on every start, keeping its stored next run time, so a restart never adds a copy and a run
missed while the scheduler was down is caught up once (see `slots.catch_up`). One-off sends
have ids `send-YYYY-MM` and are added and removed by other processes (`newsletter schedule`)
through a scheduler that is started paused and never runs jobs.

APScheduler 3 only reads the job store when it wakes up for its next due job, so it would not
notice a one-off added by another process for an earlier time. The foreground loop wakes it
every `wake_seconds` (and refreshes the lock heartbeat at the same time).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from apscheduler.events import EVENT_JOB_ERROR
from apscheduler.events import EVENT_JOB_EXECUTED
from apscheduler.events import EVENT_JOB_MISSED
from apscheduler.events import JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter.config import Settings
from newsletter.content.model import parse_month
from newsletter.content.roundup import parse_quarter
from newsletter.errors import ScheduleError
from newsletter.scheduling import jobs
from newsletter.scheduling.lock import HEARTBEAT_SECONDS
from newsletter.scheduling.lock import DatabaseLock
from newsletter.scheduling.slots import CatchUp
from newsletter.scheduling.slots import MonthlySlot
from newsletter.scheduling.slots import catch_up
from newsletter.scheduling.slots import month_for_run
from newsletter.scheduling.slots import next_monthly_runs
from newsletter.store.engine import make_engine
from newsletter.store.engine import require_schema
from newsletter.store.models import utcnow

log = logging.getLogger("newsletter.scheduler")

JOBS_TABLE = "scheduler_jobs"
MONTHLY_JOB_ID = "monthly"
ONE_OFF_PREFIX = "send-"
WAKE_SECONDS = HEARTBEAT_SECONDS
TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class OneOff:
    """A queued one-off send."""

    id: str
    month: str
    run_time: dt.datetime  # in the configured zone


class Scheduler(BackgroundScheduler):
    """APScheduler's background scheduler, minus one last round of jobs after `shutdown()`.

    APScheduler 3 wakes its loop once more after shutting its executors down: a job due at
    that moment fails to submit ("cannot schedule new futures") and is then advanced or
    removed as if it had run. Skipping that round leaves it due for the next start.
    """

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        return super()._process_jobs()


class StoreScheduler(BaseScheduler):
    """A scheduler that only reads and writes the job store: no thread, never runs a job.

    Started paused by `newsletter schedule …` in its own process. (A paused
    BackgroundScheduler would not do: its loop still processes due jobs once on shutdown.)
    """

    def shutdown(self, wait: bool = True) -> None:
        """Close the job store."""
        super().shutdown(wait)

    def wakeup(self) -> None:
        """Nothing to wake: jobs are run by the `newsletter scheduler` process."""


def make_scheduler(
    settings: Settings, engine: Engine, cls: type[BaseScheduler] = Scheduler
) -> BaseScheduler:
    """A scheduler on the project database, in the configured zone, not started."""
    slot = MonthlySlot.from_config(settings.schedule)
    return cls(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
        # Two threads: a one-off and the monthly run may overlap; sends still run one at a
        # time (jobs._SEND_LOCK), but a waiting job is not reported as missed.
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(slot.grace.total_seconds()),
        },
        timezone=slot.zone,
    )


@contextlib.contextmanager
def job_store(settings: Settings, engine: Engine | None = None) -> Iterator[BaseScheduler]:
    """A scheduler on the job store that reads and writes jobs and never runs them.

    This is how other processes (`newsletter schedule …`, the web admin) manage the jobs of
    the running scheduler.
    """
    own_engine = engine is None
    engine = engine or make_engine(settings.database.url)
    require_schema(engine)
    scheduler = make_scheduler(settings, engine, StoreScheduler)
    scheduler.start(paused=True)
    try:
        yield scheduler
    finally:
        scheduler.shutdown(wait=False)
        if own_engine:
            engine.dispose()


def install_monthly_job(
    scheduler: BaseScheduler,
    settings: Settings,
    config_path: str | Path,
    now: dt.datetime | None = None,
) -> CatchUp:
    """Add (or replace) the monthly job, deciding what to do about a run missed while down.

    The scheduler must be started (paused) so that the stored job can be read. A plain
    `replace_existing=True` would overwrite the stored next run time with the next *future*
    one and silently drop a missed run, so the stored time is carried over when the slot is
    unchanged, and `catch_up` decides between firing it once and skipping it.
    """
    slot = MonthlySlot.from_config(settings.schedule)
    trigger = slot.trigger()
    now = now or utcnow()
    existing = scheduler.get_job(MONTHLY_JOB_ID)
    stored = None
    if existing is not None and repr(existing.trigger) == repr(trigger):
        stored = existing.next_run_time
    elif existing is not None:
        log.info("the [schedule] slot changed: the monthly job is rescheduled")
    decision = catch_up(slot, stored, now)
    scheduler.add_job(
        jobs.monthly_job,
        trigger=trigger,
        args=[str(Path(config_path).resolve())],
        id=MONTHLY_JOB_ID,
        name="monthly send",
        replace_existing=True,
        next_run_time=decision.next_run_time,
    )
    return decision


def log_catch_up(decision: CatchUp, grace: str) -> None:
    """Say what start-up decided about a missed monthly run (`grace` as configured)."""
    if decision.action == "fire":
        log.warning(
            "the monthly run of %s at %s was missed while the scheduler was down; it is "
            "within misfire_grace (%s), so it runs now",
            decision.month,
            _local(decision.missed_run),
            grace,
        )
    elif decision.action == "skip":
        log.warning(
            "the monthly run of %s at %s was missed while the scheduler was down, more than "
            "misfire_grace (%s) ago: skipped. Send it by hand with `newsletter send %s` if it "
            "should still go out",
            decision.month,
            _local(decision.missed_run),
            grace,
            decision.month,
        )


def parse_local_time(text: str, zone: dt.tzinfo) -> dt.datetime:
    """'2026-12-01 09:00' read as wall-clock time in `zone`; errors for nonexistent times."""
    for fmt in TIME_FORMATS:
        try:
            naive = dt.datetime.strptime(text.strip(), fmt)
            break
        except ValueError:
            continue
    else:
        raise ScheduleError(f"--at {text!r}: expected 'YYYY-MM-DD HH:MM' (local time)")
    local = naive.replace(tzinfo=zone)
    # A time skipped by a DST change does not survive the round trip through UTC.
    if local.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise ScheduleError(f"--at {text!r} does not exist in {zone} (clocks jump at DST)")
    return local


def add_one_off(
    scheduler: BaseScheduler,
    settings: Settings,
    config_path: str | Path,
    month: str,
    at: dt.datetime,
    now: dt.datetime | None = None,
) -> OneOff:
    """Queue a one-off send of `month` at `at` (aware); refuses the past and missing content.

    `month` is a month ("2026-11") or a quarter ("2026-Q4"): then the quarter's round-up goes
    out at `at` to its readers, as on the slot of the quarter's first month after it.
    """
    if month[4:6] == "-Q":  # a quarter, or a misspelt one (parse_quarter says what is wrong)
        parse_quarter(month)
    else:
        parse_month(month)
    now = now or utcnow()
    zone = MonthlySlot.from_config(settings.schedule).zone
    if at <= now:
        raise ScheduleError(
            f"{at.astimezone(zone):%Y-%m-%d %H:%M %Z} is in the past "
            f"(now {now.astimezone(zone):%Y-%m-%d %H:%M %Z})"
        )
    errors = jobs.content_errors(settings, month)
    if errors:
        raise ScheduleError(f"{month} cannot be sent: " + "; ".join(errors))
    job_id = ONE_OFF_PREFIX + month
    existing = scheduler.get_job(job_id)
    if existing is not None:
        raise ScheduleError(
            f"a send of {month} is already queued for {_local(existing.next_run_time)}: "
            f"remove it first with `newsletter schedule remove {job_id}`"
        )
    job = scheduler.add_job(
        jobs.one_off_job,
        trigger=DateTrigger(run_date=at, timezone=zone),
        args=[str(Path(config_path).resolve()), month],
        id=job_id,
        name=f"one-off send of {month}",
    )
    return OneOff(job.id, month, at.astimezone(zone))


def one_offs(scheduler: BaseScheduler) -> list[OneOff]:
    """The queued one-off sends, soonest first."""
    zone = scheduler.timezone
    found = [
        OneOff(job.id, job.args[1], job.next_run_time.astimezone(zone))
        for job in scheduler.get_jobs()
        if job.id.startswith(ONE_OFF_PREFIX) and job.next_run_time is not None
    ]
    return sorted(found, key=lambda one: one.run_time)


def remove_one_off(scheduler: BaseScheduler, job_id: str) -> OneOff:
    """Remove a queued one-off send by id."""
    if job_id == MONTHLY_JOB_ID:
        raise ScheduleError(
            "the monthly job comes from [schedule] in the configuration: change it there"
        )
    job = scheduler.get_job(job_id)
    if job is None or not job_id.startswith(ONE_OFF_PREFIX):
        queued = ", ".join(one.id for one in one_offs(scheduler)) or "none"
        raise ScheduleError(f"no queued send with id {job_id!r} (queued: {queued})")
    try:
        scheduler.remove_job(job_id)
    except JobLookupError:  # it ran or was removed a moment ago
        raise ScheduleError(f"{job_id} is no longer queued") from None
    return OneOff(job.id, job.args[1], job.next_run_time.astimezone(scheduler.timezone))


def monthly_next_run(scheduler: BaseScheduler) -> dt.datetime | None:
    """The monthly job's stored next run time (None until a scheduler has started once)."""
    job: Job | None = scheduler.get_job(MONTHLY_JOB_ID)
    return job.next_run_time if job is not None else None


def _on_event(event: JobExecutionEvent) -> None:
    if event.code == EVENT_JOB_MISSED:
        month = _job_month(event.job_id, event.scheduled_run_time)
        log.warning(
            "job %s missed its run at %s by more than misfire_grace: skipped. Send %s by hand "
            "with `newsletter send %s` if it should still go out",
            event.job_id,
            _local(event.scheduled_run_time),
            month,
            month,
        )
    elif event.code == EVENT_JOB_ERROR:
        log.error("job %s failed: %r", event.job_id, event.exception)
    else:
        log.info("job %s finished", event.job_id)


def _job_month(job_id: str, run_time: dt.datetime) -> str:
    if job_id.startswith(ONE_OFF_PREFIX):
        return job_id.removeprefix(ONE_OFF_PREFIX)
    return f"{run_time.year:04d}-{run_time.month:02d}"


def _local(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M %Z}" if value is not None else "-"


def run_scheduler(
    settings: Settings,
    config_path: str | Path,
    stop: threading.Event,
    *,
    engine: Engine | None = None,
    wake_seconds: float = WAKE_SECONDS,
    lock: DatabaseLock | None = None,
    on_started: Callable[[BaseScheduler], None] | None = None,
) -> None:
    """Run the scheduler until `stop` is set: the process `newsletter scheduler` runs.

    Raises `SchedulerLockedError` at once if another scheduler holds this database, or later
    if it loses the lock. On stop, a send in progress drains before this returns.
    """
    own_engine = engine is None
    engine = engine or make_engine(settings.database.url)
    require_schema(engine)
    lock = lock or DatabaseLock(engine, heartbeat_seconds=wake_seconds)
    log.info("%s", lock.acquire())
    slot = MonthlySlot.from_config(settings.schedule)
    scheduler = make_scheduler(settings, engine)
    scheduler.add_listener(_on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_EXECUTED)
    jobs.STOP.clear()
    try:
        scheduler.start(paused=True)
        now = utcnow()
        decision = install_monthly_job(scheduler, settings, config_path, now)
        log_catch_up(decision, settings.schedule.misfire_grace)
        (upcoming,) = next_monthly_runs(slot, now, 1)
        log.info(
            "monthly send: %s; next run %s (sends %s, mode %s)",
            slot.describe(),
            _local(upcoming),
            month_for_run(slot, upcoming),
            settings.schedule.mode,
        )
        for one in one_offs(scheduler):
            log.info("queued: %s at %s", one.id, _local(one.run_time))
        scheduler.resume()
        log.info("scheduler started (owner %s); SIGTERM or Ctrl-C stops it", lock.owner)
        if on_started is not None:
            on_started(scheduler)
        while not stop.wait(wake_seconds):
            try:
                lock.heartbeat()
            except SQLAlchemyError as error:  # a database hiccup: try again next time
                log.warning("heartbeat failed: %s", error)
            scheduler.wakeup()  # see jobs added by `newsletter schedule add` meanwhile
    finally:
        log.info("stopping: a send in progress finishes its message in flight")
        jobs.STOP.set()
        if scheduler.running:
            scheduler.shutdown(wait=True)
        with contextlib.suppress(SQLAlchemyError):
            lock.release()
        if own_engine:
            engine.dispose()
        log.info("scheduler stopped")
