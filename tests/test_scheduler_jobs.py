"""The job bodies: idempotent monthly send, plan-only mode, and the missing-content alert."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import mailbox
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import make_config
from smtp_sink import running_sink
from sqlalchemy import func
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.config import settings_from_dict
from newsletter.content.taxonomy import default_taxonomy
from newsletter.scheduling import jobs
from newsletter.scheduling.jobs import alert_admin
from newsletter.scheduling.jobs import run_monthly
from newsletter.scheduling.jobs import run_send
from newsletter.store import engine as db
from newsletter.store import ledger
from newsletter.store.models import QUEUED
from newsletter.store.models import RUNNING
from newsletter.store.models import Delivery
from newsletter.store.subscribers import add_subscriber
from newsletter.transport.memory import MemoryTransport

TORONTO = ZoneInfo("America/Toronto")
SCHEDULE = {"day": "1st tue", "time": "09:00", "timezone": "America/Toronto"}
# The first Tuesday of January 2025 at 09:00: the run that sends the fixture's 2025-01.
JANUARY_RUN = dt.datetime(2025, 1, 7, 9, 0, tzinfo=TORONTO)
MARCH_RUN = dt.datetime(2025, 3, 4, 9, 0, tzinfo=TORONTO)  # no content/2025-03 in the fixture
ADDRESSES = ("ana@example.org", "ben@example.org", "chloe@example.org")


def make_settings(tmp_path: Path, **sections: dict) -> Settings:
    schedule = {**SCHEDULE, **sections.pop("schedule", {})}
    delivery = {"transport": "maildir", **sections.pop("delivery", {})}
    data = make_config(tmp_path, schedule=schedule, delivery=delivery, **sections)
    return settings_from_dict(data, tmp_path)


@pytest.fixture
def migrated(tmp_path: Path):
    """A migrated database in tmp_path with three subscribers to every topic."""
    settings = make_settings(tmp_path)
    engine = db.make_engine(settings.database.url)
    db.upgrade(engine)
    with db.session_factory(engine)() as session:
        for address in ADDRESSES:
            add_subscriber(session, settings, default_taxonomy(), address)
        session.commit()
    yield engine
    engine.dispose()


def maildir_count(settings: Settings) -> int:
    if not settings.delivery.maildir.exists():
        return 0
    return len(mailbox.Maildir(settings.delivery.maildir, create=False))


def test_monthly_job_sends_the_month_of_its_slot_once(tmp_path: Path, migrated) -> None:
    settings = make_settings(tmp_path)
    first = run_monthly(settings, now=JANUARY_RUN, engine=migrated)
    assert (first.month, first.action) == ("2025-01", jobs.SENT)
    assert first.report is not None and first.report.sent == len(ADDRESSES)
    assert maildir_count(settings) == len(ADDRESSES)

    # The job run again (a restart inside the grace window, a one-off for the same month…)
    second = run_monthly(settings, now=JANUARY_RUN + dt.timedelta(hours=1), engine=migrated)
    assert (second.month, second.action) == ("2025-01", jobs.ALREADY_DONE)
    assert maildir_count(settings) == len(ADDRESSES)


def test_the_job_sends_through_the_configured_transport_without_an_engine(
    tmp_path: Path, migrated
) -> None:
    # The job-store path: it makes (and disposes) its own engine, like `newsletter send`.
    settings = make_settings(tmp_path)
    assert run_send(settings, "2025-02").action == jobs.SENT
    assert maildir_count(settings) == len(ADDRESSES)
    assert run_send(settings, "2025-02").action == jobs.ALREADY_DONE


def test_a_send_in_progress_is_left_alone(tmp_path: Path, migrated) -> None:
    settings = make_settings(tmp_path)
    transport = MemoryTransport()
    with db.session_factory(migrated)() as session:
        campaign = ledger.get_or_create_campaign(session, "2025-01", "subject", ["digest"])
        campaign.status = RUNNING
        session.commit()
    outcome = run_monthly(settings, now=JANUARY_RUN, engine=migrated, transport=transport)
    assert outcome.action == jobs.IN_PROGRESS
    assert transport.outbox == []


def test_a_stopped_send_resumes_on_the_next_run(tmp_path: Path, migrated) -> None:
    settings = make_settings(tmp_path)
    stop = threading.Event()
    stop.set()  # stopped before the first message
    stopped = run_send(settings, "2025-01", engine=migrated, stop=stop)
    assert stopped.action == jobs.STOPPED
    assert maildir_count(settings) == 0
    resumed = run_send(settings, "2025-01", engine=migrated)
    assert resumed.action == jobs.SENT
    assert maildir_count(settings) == len(ADDRESSES)


def test_a_resumed_scheduled_send_leaves_late_joiners_out(tmp_path: Path, migrated) -> None:
    """Issue 12, item 4: a subscriber who joined after the month was first planned is not
    mailed that month when the scheduler resumes it (nor by a one-off of it)."""
    settings = make_settings(tmp_path)
    stop = threading.Event()
    stop.set()  # planned, then stopped before the first message
    assert run_send(settings, "2025-01", engine=migrated, stop=stop).action == jobs.STOPPED
    with db.transaction(migrated) as session:
        add_subscriber(session, settings, default_taxonomy(), "late@example.org")
    resumed = run_send(settings, "2025-01", engine=migrated)
    assert resumed.action == jobs.SENT
    box = mailbox.Maildir(settings.delivery.maildir, create=False)
    got = {str(message["To"]) for message in box}
    assert got == set(ADDRESSES)  # late@ is not mailed the old month
    with db.session_factory(migrated)() as session:
        emails = set(session.scalars(select(Delivery.email)))
    assert "late@example.org" not in emails


def test_plan_mode_only_plans(tmp_path: Path, migrated) -> None:
    settings = make_settings(tmp_path, schedule={"mode": "plan"})
    outcome = run_monthly(settings, now=JANUARY_RUN, engine=migrated)
    assert outcome.action == jobs.PLANNED_ONLY
    assert maildir_count(settings) == 0
    with db.session_factory(migrated)() as session:
        queued = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status == QUEUED)
        )
    assert queued == len(ADDRESSES)
    again = run_monthly(settings, now=JANUARY_RUN, engine=migrated)
    assert again.action == jobs.ALREADY_PLANNED


def _smtp_settings(tmp_path: Path, sink, on_missing: str) -> Settings:
    return make_settings(
        tmp_path,
        delivery={"transport": "smtp"},
        smtp={"host": sink.host, "port": sink.port, "security": "none", "connections": 1},
        schedule={"on_missing": on_missing},
    )


def test_missing_content_alerts_the_admin_by_email_and_sends_nothing(
    tmp_path: Path, migrated
) -> None:
    with running_sink() as sink:
        settings = _smtp_settings(tmp_path, sink, "alert")
        outcome = run_monthly(settings, now=MARCH_RUN, engine=migrated)
        messages = sink.messages
    assert (outcome.month, outcome.action, outcome.alerted) == ("2025-03", jobs.MISSING, True)
    assert len(messages) == 1
    received = messages[0]
    assert received.recipients == ("admin@example.org",)
    assert received.envelope_from == "digest@example.org"
    alert = email.message_from_bytes(received.content, policy=email.policy.default)
    assert alert["Subject"] == "[Test Digest] 2025-03 was not sent"
    assert alert["Auto-Submitted"] == "auto-generated"
    body = alert.get_content()
    assert "no such month folder" in body
    assert "newsletter send 2025-03" in body
    with db.session_factory(migrated)() as session:
        assert ledger.find_campaign(session, "2025-03") is None


def test_content_failing_its_checks_is_reported_with_the_file(tmp_path: Path, migrated) -> None:
    folder = tmp_path / "content" / "2025-03"
    folder.mkdir()
    (folder / "01-broken.md").write_text("---\ntitle: Only a title\n---\nNo topics.\n")
    with running_sink() as sink:
        settings = _smtp_settings(tmp_path, sink, "alert")
        outcome = run_monthly(settings, now=MARCH_RUN, engine=migrated)
        messages = sink.messages
    assert outcome.action == jobs.MISSING
    body = email.message_from_bytes(messages[0].content, policy=email.policy.default)
    assert "01-broken.md" in body.get_content()


def test_on_missing_skip_only_logs(tmp_path: Path, migrated, caplog) -> None:
    with running_sink() as sink:
        settings = _smtp_settings(tmp_path, sink, "skip")
        with caplog.at_level("ERROR", logger="newsletter.scheduler"):
            outcome = run_monthly(settings, now=MARCH_RUN, engine=migrated)
        messages = sink.messages
    assert (outcome.action, outcome.alerted) == (jobs.MISSING, False)
    assert messages == []
    assert "2025-03: not sent" in caplog.text


def test_alert_without_an_admin_address_is_logged(tmp_path: Path, caplog) -> None:
    settings = make_settings(tmp_path, newsletter={"admin_email": ""})
    transport = MemoryTransport()
    with caplog.at_level("ERROR", logger="newsletter.scheduler"):
        assert alert_admin(settings, "subject", "body", transport) is False
    assert transport.outbox == []
    assert "admin_email is not set" in caplog.text


def test_alert_survives_a_transport_failure(tmp_path: Path, caplog) -> None:
    from newsletter.errors import TemporaryFailure

    settings = make_settings(tmp_path)
    transport = MemoryTransport(fail=lambda _rcpt: TemporaryFailure("421 try later", code=421))
    with caplog.at_level("ERROR", logger="newsletter.scheduler"):
        assert alert_admin(settings, "subject", "body", transport) is False
    assert "could not alert admin@example.org" in caplog.text
