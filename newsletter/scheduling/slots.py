"""The monthly slot as pure functions of a clock: next runs, the month a run sends, catch-up.

Nothing here reads the system clock: every function takes `now` (or `after`), so tests can
walk through months, DST changes and restarts without sleeping. The APScheduler trigger the
scheduler runs on is built here too (`MonthlySlot.trigger`), so `schedule show` and the
running scheduler agree by construction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from newsletter.config import ScheduleSection
from newsletter.config import duration_seconds

_DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
_ONE_MICROSECOND = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class MonthlySlot:
    """When the monthly issue goes out: a cron `day` expression, a local time, a zone."""

    day: str  # normalized by the config: "1st tue", "last fri", "15", "last"
    hour: int
    minute: int
    zone: ZoneInfo
    grace: dt.timedelta

    @classmethod
    def from_config(cls, schedule: ScheduleSection) -> MonthlySlot:
        """The slot of a validated `[schedule]` section."""
        hour, minute = (int(part) for part in schedule.time.split(":"))
        return cls(
            day=schedule.day,
            hour=hour,
            minute=minute,
            zone=ZoneInfo(schedule.timezone),
            grace=dt.timedelta(seconds=duration_seconds(schedule.misfire_grace)),
        )

    def trigger(self) -> CronTrigger:
        """The APScheduler trigger: wall-clock time in the zone, so DST never moves it."""
        return CronTrigger(
            day=self.day, hour=self.hour, minute=self.minute, second=0, timezone=self.zone
        )

    def describe(self) -> str:
        """'the 1st Tuesday of each month at 09:00 (America/Toronto)'."""
        words = self.day.split()
        if len(words) == 2:
            day = f"the {words[0]} {_DAY_NAMES[words[1]]}"
        elif self.day == "last":
            day = "the last day"
        else:
            day = f"day {self.day}"
        return f"{day} of each month at {self.hour:02d}:{self.minute:02d} ({self.zone.key})"


def next_monthly_runs(slot: MonthlySlot, after: dt.datetime, count: int) -> list[dt.datetime]:
    """The next `count` run times strictly after `after`, as aware datetimes in the slot's zone."""
    trigger = slot.trigger()
    runs: list[dt.datetime] = []
    previous: dt.datetime | None = None
    start = _aware(after) + _ONE_MICROSECOND
    while len(runs) < count:
        run = trigger.get_next_fire_time(previous, start)
        if run is None:  # cannot happen with a monthly cron; guards an endless loop
            break
        runs.append(run.astimezone(slot.zone))
        previous, start = run, run + _ONE_MICROSECOND
    return runs


def runs_between(slot: MonthlySlot, after: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """Run times strictly after `after` and at or before `until`, oldest first."""
    runs: list[dt.datetime] = []
    while True:
        (run,) = next_monthly_runs(slot, runs[-1] if runs else after, 1)
        if run > _aware(until):
            return runs
        runs.append(run)


def latest_run(slot: MonthlySlot, now: dt.datetime) -> dt.datetime | None:
    """The most recent run time at or before `now` (None only for a slot that never fired)."""
    now = _aware(now)
    # Two months back always holds at least one monthly run time.
    candidates = next_monthly_runs(slot, now - dt.timedelta(days=63), 4)
    earlier = [run for run in candidates if run <= now]
    return earlier[-1] if earlier else None


def month_of(run_time: dt.datetime, zone: ZoneInfo) -> str:
    """'YYYY-MM' of a run time, read on the slot's local calendar."""
    local = _aware(run_time).astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"


def month_for_run(slot: MonthlySlot, now: dt.datetime) -> str:
    """The month the monthly job sends when it runs at `now`.

    The rule: the run scheduled in month M sends `content/M`. A late run (inside the misfire
    grace) still sends the month of the slot it belongs to, even after midnight on the 1st.
    """
    run = latest_run(slot, now)
    return month_of(run if run is not None else now, slot.zone)


@dataclass(frozen=True)
class CatchUp:
    """What to do at start-up about the run time stored in the job store."""

    action: Literal["none", "fire", "skip"]
    next_run_time: dt.datetime  # what the job store should hold from now on
    missed_run: dt.datetime | None = None  # the (latest) slot that passed while we were down
    missed_count: int = 0  # slots that passed while down; coalesced into one decision

    @property
    def month(self) -> str | None:
        """The month of the missed slot, if any."""
        if self.missed_run is None:
            return None
        return f"{self.missed_run.year:04d}-{self.missed_run.month:02d}"


def catch_up(slot: MonthlySlot, stored_next: dt.datetime | None, now: dt.datetime) -> CatchUp:
    """Decide, at start-up, between firing a missed run once and skipping it.

    `stored_next` is the next run time the job store held when the scheduler went down (None
    for a first start). Runs missed while down are coalesced into the latest one; it fires once
    if `now` is still within `slot.grace` of it, otherwise it is skipped (and reported) and the
    job waits for the next slot.
    """
    now = _aware(now)
    if stored_next is None or _aware(stored_next) > now:
        upcoming = stored_next or next_monthly_runs(slot, now, 1)[0]
        return CatchUp("none", _aware(upcoming).astimezone(slot.zone))
    stored_next = _aware(stored_next)
    missed = [stored_next.astimezone(slot.zone), *runs_between(slot, stored_next, now)]
    latest = missed[-1]
    if now - latest <= slot.grace:
        return CatchUp("fire", latest, latest, len(missed))
    return CatchUp("skip", next_monthly_runs(slot, now, 1)[0], latest, len(missed))


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: give an aware one (the slot has a time zone)")
    return value
