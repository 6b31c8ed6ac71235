"""The monthly slot as pure functions: parsing, next runs across months and DST, catch-up."""

from __future__ import annotations

import calendar
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsletter.config import ScheduleSection
from newsletter.config import duration_seconds
from newsletter.config import schedule_day
from newsletter.config import settings_from_dict
from newsletter.errors import ConfigError
from newsletter.scheduling.slots import MonthlySlot
from newsletter.scheduling.slots import catch_up
from newsletter.scheduling.slots import latest_run
from newsletter.scheduling.slots import month_for_run
from newsletter.scheduling.slots import next_monthly_runs

TORONTO = ZoneInfo("America/Toronto")
UTC = dt.UTC


def slot(day: str = "1st tue", time: str = "09:00", zone: str = "America/Toronto", grace="6h"):
    section = ScheduleSection(day=day, time=time, timezone=zone, misfire_grace=grace)
    return MonthlySlot.from_config(section)


def first_weekday(year: int, month: int, weekday: int) -> int:
    """Independent of APScheduler: the day of the month of the first `weekday` (0 = Monday)."""
    return next(d for d in range(1, 8) if calendar.weekday(year, month, d) == weekday)


# --- parsing the [schedule] section --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1st tue", "1st tue"),
        ("1st Tuesday", "1st tue"),
        ("first tues", "1st tue"),
        ("2nd wed", "2nd wed"),
        ("third thursday", "3rd thu"),
        ("4th sun", "4th sun"),
        ("last fri", "last fri"),
        ("Last Friday", "last fri"),
        ("1", "1"),
        ("15", "15"),
        ("28", "28"),
        ("last", "last"),
    ],
)
def test_schedule_day_accepts_words_people_write(text: str, expected: str) -> None:
    assert schedule_day(text) == expected


@pytest.mark.parametrize("text", ["5th tue", "29", "31", "0", "tue", "1st", "1st tu", "every tue"])
def test_schedule_day_refuses_days_that_are_not_in_every_month(text: str) -> None:
    with pytest.raises(ValueError, match="weekday of the month"):
        schedule_day(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("6h", 21600), ("1d", 86400), ("90s", 90), ("1h30m", 5400), (" 2 h ", 7200)],
)
def test_duration_seconds(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["6", "0h", "", "h", "6 hours", "-1h", "6h later"])
def test_duration_seconds_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        duration_seconds(text)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("day", "5th mon", "schedule.day"),
        ("time", "9am", "schedule.time"),
        ("time", "24:00", "schedule.time"),
        ("timezone", "Mars/Olympus_Mons", "schedule.timezone"),
        ("misfire_grace", "six hours", "schedule.misfire_grace"),
        ("on_missing", "email", "schedule.on_missing"),
        ("mode", "queue", "schedule.mode"),
        ("days", "1st tue", "unknown key 'schedule.days'"),
    ],
)
def test_config_errors_name_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        settings_from_dict({"schedule": {key: value}}, Path("."), "config.toml")


def test_config_defaults_and_normalization() -> None:
    settings = settings_from_dict(
        {"schedule": {"day": "First Tuesday", "time": "9:05", "timezone": "Europe/Paris"}},
        Path("."),
    )
    assert settings.schedule.day == "1st tue"
    assert settings.schedule.time == "09:05"
    assert settings.schedule.misfire_grace == "6h"
    assert settings.schedule.on_missing == "alert"
    assert settings.schedule.mode == "send"


# --- next runs -----------------------------------------------------------------------------


def test_first_tuesday_every_month_of_a_year_at_nine_local() -> None:
    runs = next_monthly_runs(slot(), dt.datetime(2025, 12, 31, tzinfo=TORONTO), 12)
    assert [(r.year, r.month) for r in runs] == [(2026, m) for m in range(1, 13)]
    for run in runs:
        assert run.day == first_weekday(run.year, run.month, calendar.TUESDAY)
        assert (run.hour, run.minute, run.second) == (9, 0, 0)
        assert run.tzinfo == TORONTO


def test_dst_keeps_local_time_and_moves_utc() -> None:
    # America/Toronto: EST (UTC-5) until the 2nd Sunday of March, EDT (UTC-4) until the
    # 1st Sunday of November. 09:00 local stays 09:00; the UTC time moves by an hour.
    runs = next_monthly_runs(slot(), dt.datetime(2026, 2, 1, tzinfo=UTC), 10)
    by_month = {r.month: r for r in runs}
    assert by_month[3].astimezone(UTC).hour == 14  # Tue 3 March: still EST
    assert by_month[4].astimezone(UTC).hour == 13  # Tue 7 April: EDT
    assert by_month[10].astimezone(UTC).hour == 13  # Tue 6 October: EDT
    assert by_month[11].astimezone(UTC).hour == 14  # Tue 3 November: EST again
    assert all(r.hour == 9 for r in runs)


def test_slot_on_the_day_clocks_change() -> None:
    # 2nd Sunday of March 2026 is the 8th, the day EDT starts; 1st Sunday of November 2026
    # is the 1st, the day it ends. 09:00 is after the change on both days.
    march = next_monthly_runs(slot("2nd sun"), dt.datetime(2026, 3, 1, tzinfo=UTC), 1)[0]
    assert (march.day, march.hour, march.utcoffset()) == (8, 9, dt.timedelta(hours=-4))
    november = next_monthly_runs(slot("1st sun"), dt.datetime(2026, 10, 15, tzinfo=UTC), 1)[0]
    assert (november.day, november.hour, november.utcoffset()) == (1, 9, dt.timedelta(hours=-5))


def test_last_weekday_and_days_of_the_month() -> None:
    after = dt.datetime(2026, 1, 1, tzinfo=UTC)
    last_fri = next_monthly_runs(slot("last fri"), after, 3)
    assert [r.date() for r in last_fri] == [
        dt.date(2026, 1, 30),
        dt.date(2026, 2, 27),
        dt.date(2026, 3, 27),
    ]
    fifteenth = next_monthly_runs(slot("15", "18:30"), after, 2)
    assert [(r.day, r.hour, r.minute) for r in fifteenth] == [(15, 18, 30), (15, 18, 30)]
    last_day = next_monthly_runs(slot("last"), after, 3)
    assert [r.day for r in last_day] == [31, 28, 31]


def test_runs_are_strictly_after_the_given_time() -> None:
    first = dt.datetime(2026, 1, 6, 9, 0, tzinfo=TORONTO)
    assert next_monthly_runs(slot(), first, 1)[0] == dt.datetime(2026, 2, 3, 9, tzinfo=TORONTO)
    just_before = first - dt.timedelta(seconds=1)
    assert next_monthly_runs(slot(), just_before, 1)[0] == first


def test_other_zones() -> None:
    tokyo = next_monthly_runs(slot(zone="Asia/Tokyo"), dt.datetime(2026, 1, 1, tzinfo=UTC), 1)
    assert tokyo[0].astimezone(UTC) == dt.datetime(2026, 1, 6, 0, 0, tzinfo=UTC)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        next_monthly_runs(slot(), dt.datetime(2026, 1, 1), 1)


def test_describe() -> None:
    assert slot().describe() == "the 1st Tuesday of each month at 09:00 (America/Toronto)"
    assert slot("last").describe().startswith("the last day of each month")
    assert slot("15").describe().startswith("day 15 of each month")


# --- which month a run sends ----------------------------------------------------------------


def test_the_run_in_month_m_sends_month_m() -> None:
    s = slot()
    run = dt.datetime(2026, 12, 1, 9, 0, tzinfo=TORONTO)
    assert month_for_run(s, run) == "2026-12"
    assert month_for_run(s, run + dt.timedelta(hours=5)) == "2026-12"
    # Before December's slot, the latest slot is November's.
    assert month_for_run(s, run - dt.timedelta(minutes=1)) == "2026-11"
    assert latest_run(s, run) == run


def test_a_late_run_after_midnight_still_sends_the_month_of_its_slot() -> None:
    s = slot("last", "23:00")
    late = dt.datetime(2026, 2, 1, 1, 30, tzinfo=TORONTO)  # 2.5 h after the 31 January slot
    assert month_for_run(s, late) == "2026-01"


def test_the_month_is_read_on_the_local_calendar() -> None:
    # 1 December 09:00 in Tokyo is still 30 November in UTC.
    s = slot("1", "09:00", "Asia/Tokyo")
    run = dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
    assert month_for_run(s, run) == "2026-12"


# --- catch-up after a restart ----------------------------------------------------------------


def test_first_start_schedules_the_next_run() -> None:
    now = dt.datetime(2026, 1, 2, tzinfo=TORONTO)
    decision = catch_up(slot(), None, now)
    assert decision.action == "none"
    assert decision.next_run_time == dt.datetime(2026, 1, 6, 9, tzinfo=TORONTO)


def test_restart_before_the_stored_run_keeps_it() -> None:
    stored = dt.datetime(2026, 1, 6, 9, tzinfo=TORONTO)
    decision = catch_up(slot(), stored, stored - dt.timedelta(days=1))
    assert (decision.action, decision.next_run_time) == ("none", stored)


def test_missed_run_inside_grace_fires_once() -> None:
    stored = dt.datetime(2026, 1, 6, 9, tzinfo=TORONTO)
    decision = catch_up(slot(grace="6h"), stored, stored + dt.timedelta(hours=5, minutes=59))
    assert decision.action == "fire"
    assert decision.next_run_time == stored  # due now: APScheduler runs it at once
    assert decision.missed_run == stored
    assert decision.month == "2026-01"


def test_missed_run_outside_grace_is_skipped() -> None:
    stored = dt.datetime(2026, 1, 6, 9, tzinfo=TORONTO)
    decision = catch_up(slot(grace="6h"), stored, stored + dt.timedelta(hours=6, seconds=1))
    assert decision.action == "skip"
    assert decision.missed_run == stored
    assert decision.next_run_time == dt.datetime(2026, 2, 3, 9, tzinfo=TORONTO)


def test_several_missed_months_are_coalesced_into_the_latest() -> None:
    stored = dt.datetime(2026, 1, 6, 9, tzinfo=TORONTO)
    now = dt.datetime(2026, 3, 3, 10, tzinfo=TORONTO)  # down since January
    decision = catch_up(slot(grace="6h"), stored, now)
    assert decision.action == "fire"
    assert decision.missed_count == 3  # January, February, March
    assert decision.missed_run == dt.datetime(2026, 3, 3, 9, tzinfo=TORONTO)
    assert decision.month == "2026-03"
    late = catch_up(slot(grace="6h"), stored, now + dt.timedelta(days=1))
    assert late.action == "skip"
    assert late.next_run_time == dt.datetime(2026, 4, 7, 9, tzinfo=TORONTO)
