"""What a pause does beyond planning: rows already queued are skipped ("paused", never a row a
worker holds), and a round-up does not fill in months planned during a pause that ended early;
on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from newsletter.content.choice import TopicChoice
from newsletter.content.reader import load_issue
from newsletter.content.roundup import load_round_up
from newsletter.personalize import VariantKey
from newsletter.sending.campaign import send_month
from newsletter.sending.plan import NOTHING_NEW
from newsletter.sending.plan import plan_campaign
from newsletter.store import engine as db
from newsletter.store import ledger
from newsletter.store.models import QUARTERLY
from newsletter.store.models import Campaign
from newsletter.store.models import Delivery
from newsletter.store.pauses import PAUSED
from newsletter.store.pauses import pause_windows
from newsletter.store.registrar import pause
from newsletter.store.registrar import resume
from newsletter.store.registrar import set_frequency
from newsletter.store.reports import issue_report
from newsletter.store.subscribers import add_subscriber
from newsletter.store.subscribers import require_subscriber
from newsletter.store.subscribers import set_topics
from newsletter.transport.memory import MemoryTransport

JAN = ("2025-01/alliance-in-depression", "2025-01/cbt-for-anxiety",
       "2025-01/therapist-alliance-variability")  # fmt: skip
FEB = ("2025-02/feedback-not-on-track", "2025-02/dropout-rates")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request, engine):
    return engine if request.param == "sqlite" else request.getfixturevalue("pg_engine")


def month(settings, taxonomy, name):
    return load_issue(settings.content.dir, name, taxonomy, settings.newsletter.name)


def add(engine, settings, taxonomy, address, frequency="monthly") -> None:
    with db.transaction(engine) as session:
        subscriber = add_subscriber(session, settings, taxonomy, address)
        set_topics(session, subscriber, TopicChoice.every())
        set_frequency(session, subscriber, frequency)


def pause_now(engine, address, months=3) -> None:
    with db.transaction(engine) as session:
        pause(session, require_subscriber(session, address), months, dt.datetime.now(dt.UTC))


def resume_now(engine, address) -> None:
    with db.transaction(engine) as session:
        resume(session, require_subscriber(session, address))


def switch(engine, address, frequency) -> None:
    with db.transaction(engine) as session:
        set_frequency(session, require_subscriber(session, address), frequency)


def rows_of(engine, key) -> dict[str, Delivery]:
    with db.session_factory(engine)() as session:
        query = select(Delivery).join(Campaign).where(Campaign.month == key)
        return {d.email: d for d in session.scalars(query)}


def test_pausing_skips_queued_rows_but_not_one_being_sent(any_engine, settings, taxonomy) -> None:
    for address in ("a@example.net", "b@example.net", "c@example.net"):
        add(any_engine, settings, taxonomy, address)
    january = month(settings, taxonomy, "2025-01")
    plan_campaign(any_engine, settings, january)
    with db.transaction(any_engine) as session:
        campaign = ledger.find_campaign(session, "2025-01")
        assert campaign is not None
        held = ledger.claim_batch(
            session,
            campaign.id,
            "worker-1",
            1,
            dt.timedelta(minutes=5),
            [settings.delivery.default_list],
        )
    (claimed,) = held
    others = sorted({"a@example.net", "b@example.net", "c@example.net"} - {claimed.email})
    for address in (claimed.email, others[0]):  # the third reader does not pause
        pause_now(any_engine, address)

    rows = rows_of(any_engine, "2025-01")
    assert (rows[claimed.email].status, rows[claimed.email].last_error) == ("sending", "")
    assert (rows[others[0]].status, rows[others[0]].last_error) == ("skipped", PAUSED)
    assert rows[others[1]].status == "queued"
    with db.session_factory(any_engine)() as session:
        report = issue_report(session, "2025-01")
    assert report is not None
    assert report.counts["skipped"] == 1 and report.skipped_reasons == [(PAUSED, 1)]

    # worker-1 finishes the message it held; the rest of the month is sent: the paused
    # reader's row stays skipped.
    with db.transaction(any_engine) as session:
        now = dt.datetime.now(dt.UTC)
        result = ledger.Result(claimed.delivery_id, "sent", reply="250 ok", sent_at=now)
        assert ledger.record_results(session, "worker-1", [result]) == 1
    transport = MemoryTransport()
    send_month(any_engine, settings, january, transport)
    assert others[0] not in {m.recipient for m in transport.outbox}
    assert others[1] in {m.recipient for m in transport.outbox}
    assert rows_of(any_engine, "2025-01")[others[0]].status == "skipped"


def test_a_retry_waiting_for_its_next_try_is_skipped_too(engine, settings, taxonomy) -> None:
    add(engine, settings, taxonomy, "r@example.net")
    plan_campaign(engine, settings, month(settings, taxonomy, "2025-01"))
    with db.transaction(engine) as session:
        row = session.scalar(select(Delivery))
        assert row is not None
        row.status, row.attempts = "retry", 1
        row.next_attempt_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    pause_now(engine, "r@example.net")
    row = rows_of(engine, "2025-01")["r@example.net"]
    assert (row.status, row.last_error, row.next_attempt_at) == ("skipped", PAUSED, None)


def test_a_round_up_does_not_fill_in_months_planned_during_a_pause_ended_early(
    any_engine, settings, taxonomy
) -> None:
    # paused@ pauses, so February is planned without them, and resumes before March.
    # switched@ was quarterly in January and February (not paused): theirs to catch up on.
    # queued@ had February queued when they paused (skipped), then became quarterly.
    add(any_engine, settings, taxonomy, "paused@example.net")
    add(any_engine, settings, taxonomy, "switched@example.net", QUARTERLY)
    add(any_engine, settings, taxonomy, "queued@example.net")
    transport = MemoryTransport()
    send_month(any_engine, settings, month(settings, taxonomy, "2025-01"), transport)
    pause_now(any_engine, "paused@example.net")
    plan_campaign(any_engine, settings, month(settings, taxonomy, "2025-02"))
    pause_now(any_engine, "queued@example.net")
    send_month(any_engine, settings, month(settings, taxonomy, "2025-02"), transport)
    resume_now(any_engine, "paused@example.net")
    resume_now(any_engine, "queued@example.net")
    switch(any_engine, "switched@example.net", "monthly")
    switch(any_engine, "queued@example.net", QUARTERLY)
    assert set(rows_of(any_engine, "2025-02")) == {"queued@example.net"}
    with db.session_factory(any_engine)() as session:
        windows = pause_windows(session, require_subscriber(session, "paused@example.net").id)
        assert require_subscriber(session, "paused@example.net").paused_until is None
    (started, ended), campaign_created = windows[0], _created(any_engine, "2025-02")
    assert len(windows) == 1 and started <= campaign_created < ended  # resumed: ends early

    round_up = load_round_up(settings.content.dir, "2025-Q1", taxonomy, settings.newsletter.name)
    plan_campaign(any_engine, settings, round_up)
    planned = rows_of(any_engine, "2025-Q1")
    # The monthly reader who paused missed nothing they had not chosen to miss: no row.
    assert "paused@example.net" not in planned
    assert VariantKey.decode(planned["switched@example.net"].variant).slugs == (*JAN, *FEB)
    # February was skipped for the pause: a quarterly reader now, they do not get it either.
    queued = planned["queued@example.net"]
    assert (queued.status, queued.last_error) == ("skipped", NOTHING_NEW)


def _created(engine, key) -> dt.datetime:
    with db.session_factory(engine)() as session:
        campaign = ledger.find_campaign(session, key)
        assert campaign is not None
        return campaign.created_at


def test_pausing_again_while_paused_keeps_one_running_window(engine, settings, taxonomy) -> None:
    add(engine, settings, taxonomy, "p@example.net")
    now = dt.datetime.now(dt.UTC)
    with db.transaction(engine) as session:
        subscriber = require_subscriber(session, "p@example.net")
        pause(session, subscriber, 1, now)
        until = pause(session, subscriber, 2, now + dt.timedelta(days=3))
        windows = pause_windows(session, subscriber.id)
    assert windows == [
        (now, now + dt.timedelta(days=3)),
        (now + dt.timedelta(days=3), until),
    ]
