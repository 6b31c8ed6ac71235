"""A plan written in parts on PostgreSQL: several connections, each committing its range of
subscribers, the campaign PLANNING (left alone by workers) until every part has committed."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func
from sqlalchemy import select

from newsletter.content.reader import load_issue
from newsletter.sending.plan import plan_campaign
from newsletter.sending.worker import due_campaigns
from newsletter.store import engine as db
from newsletter.store import ledger
from newsletter.store import planning
from newsletter.store.models import PLANNED
from newsletter.store.models import PLANNING
from newsletter.store.models import Delivery
from tests.test_planning import CHOICES
from tests.test_planning import _wait_for_a_lock_wait
from tests.test_planning import add_people
from tests.test_planning import assert_rows_are_choose_variants
from tests.test_planning import ledger_rows


@pytest.fixture
def issue(settings, taxonomy):
    return load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)


@pytest.fixture
def in_parts(monkeypatch) -> list[int]:
    """Plans of any size split in two; the list gets each split plan's number of parts."""
    monkeypatch.setattr(planning, "MIN_PART", 1)
    monkeypatch.setattr(planning, "PARTS", 2)
    seen: list[int] = []
    split = planning._insert_parts

    def counted(connection, sources):
        seen.append(len(sources))
        return split(connection, sources)

    monkeypatch.setattr(planning, "_insert_parts", counted)
    return seen


class SecondPart:
    """Holds the second part's INSERT until `go` (or makes it fail, with `fail`)."""

    def __init__(self, monkeypatch, fail: bool = False) -> None:
        self.go = threading.Event()
        self.calls = 0
        self.lock = threading.Lock()
        run = planning._insert_postgresql

        def held(connection, source):
            with self.lock:
                self.calls += 1
                second = self.calls == 2
            if second:
                if fail:
                    raise ConnectionError("the planner's connection was lost")
                assert self.go.wait(60)
            return run(connection, source)

        monkeypatch.setattr(planning, "_insert_postgresql", held)


def campaign_status(engine, month: str) -> str:
    with db.session_factory(engine)() as session:
        campaign = ledger.find_campaign(session, month)
        assert campaign is not None
        return campaign.status


def row_count(engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(Delivery)) or 0)


def wait_for_rows(engine, thread: threading.Thread) -> int:
    for _ in range(60_000):  # a guard against a hang, not a timing
        count = row_count(engine)
        if count:
            return count
        assert thread.is_alive(), "the planner ended before its first part committed"
        time.sleep(0.001)
    raise AssertionError("the first part never committed")


def in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_the_parts_write_the_rows_choose_variant_picks(
    pg_engine, settings, taxonomy, issue, in_parts
) -> None:
    add_people(pg_engine, settings, taxonomy)
    report = plan_campaign(pg_engine, settings, issue)
    assert in_parts == [2]
    assert_rows_are_choose_variants(pg_engine, issue)
    assert report.new_rows == len(CHOICES) and report.skipped_no_match == 2
    assert campaign_status(pg_engine, issue.month) == PLANNED
    again = plan_campaign(pg_engine, settings, issue)  # idempotent
    # A month that may be sending gets new rows in one statement (one commit), not in parts.
    assert again.new_rows == 0 and in_parts == [2]
    assert len(ledger_rows(pg_engine)) == len(CHOICES)


def test_no_worker_takes_a_campaign_before_every_part_committed(
    pg_engine, settings, taxonomy, issue, in_parts, monkeypatch
) -> None:
    add_people(pg_engine, settings, taxonomy)
    second = SecondPart(monkeypatch)
    planner = in_thread(lambda: plan_campaign(pg_engine, settings, issue))
    try:
        first = wait_for_rows(pg_engine, planner)
        assert 0 < first < len(CHOICES)  # the first part is committed, the second held
        assert campaign_status(pg_engine, issue.month) == PLANNING
        assert due_campaigns(pg_engine) == []
    finally:
        second.go.set()
        planner.join(timeout=60)
    assert row_count(pg_engine) == len(CHOICES)
    assert campaign_status(pg_engine, issue.month) == PLANNED
    assert due_campaigns(pg_engine) == [issue.month]


def test_a_plan_stopped_between_parts_is_completed_by_the_next(
    pg_engine, settings, taxonomy, issue, in_parts, monkeypatch
) -> None:
    add_people(pg_engine, settings, taxonomy)
    with monkeypatch.context() as patch:
        SecondPart(patch, fail=True)
        with pytest.raises(ConnectionError):
            plan_campaign(pg_engine, settings, issue)
    half = ledger_rows(pg_engine)
    assert 0 < len(half) < len(CHOICES)
    assert campaign_status(pg_engine, issue.month) == PLANNING
    assert due_campaigns(pg_engine) == []
    report = plan_campaign(pg_engine, settings, issue)
    assert report.new_rows == len(CHOICES) - len(half) and report.late_joiners == 0
    rows = ledger_rows(pg_engine)
    assert set(rows) == set(CHOICES)
    assert {a: (r.id, r.variant) for a, r in half.items()} == {
        a: (rows[a].id, rows[a].variant) for a in half
    }
    assert campaign_status(pg_engine, issue.month) == PLANNED


def test_a_second_planner_waits_for_every_part(
    pg_engine, settings, taxonomy, issue, in_parts, monkeypatch
) -> None:
    add_people(pg_engine, settings, taxonomy)
    second = SecondPart(monkeypatch)
    reports: list = []
    first = in_thread(lambda: reports.append(plan_campaign(pg_engine, settings, issue)))
    try:
        wait_for_rows(pg_engine, first)
        other = in_thread(lambda: reports.append(plan_campaign(pg_engine, settings, issue)))
        _wait_for_a_lock_wait(pg_engine, other)  # on the first planner's advisory lock
    finally:
        second.go.set()
        first.join(timeout=60)
    other.join(timeout=60)
    assert sorted(r.new_rows for r in reports) == [0, len(CHOICES)]
    assert row_count(pg_engine) == len(CHOICES)
    assert campaign_status(pg_engine, issue.month) == PLANNED
