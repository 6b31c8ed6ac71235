"""Set-based planning (one INSERT … SELECT), pause and frequency, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy import text

from newsletter.config import settings_from_dict
from newsletter.content.choice import TopicChoice
from newsletter.content.reader import load_issue
from newsletter.errors import InvalidPreference
from newsletter.errors import SubscriberError
from newsletter.personalize import choose_variant
from newsletter.sending.plan import NO_MATCH
from newsletter.sending.plan import plan_campaign
from newsletter.sending.plan import planning_rules
from newsletter.store import audience
from newsletter.store import engine as db
from newsletter.store import ledger
from newsletter.store import planning
from newsletter.store.models import MONTHLY
from newsletter.store.models import QUARTERLY
from newsletter.store.models import Delivery
from newsletter.store.registrar import pause
from newsletter.store.registrar import paused_until
from newsletter.store.registrar import resume
from newsletter.store.registrar import set_frequency
from newsletter.store.subscribers import add_subscriber
from newsletter.store.subscribers import require_subscriber
from newsletter.store.subscribers import set_topics

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
ALLIANCE = "alliance-and-therapeutic-relationship"
DEPRESSION = "depression-and-depressive-symptoms"
ANXIETY = "anxiety-disorders"
CBT = "cognitive-therapy-ct-and-cognitive-behavioural-therapy-cbt"
THERAPIST = "therapist-factors"
# Every kind of choice the planner must spell as `choose_variant` does: all topics, all but
# some (one summary still reaching through its other topic, or none at all), chosen topics
# (one, two, none in the issue).
CHOICES = {
    "all@example.net": TopicChoice.every(),
    "but-anxiety@example.net": TopicChoice.every([ANXIETY]),
    "but-most@example.net": TopicChoice.every([ALLIANCE, DEPRESSION, ANXIETY, CBT, THERAPIST]),
    "but-alliance@example.net": TopicChoice.every([ALLIANCE]),
    "anxious@example.net": TopicChoice.only([ANXIETY]),
    "two@example.net": TopicChoice.only([DEPRESSION, THERAPIST]),
    "groups@example.net": TopicChoice.only(["group-psychotherapy"]),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request, engine):
    """The test's SQLite engine, or a fresh PostgreSQL schema."""
    return engine if request.param == "sqlite" else request.getfixturevalue("pg_engine")


@pytest.fixture
def issue(settings, taxonomy):
    return load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)


def add_people(engine, settings, taxonomy, choices=CHOICES) -> None:
    with db.transaction(engine) as session:
        for address, choice in choices.items():
            subscriber = add_subscriber(session, settings, taxonomy, address)
            set_topics(session, subscriber, choice)


def ledger_rows(engine) -> dict[str, Delivery]:
    with db.session_factory(engine)() as session:
        return {d.email: d for d in session.scalars(select(Delivery))}


def assert_rows_are_choose_variants(engine, issue) -> None:
    """Every person of CHOICES has the row `choose_variant` picks: its variant, or skipped."""
    planned = ledger_rows(engine)
    assert set(planned) == set(CHOICES)
    for address, choice in CHOICES.items():
        key = choose_variant(issue, choice)
        row = planned[address]
        if key is None:
            assert (row.status, row.variant, row.last_error) == ("skipped", "", NO_MATCH), address
        else:
            assert (row.status, row.variant) == ("queued", key.encode()), address


def test_the_database_picks_the_variant_choose_variant_picks(
    any_engine, settings, taxonomy, issue
) -> None:
    add_people(any_engine, settings, taxonomy)
    report = plan_campaign(any_engine, settings, issue)
    assert_rows_are_choose_variants(any_engine, issue)
    assert report.new_rows == len(CHOICES) and report.audience == len(CHOICES)
    assert report.skipped_no_match == 2  # groups@ and but-most@
    assert sum(report.variants.values()) == len(CHOICES) - 2
    assert set(report.labels) == set(report.variants)


def test_planning_again_adds_only_the_new_and_keeps_the_rows(
    any_engine, settings, taxonomy, issue
) -> None:
    add_people(any_engine, settings, taxonomy)
    dry = plan_campaign(any_engine, settings, issue, dry_run=True)
    assert ledger_rows(any_engine) == {}
    first = plan_campaign(any_engine, settings, issue)
    assert (dry.new_rows, dry.variants, dry.skipped_no_match) == (
        first.new_rows,
        first.variants,
        first.skipped_no_match,
    )
    before = {a: (r.id, r.variant) for a, r in ledger_rows(any_engine).items()}
    again = plan_campaign(any_engine, settings, issue)
    assert again.new_rows == 0 and again.existing == {"queued": 5, "skipped": 2}
    late = {"late@example.net": TopicChoice.only([ANXIETY])}
    add_people(any_engine, settings, taxonomy, late)
    # The late-joiner rule holds: joined after the month was first planned.
    assert plan_campaign(any_engine, settings, issue).late_joiners == 1
    added = plan_campaign(any_engine, settings, issue, include_late_joiners=True)
    assert added.new_rows == 1 and added.variants == {"cbt-for-anxiety;topics": 1}
    after = ledger_rows(any_engine)
    assert {a: (after[a].id, after[a].variant) for a in before} == before


def test_on_no_match_full_sends_the_whole_issue_without_topic_notes(
    tmp_path, engine, taxonomy, issue
) -> None:
    from conftest import make_config

    settings = settings_from_dict(make_config(tmp_path, delivery={"on_no_match": "full"}), tmp_path)
    add_people(engine, settings, taxonomy, {"groups@example.net": TopicChoice.only(["x"])})
    plan_campaign(engine, settings, issue)
    row = ledger_rows(engine)["groups@example.net"]
    assert row.status == "queued"
    assert row.variant == ",".join(s.slug for s in issue.summaries)


def test_a_paused_reader_is_left_out_until_the_pause_runs_out(
    any_engine, settings, taxonomy, issue
) -> None:
    add_people(any_engine, settings, taxonomy, {"a@example.net": TopicChoice.every()})
    add_people(any_engine, settings, taxonomy, {"b@example.net": TopicChoice.every()})
    now = dt.datetime.now(dt.UTC)
    with db.transaction(any_engine) as session:
        until = pause(session, require_subscriber(session, "a@example.net"), 2, now)
        assert paused_until(require_subscriber(session, "a@example.net"), now) == until
    first = plan_campaign(any_engine, settings, issue, now=now)
    assert set(ledger_rows(any_engine)) == {"b@example.net"} and first.new_rows == 1
    # The pause runs out by itself: a later plan of the same month takes them.
    later = plan_campaign(any_engine, settings, issue, now=until + dt.timedelta(seconds=1))
    assert later.new_rows == 1 and set(ledger_rows(any_engine)) == {
        "a@example.net",
        "b@example.net",
    }


def test_resume_ends_a_pause_at_once(engine, settings, taxonomy, issue) -> None:
    add_people(engine, settings, taxonomy, {"a@example.net": TopicChoice.every()})
    with db.transaction(engine) as session:
        subscriber = require_subscriber(session, "a@example.net")
        now = dt.datetime.now(dt.UTC)
        pause(session, subscriber, 6, now)
        resume(session, subscriber)
        assert paused_until(subscriber, now) is None
    assert plan_campaign(engine, settings, issue).new_rows == 1


def test_a_quarterly_reader_gets_no_monthly_digest(any_engine, settings, taxonomy, issue) -> None:
    add_people(any_engine, settings, taxonomy)
    with db.transaction(any_engine) as session:
        set_frequency(session, require_subscriber(session, "all@example.net"), QUARTERLY)
        set_frequency(session, require_subscriber(session, "two@example.net"), MONTHLY)
    plan_campaign(any_engine, settings, issue)
    assert "all@example.net" not in ledger_rows(any_engine)
    assert len(ledger_rows(any_engine)) == len(CHOICES) - 1


@pytest.mark.parametrize("months", [0, 7, -1, "3", 2.5, True, None])
def test_pause_refuses_months_outside_one_to_six(engine, settings, taxonomy, months) -> None:
    add_people(engine, settings, taxonomy, {"a@example.net": TopicChoice.every()})
    with db.transaction(engine) as session, pytest.raises(InvalidPreference) as caught:
        pause(session, require_subscriber(session, "a@example.net"), months, NOW)
    assert caught.value.field == "months" and str(caught.value).startswith("months: ")


@pytest.mark.parametrize("frequency", ["weekly", "", "Monthly", "quarterly\r\n"])
def test_set_frequency_refuses_other_values(engine, settings, taxonomy, frequency) -> None:
    add_people(engine, settings, taxonomy, {"a@example.net": TopicChoice.every()})
    with db.transaction(engine) as session, pytest.raises(InvalidPreference) as caught:
        set_frequency(session, require_subscriber(session, "a@example.net"), frequency)
    assert caught.value.field == "frequency"


def test_only_an_active_subscriber_can_pause(engine, settings, taxonomy) -> None:
    with db.transaction(engine) as session:
        pending = add_subscriber(session, settings, taxonomy, "p@example.net", status="pending")
        with pytest.raises(SubscriberError, match="pending"):
            pause(session, pending, 1, NOW)


@pytest.mark.parametrize(
    ("start", "months", "until"),
    [
        (dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.UTC), 1, dt.datetime(2026, 2, 28, 12, 0)),
        (dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.UTC), 6, dt.datetime(2026, 7, 31, 12, 0)),
        (dt.datetime(2026, 11, 30, tzinfo=dt.UTC), 3, dt.datetime(2027, 2, 28)),
    ],
)
def test_a_pause_ends_on_the_same_day_months_later(
    engine, settings, taxonomy, start, months, until
) -> None:
    add_people(engine, settings, taxonomy, {"a@example.net": TopicChoice.every()})
    with db.transaction(engine) as session:
        ends = pause(session, require_subscriber(session, "a@example.net"), months, start)
    assert ends == until.replace(tzinfo=dt.UTC)


# --- PostgreSQL: planners of one campaign take turns (an advisory lock, no ON CONFLICT) -----


def _wait_for_a_lock_wait(engine, waiter: threading.Thread) -> None:
    """Until a session of this database waits on a lock (`waiter`, the other planner, blocked)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    # Each poll in its own transaction: PostgreSQL reads pg_stat_activity once a transaction,
    # so polls in one transaction saw the first answer for ever, and hung whenever the other
    # thread had not reached its wait by the first poll (on a loaded machine).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for _ in range(60_000):  # a guard against a hang, not a timing
            if connection.scalar(query):
                return
            assert waiter.is_alive(), "the other planner ended without waiting on a lock"
            time.sleep(0.001)
        raise AssertionError("no session ever waited on a lock")


def _plan_in_thread(engine, campaign_id: int, rules, results: list) -> threading.Thread:
    def plan() -> None:
        with engine.begin() as connection:
            results.append(planning.insert_plan(connection, campaign_id, ["digest"], rules, None))

    thread = threading.Thread(target=plan)
    thread.start()
    return thread


def _campaign(engine, issue) -> int:
    with db.transaction(engine) as session:
        return ledger.get_or_create_campaign(session, issue.month, issue.subject, ["digest"]).id


def test_a_second_planner_waits_and_plans_nothing_twice(pg_engine, settings, taxonomy, issue):
    add_people(pg_engine, settings, taxonomy)
    rules = planning_rules(settings, issue)
    campaign_id = _campaign(pg_engine, issue)
    results: list = []
    with pg_engine.connect() as first:
        counts = planning.insert_plan(first, campaign_id, ["digest"], rules, None)
        assert sum(counts.values()) == len(CHOICES)
        second = _plan_in_thread(pg_engine, campaign_id, rules, results)
        _wait_for_a_lock_wait(pg_engine, second)  # it waits for the first one's transaction
        first.commit()
    second.join(timeout=60)
    assert results == [{}]  # it saw the committed rows: nothing new, and no error
    assert len(ledger_rows(pg_engine)) == len(CHOICES)


def test_a_row_written_meanwhile_by_another_path_is_not_planned_twice(
    pg_engine, settings, taxonomy, issue
):
    add_people(pg_engine, settings, taxonomy)
    rules = planning_rules(settings, issue)
    campaign_id = _campaign(pg_engine, issue)
    with db.session_factory(pg_engine)() as session:
        subscriber = require_subscriber(session, "two@example.net")
        row = {
            "campaign_id": campaign_id,
            "subscriber_id": subscriber.id,
            "email": subscriber.email,
        }
    results: list = []
    with pg_engine.connect() as other:  # no advisory lock: a row the planner cannot foresee
        audience.insert_deliveries(other, [row | {"variant": "by-hand", "status": "queued"}])
        planner = _plan_in_thread(pg_engine, campaign_id, rules, results)
        _wait_for_a_lock_wait(pg_engine, planner)  # the planner's INSERT waits on that row's key
        other.commit()
    planner.join(timeout=60)
    # The unique constraint refused the batch; planned again from the savepoint, the rest.
    assert results and sum(results[0].values()) == len(CHOICES) - 1
    rows = ledger_rows(pg_engine)
    assert len(rows) == len(CHOICES) and rows["two@example.net"].variant == "by-hand"
