"""Quarterly round-ups: who gets which summaries, switching frequency mid-quarter (nothing
lost, nothing twice), idempotent re-plans, the scheduler's slot and the CLI, on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import shutil
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from conftest import write_config
from sqlalchemy import select

from newsletter.cli import main
from newsletter.content.choice import TopicChoice
from newsletter.content.reader import load_issue
from newsletter.content.roundup import RoundUp
from newsletter.content.roundup import assemble_round_up
from newsletter.content.roundup import load_round_up
from newsletter.content.roundup import parse_quarter
from newsletter.content.roundup import quarter_label
from newsletter.content.roundup import quarter_months
from newsletter.content.roundup import quarter_of
from newsletter.content.roundup import round_up_due
from newsletter.content.taxonomy import default_taxonomy
from newsletter.errors import ContentError
from newsletter.personalize import VariantKey
from newsletter.scheduling import jobs
from newsletter.sending.campaign import send_month
from newsletter.sending.plan import NOTHING_NEW
from newsletter.sending.plan import plan_campaign
from newsletter.store import engine as db
from newsletter.store.models import QUARTERLY
from newsletter.store.models import Campaign
from newsletter.store.models import Delivery
from newsletter.store.registrar import pause
from newsletter.store.registrar import set_frequency
from newsletter.store.subscribers import add_subscriber
from newsletter.store.subscribers import require_subscriber
from newsletter.store.subscribers import set_topics
from newsletter.transport.memory import MemoryTransport

ANXIETY = "anxiety-disorders"
JAN = ("2025-01/alliance-in-depression", "2025-01/cbt-for-anxiety",
       "2025-01/therapist-alliance-variability")  # fmt: skip
FEB = ("2025-02/feedback-not-on-track", "2025-02/dropout-rates")
MAR = ("2025-03/cbt-for-anxiety",)  # the same slug as January's: keys keep them apart


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request, engine):
    return engine if request.param == "sqlite" else request.getfixturevalue("pg_engine")


@pytest.fixture
def march(settings):
    """A 2025-03 holding a copy of January's CBT summary (same slug, another month)."""
    folder = settings.content.dir / "2025-03"
    folder.mkdir()
    shutil.copy(settings.content.dir / "2025-01" / "02-cbt-for-anxiety.md", folder)
    return folder


def month(settings, taxonomy, name):
    return load_issue(settings.content.dir, name, taxonomy, settings.newsletter.name)


def add(engine, settings, taxonomy, address, choice, frequency="monthly"):
    with db.transaction(engine) as session:
        subscriber = add_subscriber(session, settings, taxonomy, address)
        set_topics(session, subscriber, choice)
        set_frequency(session, subscriber, frequency)


def switch(engine, address, frequency):
    with db.transaction(engine) as session:
        set_frequency(session, require_subscriber(session, address), frequency)


def received(engine) -> dict[str, Counter]:
    """Every summary key each address got (or has queued), over every campaign."""
    got: dict[str, Counter] = {}
    with db.session_factory(engine)() as session:
        query = select(Campaign.month, Delivery.email, Delivery.variant, Delivery.status).join(
            Campaign, Campaign.id == Delivery.campaign_id
        )
        for key, address, variant, status in session.execute(query):
            if status == "skipped":
                continue
            for name in VariantKey.decode(variant).slugs:
                got.setdefault(address, Counter())[name if "/" in name else f"{key}/{name}"] += 1
    return got


def rows_of(engine, key) -> dict[str, Delivery]:
    with db.session_factory(engine)() as session:
        query = select(Delivery).join(Campaign).where(Campaign.month == key)
        return {d.email: d for d in session.scalars(query)}


def test_a_quarter_switcher_gets_everything_once(any_engine, settings, taxonomy, march) -> None:
    every = TopicChoice.every()
    add(any_engine, settings, taxonomy, "q-all@example.net", every, QUARTERLY)
    add(any_engine, settings, taxonomy, "q-anx@example.net", TopicChoice.only([ANXIETY]), QUARTERLY)
    add(any_engine, settings, taxonomy, "q-none@example.net", TopicChoice.only(["x"]), QUARTERLY)
    add(any_engine, settings, taxonomy, "q-paused@example.net", every, QUARTERLY)
    add(any_engine, settings, taxonomy, "to-quarterly@example.net", every)
    add(any_engine, settings, taxonomy, "to-monthly@example.net", every, QUARTERLY)
    add(any_engine, settings, taxonomy, "monthly@example.net", every)
    transport = MemoryTransport()

    send_month(any_engine, settings, month(settings, taxonomy, "2025-01"), transport)
    switch(any_engine, "to-quarterly@example.net", QUARTERLY)
    switch(any_engine, "to-monthly@example.net", "monthly")
    send_month(any_engine, settings, month(settings, taxonomy, "2025-02"), transport)
    send_month(any_engine, settings, month(settings, taxonomy, "2025-03"), transport)
    assert set(rows_of(any_engine, "2025-01")) == {
        "to-quarterly@example.net",
        "monthly@example.net",
    }
    assert set(rows_of(any_engine, "2025-02")) == {"to-monthly@example.net", "monthly@example.net"}

    now = dt.datetime.now(dt.UTC)
    with db.transaction(any_engine) as session:
        until = pause(session, require_subscriber(session, "q-paused@example.net"), 1, now)
    round_up = load_round_up(settings.content.dir, "2025-Q1", taxonomy, settings.newsletter.name)
    assert [s.key for s in round_up.summaries] == [*JAN, *FEB, *MAR]
    outbox_before = len(transport.outbox)
    result = send_month(any_engine, settings, round_up, transport)
    assert result.report is not None and result.report.finished

    planned = rows_of(any_engine, "2025-Q1")
    # A monthly reader who missed nothing has no row; a paused one waits for the pause's end.
    assert set(planned) == {
        "q-all@example.net",
        "q-anx@example.net",
        "q-none@example.net",
        "to-quarterly@example.net",
        "to-monthly@example.net",
    }
    variants = {a: VariantKey.decode(r.variant).slugs for a, r in planned.items()}
    assert variants["q-all@example.net"] == (*JAN, *FEB, *MAR)
    assert variants["q-anx@example.net"] == ("2025-01/cbt-for-anxiety", "2025-03/cbt-for-anxiety")
    assert variants["to-quarterly@example.net"] == (*FEB, *MAR)  # January came monthly
    assert variants["to-monthly@example.net"] == JAN  # missed while quarterly
    assert (planned["q-none@example.net"].status, planned["q-none@example.net"].last_error) == (
        "skipped",
        NOTHING_NEW,
    )
    # Nothing lost, nothing twice: over the quarter every reader of every topic holds each
    # summary exactly once (the paused one after the next plan, below).
    everything = Counter([*JAN, *FEB, *MAR])
    got = received(any_engine)
    for address in ("q-all", "to-quarterly", "to-monthly", "monthly"):
        assert got[f"{address}@example.net"] == everything, address

    messages = {
        m.recipient: email.message_from_bytes(m.message, policy=email.policy.default)
        for m in transport.outbox[outbox_before:]
    }
    assert set(messages) == {a for a, r in planned.items() if r.status == "sent"}
    message = messages["q-anx@example.net"]
    assert "quarterly round-up, January–March 2025" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    # Each summary links to its own month's permalink, though the two share a slug.
    assert "/2025-03/cbt-for-anxiety/" in text and "/2025-01/cbt-for-anxiety/" in text
    assert "/2025-Q1/" not in text  # no archive page of its own

    # Planned again: nothing new; after the pause, the paused reader gets the whole quarter.
    assert plan_campaign(any_engine, settings, round_up).new_rows == 0
    later = plan_campaign(any_engine, settings, round_up, now=until + dt.timedelta(seconds=1))
    assert later.new_rows == 1 and later.variants == {
        VariantKey((*JAN, *FEB, *MAR), True).encode(): 1
    }
    again = send_month(any_engine, settings, round_up, transport)
    assert again.report is not None and again.report.sent == 1
    assert received(any_engine)["q-paused@example.net"] == everything


def test_a_summary_still_queued_in_its_month_is_not_repeated(
    engine, settings, taxonomy, march
) -> None:
    add(engine, settings, taxonomy, "r@example.net", TopicChoice.every())
    plan_campaign(engine, settings, month(settings, taxonomy, "2025-02"))  # planned, not sent
    switch(engine, "r@example.net", QUARTERLY)
    round_up = load_round_up(settings.content.dir, "2025-Q1", taxonomy, settings.newsletter.name)
    plan_campaign(engine, settings, round_up)
    slugs = VariantKey.decode(rows_of(engine, "2025-Q1")["r@example.net"].variant).slugs
    # January was never planned as a month: the quarterly reader gets it here; February's
    # summaries are in their queued February row.
    assert slugs == (*JAN, *MAR)


def test_late_joiners_of_a_round_up_are_the_quarterly_ones(
    any_engine, settings, taxonomy, march
) -> None:
    add(any_engine, settings, taxonomy, "q@example.net", TopicChoice.every(), QUARTERLY)
    round_up = load_round_up(settings.content.dir, "2025-Q1", taxonomy, settings.newsletter.name)
    assert plan_campaign(any_engine, settings, round_up).new_rows == 1
    add(any_engine, settings, taxonomy, "late-m@example.net", TopicChoice.every())
    add(any_engine, settings, taxonomy, "late-q@example.net", TopicChoice.every(), QUARTERLY)
    again = plan_campaign(any_engine, settings, round_up)
    assert (again.new_rows, again.late_joiners) == (0, 1)
    included = plan_campaign(any_engine, settings, round_up, include_late_joiners=True)
    assert included.new_rows == 1 and set(rows_of(any_engine, "2025-Q1")) == {
        "q@example.net",
        "late-q@example.net",
    }


def test_the_scheduler_sends_the_round_up_on_the_quarters_first_slot(tmp_path, march) -> None:
    from test_scheduler_jobs import make_settings

    settings = make_settings(tmp_path)
    engine = db.make_engine(settings.database.url)
    try:
        db.upgrade(engine)
        every = TopicChoice.every()
        add(engine, settings, default_taxonomy(), "q@example.net", every, QUARTERLY)
        transport = MemoryTransport()
        april = dt.datetime(2025, 4, 1, 9, 0, tzinfo=ZoneInfo("America/Toronto"))
        outcome = jobs.run_monthly(settings, now=april, engine=engine, transport=transport)
        assert (outcome.month, outcome.action) == ("2025-04", jobs.MISSING)
        assert outcome.round_up is not None
        assert (outcome.round_up.month, outcome.round_up.action) == ("2025-Q1", jobs.SENT)
        assert [m.recipient for m in transport.outbox] == ["q@example.net"]
        again = jobs.run_monthly(settings, now=april, engine=engine, transport=transport)
        assert again.round_up is not None and again.round_up.action == jobs.ALREADY_DONE
        february = dt.datetime(2025, 2, 4, 9, 0, tzinfo=ZoneInfo("America/Toronto"))
        assert jobs.run_monthly(settings, now=february, engine=engine).round_up is None
    finally:
        engine.dispose()


def invoke(config, *args):
    return CliRunner().invoke(main, ["--config", str(config), *args])


def test_the_cli_previews_plans_and_test_sends_a_round_up(tmp_path) -> None:
    config = write_config(tmp_path, delivery={"transport": "maildir", "maildir": "outbox"})
    assert invoke(config, "db", "upgrade").exit_code == 0
    added = invoke(config, "subscribers", "add", "q@example.net", "--topics", ANXIETY)
    assert added.exit_code == 0, added.output
    with db.transaction(db.make_engine(f"sqlite:///{tmp_path / 'subscribers.db'}")) as session:
        set_frequency(session, require_subscriber(session, "q@example.net"), QUARTERLY)

    preview = invoke(config, "preview", "2025-Q1", "--format", "text")
    assert preview.exit_code == 0, preview.output
    assert "Your quarterly round-up" in preview.output
    assert "/2025-02/feedback-not-on-track/" in preview.output

    dry = invoke(config, "send", "2025-Q1", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "2025-Q1" in dry.output and "messages to send: 1" in dry.output

    test = invoke(config, "send", "2025-Q1", "--test-to", "editor@example.org")
    assert test.exit_code == 0, test.output
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 1

    sent = invoke(config, "send", "2025-Q1", "--yes")
    assert sent.exit_code == 0, sent.output
    assert "campaign 2025-Q1: complete" in sent.output
    counts = invoke(config, "deliveries", "2025-Q1")
    assert counts.exit_code == 0 and "sent" in counts.output

    for bad in ("2025-Q5", "2025-Q0", "2025-q1"):
        refused = invoke(config, "send", bad, "--dry-run")
        assert refused.exit_code != 0 and bad in refused.output, refused.output


def test_quarter_arithmetic() -> None:
    assert quarter_months("2026-Q4") == ("2026-10", "2026-11", "2026-12")
    assert quarter_of("2026-11") == "2026-Q4" and quarter_of("2027-01") == "2027-Q1"
    assert round_up_due("2027-01") == "2026-Q4" and round_up_due("2026-04") == "2026-Q1"
    assert round_up_due("2026-07") == "2026-Q2" and round_up_due("2026-10") == "2026-Q3"
    assert round_up_due("2026-11") is None
    assert quarter_label("2026-Q4") == "October–December 2026"
    for bad in ("2026-Q5", "2026-4", "26-Q1", "2026-Q1\n"):
        with pytest.raises(ContentError):
            parse_quarter(bad)


def test_assembly_refuses_months_of_another_quarter(settings, taxonomy) -> None:
    january = month(settings, taxonomy, "2025-01")
    with pytest.raises(ContentError, match="not a month of 2024-Q4"):
        assemble_round_up("2024-Q4", [january], "Digest")
    with pytest.raises(ContentError, match="no issue"):
        assemble_round_up("2025-Q1", [], "Digest")
    round_up = assemble_round_up("2025-Q1", [january], "Digest")
    assert isinstance(round_up, RoundUp) and round_up.archive_path == ""
    assert round_up.summary("2025-01/cbt-for-anxiety").slug == "cbt-for-anxiety"
