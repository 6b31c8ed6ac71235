"""`newsletter schedule show/add/remove` and `newsletter scheduler` through the CLI runner."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from conftest import write_config

from newsletter.cli import main
from newsletter.config import load_settings
from newsletter.scheduling.lock import DatabaseLock
from newsletter.store import engine as db
from newsletter.store.models import utcnow

TORONTO = ZoneInfo("America/Toronto")
SCHEDULE = {"day": "1st tue", "time": "09:00", "timezone": "America/Toronto"}


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = write_config(tmp_path, schedule=SCHEDULE, delivery={"transport": "maildir"})
    engine = db.make_engine(load_settings(path).database.url)
    db.upgrade(engine)
    engine.dispose()
    return path


def invoke(runner: CliRunner, config_path: Path, *args: str):
    return runner.invoke(main, ["--config", str(config_path), *args], catch_exceptions=False)


def in_toronto(delta: dt.timedelta) -> str:
    """Noon local time, `delta` from now (noon: never inside a DST gap)."""
    return f"{(utcnow() + delta).astimezone(TORONTO):%Y-%m-%d} 12:00"


def test_show_lists_three_monthly_runs_in_the_configured_zone(runner, config_path) -> None:
    result = invoke(runner, config_path, "schedule", "show")
    assert result.exit_code == 0, result.output
    assert "the 1st Tuesday of each month at 09:00 (America/Toronto)" in result.output
    runs = re.findall(r"Tue (\d{4}-\d{2})-\d{2} 09:00 E[SD]T  sends (\d{4}-\d{2})", result.output)
    assert len(runs) == 3
    assert all(run_month == sent for run_month, sent in runs)  # the run in M sends M
    assert "no content yet" in result.output
    assert "has not run yet" in result.output
    assert "one-off sends: none queued" in result.output


def test_add_show_and_remove_a_one_off_send(runner, config_path) -> None:
    at = in_toronto(dt.timedelta(days=30))
    added = invoke(runner, config_path, "schedule", "add", "2025-01", "--at", at)
    assert added.exit_code == 0, added.output
    assert f"queued send-2025-01: 2025-01 at {dt.date.fromisoformat(at[:10]):%a} {at}" in (
        added.output
    )

    shown = invoke(runner, config_path, "schedule", "show")
    assert re.search(rf"send-2025-01  \w{{3}} {re.escape(at)} E[SD]T  sends 2025-01", shown.output)

    again = invoke(runner, config_path, "schedule", "add", "2025-01", "--at", at)
    assert again.exit_code == 1
    assert "already queued" in again.output

    removed = invoke(runner, config_path, "schedule", "remove", "send-2025-01")
    assert removed.exit_code == 0, removed.output
    assert "removed send-2025-01" in removed.output
    assert "none queued" in invoke(runner, config_path, "schedule", "show").output

    gone = invoke(runner, config_path, "schedule", "remove", "send-2025-01")
    assert gone.exit_code == 1
    assert "no queued send with id 'send-2025-01'" in gone.output


def test_add_and_show_a_quarters_round_up(runner, config_path) -> None:
    at = in_toronto(dt.timedelta(days=30))
    added = invoke(runner, config_path, "schedule", "add", "2025-Q1", "--at", at)
    assert added.exit_code == 0, added.output
    round_up = "2025-Q1 (the quarterly round-up of January–March 2025)"
    assert f"queued send-2025-Q1: {round_up} at" in added.output
    shown = invoke(runner, config_path, "schedule", "show", "--count", "12")
    assert re.search(
        rf"send-2025-Q1  \w{{3}} {re.escape(at)} E[SD]T  sends {re.escape(round_up)}",
        shown.output,
    )
    # A year of monthly runs: the four that open a quarter also send the one before.
    opening = r"sends \d{4}-(?:01|04|07|10) \(.*\), then the \d{4}-Q\d round-up"
    assert len(re.findall(opening, shown.output)) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["2025-01", "--at", "2020-01-01 09:00"], "is in the past"),
        (["2025-Q1", "--at", "2020-01-01 09:00"], "is in the past"),
        (["2025-Q3", "--at", "2099-01-01 09:00"], "2025-Q3 cannot be sent"),
        (["2025-Q5", "--at", "2099-01-01 09:00"], "YYYY-Qn"),
        (["2025-03", "--at", "2099-01-01 09:00"], "2025-03 cannot be sent"),
        (["2025-13", "--at", "2099-01-01 09:00"], "YYYY-MM"),
        (["2025-01", "--at", "next tuesday"], "expected 'YYYY-MM-DD HH:MM'"),
        (["2025-01", "--at", "2099-03-08 02:30"], "does not exist in America/Toronto"),
    ],
)
def test_add_refuses(runner, config_path, args: list[str], message: str) -> None:
    result = invoke(runner, config_path, "schedule", "add", *args)
    assert result.exit_code == 1
    assert message in result.output


def test_remove_refuses_the_monthly_job(runner, config_path) -> None:
    result = invoke(runner, config_path, "schedule", "remove", "monthly")
    assert result.exit_code == 1
    assert "[schedule]" in result.output


def test_schedule_needs_a_migrated_database(runner, tmp_path) -> None:
    path = write_config(tmp_path, schedule=SCHEDULE)
    result = invoke(runner, path, "schedule", "show")
    assert result.exit_code == 1
    assert "newsletter db upgrade" in result.output


def test_scheduler_command_exits_when_another_one_runs(runner, config_path) -> None:
    engine = db.make_engine(load_settings(config_path).database.url)
    try:
        DatabaseLock(engine, owner="other-host:42:abcd").acquire()
        result = invoke(runner, config_path, "scheduler")
    finally:
        engine.dispose()
    assert result.exit_code == 1
    assert "another scheduler is already running" in result.output
    assert "other-host:42:abcd" in result.output
