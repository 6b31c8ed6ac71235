"""Sending: planning, variants per subscriber, the ledger, retries, and a real SMTP server."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import threading

import pytest
from conftest import make_config
from smtp_sink import running_sink
from sqlalchemy import select
from sqlalchemy import update

from newsletter.config import settings_from_dict
from newsletter.content.reader import load_issue
from newsletter.errors import IssueNotReady
from newsletter.errors import PermanentFailure
from newsletter.errors import TemporaryFailure
from newsletter.sending.campaign import send_month
from newsletter.sending.plan import NO_MATCH
from newsletter.sending.plan import plan_campaign
from newsletter.sending.runner import CampaignRunner
from newsletter.store import engine as db
from newsletter.store import ledger
from newsletter.store.models import Delivery
from newsletter.store.models import Subscriber
from newsletter.store.registrar import DROPPED
from newsletter.store.registrar import drop_topic
from newsletter.store.subscribers import add_subscriber
from newsletter.store.subscribers import require_subscriber
from newsletter.store.subscribers import unsubscribe
from newsletter.transport.memory import MemoryTransport
from newsletter.transport.smtp import SmtpTransport

# Fixture issue 2025-01: alliance-in-depression [depression, alliance],
# cbt-for-anxiety [anxiety, cbt], therapist-alliance-variability [alliance, therapist-factors].
PEOPLE = {
    "all@example.net": None,
    "anxious@example.net": "anxiety-disorders",
    "alliance@example.net": "Alliance and Therapeutic Relationship",
    "two@example.net": "depression-and-depressive-symptoms;therapist-factors",
    "none@example.net": "group-psychotherapy",
}
CBT = "cognitive-therapy-ct-and-cognitive-behavioural-therapy-cbt"
EXPECTED_TITLES = {
    "all@example.net": 3,
    "anxious@example.net": 1,
    "alliance@example.net": 2,
    "two@example.net": 2,
}


@pytest.fixture
def issue(settings, taxonomy):
    return load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)


@pytest.fixture
def audience(engine, settings, taxonomy):
    with db.transaction(engine) as session:
        for address, topics in PEOPLE.items():
            add_subscriber(session, settings, taxonomy, address, name="Reader", topics=topics)
        add_subscriber(session, settings, taxonomy, "pending@example.net", status="pending")
    return PEOPLE


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def titles_in(message: email.message.EmailMessage, issue) -> list[str]:
    text = message.get_body(("plain",)).get_content()
    return [s.title for s in issue.summaries if s.title in text]


def rows(engine) -> dict[str, Delivery]:
    with db.session_factory(engine)() as session:
        return {d.email: d for d in session.scalars(select(Delivery))}


def test_plan_is_idempotent_and_fixes_variants(engine, settings, issue, audience) -> None:
    dry = plan_campaign(engine, settings, issue, dry_run=True)
    assert dry.audience == 5 and dry.skipped_no_match == 1 and dry.to_send == 4
    assert rows(engine) == {}
    first = plan_campaign(engine, settings, issue)
    second = plan_campaign(engine, settings, issue)
    assert first.new_rows == 5 and second.new_rows == 0
    planned = rows(engine)
    assert set(planned) == set(PEOPLE)  # the pending subscriber is not in the audience
    assert planned["none@example.net"].status == "skipped"
    assert planned["none@example.net"].last_error == NO_MATCH
    assert planned["anxious@example.net"].variant == "cbt-for-anxiety;topics"
    # Readers of every topic get the why-lines and stop links too (";topics").
    assert planned["all@example.net"].variant == (
        "alliance-in-depression,cbt-for-anxiety,therapist-alliance-variability;topics"
    )


def test_each_subscriber_gets_their_variant_once(engine, settings, issue, audience) -> None:
    transport = MemoryTransport()
    report = send_month(engine, settings, issue, transport).report
    assert report.sent == 4 and report.finished
    assert report.variants_rendered == 3  # alliance@ and two@ get the same two summaries
    by_address = {m.recipient: parse(m.message) for m in transport.outbox}
    assert set(by_address) == set(EXPECTED_TITLES)
    for address, count in EXPECTED_TITLES.items():
        assert len(titles_in(by_address[address], issue)) == count, address
    anxious = by_address["anxious@example.net"].get_body(("plain",)).get_content()
    assert "Matches your topics: Anxiety Disorders" in anxious
    # A second run plans nothing new and sends nothing twice.
    again = send_month(engine, settings, issue, transport).report
    assert again.sent == 0 and len(transport.outbox) == 4
    assert {d.status for d in rows(engine).values()} == {"sent", "skipped"}


def test_readers_of_all_topics_but_some_get_every_summary_not_only_about_those(
    engine, settings, taxonomy, issue
) -> None:
    """cbt-for-anxiety is about anxiety and CBT: stopping anxiety keeps it (CBT still
    matches); stopping both drops it. The others come as for any all-topics reader."""
    with db.transaction(engine) as session:
        for address, stop in [
            ("no-anxiety@example.net", ["anxiety-disorders"]),
            ("no-cbt-at-all@example.net", ["anxiety-disorders", CBT]),
        ]:
            reader = add_subscriber(session, settings, taxonomy, address)
            for slug in stop:
                assert drop_topic(session, taxonomy, reader, slug) == DROPPED
    transport = MemoryTransport()
    send_month(engine, settings, issue, transport)
    planned = rows(engine)
    assert planned["no-anxiety@example.net"].variant == (
        "alliance-in-depression,cbt-for-anxiety,therapist-alliance-variability;topics"
    )
    assert planned["no-cbt-at-all@example.net"].variant == (
        "alliance-in-depression,therapist-alliance-variability;topics"
    )
    sent = {m.recipient: parse(m.message) for m in transport.outbox}
    text = sent["no-anxiety@example.net"].get_body(("plain",)).get_content()
    html = sent["no-anxiety@example.net"].get_body(("html",)).get_content()
    assert (
        "Matches your topics: Cognitive Therapy (CT) and Cognitive-Behavioural Therapy (CBT)"
        in (" ".join(text.split()))
    )
    assert "(you stopped Anxiety Disorders)" in text
    for part in (text, html):
        assert "?drop=anxiety-disorders" not in part  # stopped already: not offered again
        assert f"?drop={CBT}" in part and "?drop=therapist-factors" in part
    other = sent["no-cbt-at-all@example.net"].get_body(("plain",)).get_content()
    assert titles_in(sent["no-cbt-at-all@example.net"], issue) == [
        issue.summary("alliance-in-depression").title,
        issue.summary("therapist-alliance-variability").title,
    ]
    assert "Matches your topics: Depression and Depressive Symptoms" in " ".join(other.split())


def test_unsubscribed_after_planning_is_skipped(engine, settings, issue, audience) -> None:
    plan_campaign(engine, settings, issue)
    with db.transaction(engine) as session:
        unsubscribe(session, require_subscriber(session, "two@example.net"))
    transport = MemoryTransport()
    report = CampaignRunner(engine, settings, issue, transport).run()
    assert "two@example.net" not in {m.recipient for m in transport.outbox}
    assert rows(engine)["two@example.net"].status == "skipped"
    assert rows(engine)["two@example.net"].last_error == "subscriber is unsubscribed"
    assert report.sent == 3


def test_temporary_failures_retry_then_succeed(engine, settings, issue, audience) -> None:
    settings.delivery.retry_base_seconds = 0
    failures = {"anxious@example.net": 2}

    def fail(recipient: str):
        if failures.get(recipient, 0) > 0:
            failures[recipient] -= 1
            return TemporaryFailure("451 try later", code=451, reply="451 4.3.0 try later")
        return None

    transport = MemoryTransport(fail=fail)
    report = send_month(engine, settings, issue, transport).report
    assert report.sent == 4 and report.retried == 2 and report.finished
    row = rows(engine)["anxious@example.net"]
    assert row.status == "sent" and row.attempts == 3
    assert [m.recipient for m in transport.outbox].count("anxious@example.net") == 1


def test_permanent_failure_and_attempt_limit(engine, settings, issue, audience) -> None:
    settings.delivery.retry_base_seconds = 0
    settings.delivery.max_attempts = 2

    def fail(recipient: str):
        if recipient == "alliance@example.net":
            return PermanentFailure("550 no such user", code=550, reply="550 5.1.1 no such user")
        if recipient == "two@example.net":
            return TemporaryFailure("421 busy", code=421, reply="421 busy")
        return None

    report = send_month(engine, settings, issue, MemoryTransport(fail=fail)).report
    planned = rows(engine)
    assert planned["alliance@example.net"].status == "failed"
    assert planned["alliance@example.net"].smtp_reply == "550 5.1.1 no such user"
    assert planned["two@example.net"].status == "failed"
    assert planned["two@example.net"].attempts == 2
    assert "gave up after 2 attempts" in planned["two@example.net"].last_error
    assert report.sent == 2 and report.failed == 2 and report.finished
    # Re-queue the failures and send again once the cause is fixed.
    with db.transaction(engine) as session:
        campaign = ledger.find_campaign(session, "2025-01")
        assert ledger.requeue_failed(session, campaign.id) == 2
    transport = MemoryTransport()
    again = send_month(engine, settings, issue, transport).report
    # The 550 was a hard bounce: that subscriber is now `bounced` and is not mailed again.
    assert again.sent == 1 and again.skipped == 1
    assert [m.recipient for m in transport.outbox] == ["two@example.net"]
    assert rows(engine)["alliance@example.net"].last_error == "subscriber is bounced"


def test_stop_leaves_the_rest_for_a_resume(engine, settings, issue, audience) -> None:
    plan_campaign(engine, settings, issue)
    transport = MemoryTransport()
    runner = CampaignRunner(engine, settings, issue, transport)
    runner.on_progress = lambda report, _step: runner.request_stop()
    first = runner.run()
    # The message that stopped it, and at most one already started on the connection.
    assert 1 <= first.sent <= 2 and not first.finished
    # The rows claimed with the first one but not attempted went back to the queue.
    assert {d.status for d in rows(engine).values()} == {"sent", "queued", "skipped"}
    second = CampaignRunner(engine, settings, issue, transport).run()
    assert second.finished
    assert sorted(m.recipient for m in transport.outbox) == sorted(EXPECTED_TITLES)


def test_send_through_a_real_smtp_server(engine, settings, issue, audience) -> None:
    with running_sink() as sink:
        transport = SmtpTransport(sink.host, sink.port)
        report = send_month(engine, settings, issue, transport).report
        assert report.sent == 4
        received = {m.recipients[0]: parse(m.content) for m in sink.messages}
        assert set(received) == set(EXPECTED_TITLES)
        for address, count in EXPECTED_TITLES.items():
            message = received[address]
            assert message["To"].addresses[0].addr_spec == address
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert len(titles_in(message, issue)) == count
        assert all(m.envelope_from == "digest@example.org" for m in sink.messages)
        again = send_month(engine, settings, issue, SmtpTransport(sink.host, sink.port)).report
        assert again.sent == 0 and len(sink.messages) == 4


def test_smtp_rejections_are_recorded(engine, settings, issue, audience) -> None:
    settings.delivery.retry_base_seconds = 0

    def fault(_envelope, phase: str, address: str):
        if phase == "RCPT" and address == "anxious@example.net":
            return "550 5.1.1 mailbox unavailable"
        return None

    with running_sink(fault=fault) as sink:
        report = send_month(engine, settings, issue, SmtpTransport(sink.host, sink.port)).report
        assert report.sent == 3 and report.failed == 1
        assert len(sink.messages) == 3
    row = rows(engine)["anxious@example.net"]
    assert row.status == "failed" and "550" in row.smtp_reply


def test_postgresql_plan_and_send(pg_engine, settings, taxonomy, issue) -> None:
    with db.transaction(pg_engine) as session:
        for address, topics in PEOPLE.items():
            add_subscriber(session, settings, taxonomy, address, topics=topics)
    transport = MemoryTransport()
    report = send_month(pg_engine, settings, issue, transport).report
    assert report.sent == 4 and report.finished
    again = send_month(pg_engine, settings, issue, transport).report
    assert again.sent == 0 and len(transport.outbox) == 4


def test_a_quota_stop_leaves_the_callers_stop_flag_alone(
    tmp_path, engine, settings, issue, audience
) -> None:
    """A run that stops on a long quota wait must not stop every later run sharing the event
    (the web app and the scheduler pass one event to all their sends)."""
    capped = settings_from_dict(make_config(tmp_path, delivery={"rate_per_hour": 2}), tmp_path)
    stop = threading.Event()
    transport = MemoryTransport()
    first = send_month(engine, capped, issue, transport, stop=stop).report
    assert first is not None
    assert first.sent == 2 and not first.finished
    assert not stop.is_set()
    second = send_month(engine, settings, issue, transport, stop=stop).report
    assert second is not None
    assert second.sent == 2 and second.finished
    assert sorted(m.recipient for m in transport.outbox) == sorted(EXPECTED_TITLES)


def test_a_callers_stop_request_drains_the_run(engine, settings, issue, audience) -> None:
    stop = threading.Event()
    stop.set()
    report = send_month(engine, settings, issue, MemoryTransport(), stop=stop).report
    assert report is not None
    assert report.sent == 0 and not report.finished
    assert {d.status for d in rows(engine).values()} == {"queued", "skipped"}


def test_rows_whose_message_cannot_be_built_fail_and_the_send_ends(
    engine, settings, issue, audience
) -> None:
    """Data written before names were checked (or by hand): the row fails with the reason, the
    others go out, and the run ends by itself instead of retrying for ever."""
    with db.transaction(engine) as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.email == "anxious@example.net")
            .values(name="Eve\nBcc: victim@example.org")
        )
        session.execute(
            update(Subscriber)
            .where(Subscriber.email == "two@example.net")
            .values(email="twö@example.net")
        )
    transport = MemoryTransport()
    report = send_month(engine, settings, issue, transport).report
    assert report is not None and report.finished
    assert report.failed == 2 and report.sent == 2
    planned = rows(engine)
    assert planned["anxious@example.net"].status == "failed"
    assert "control character" in planned["anxious@example.net"].last_error
    assert planned["twö@example.net"].status == "failed"
    assert "not an ASCII address" in planned["twö@example.net"].last_error
    assert all(b"victim@example.org" not in m.message for m in transport.outbox)


def test_an_internal_error_is_retried_a_bounded_number_of_times(
    engine, settings, issue, audience
) -> None:
    plan_campaign(engine, settings, issue)
    with db.transaction(engine) as session:  # as if every row had been tried before
        session.execute(
            update(Delivery)
            .where(Delivery.status == "queued")
            .values(attempts=settings.delivery.max_attempts - 1)
        )
    broken = MemoryTransport(fail=lambda _recipient: RuntimeError("transport exploded"))
    runner = CampaignRunner(engine, settings, issue, broken)
    report = runner.run()
    assert report.finished and report.failed == 4
    errors = {d.last_error for d in rows(engine).values() if d.status == "failed"}
    assert errors == {
        "gave up after 5 attempts: internal error: RuntimeError('transport exploded')"
    }


def test_progress_counts_each_row_once_not_its_retries(engine, settings, issue, audience) -> None:
    first_try = set()

    def fail_once(recipient: str):
        if recipient not in first_try:
            first_try.add(recipient)
            return TemporaryFailure("451 4.3.0 try again")
        return None

    settings.delivery.retry_base_seconds = 0
    steps = []
    send_month(
        engine,
        settings,
        issue,
        MemoryTransport(fail=fail_once),
        on_progress=lambda _report, step: steps.append(step),
    )
    assert sum(steps) == 4  # four readers, each tried twice


def test_every_send_path_refuses_an_issue_that_fails_its_checks(
    engine, settings, issue, audience
) -> None:
    first = issue.summaries[0]
    huge = dataclasses.replace(first, summary_md="A long paragraph of findings. " * 12000)
    oversized = dataclasses.replace(issue, summaries=(huge, *issue.summaries[1:]))
    with pytest.raises(IssueNotReady, match="Gmail clips"):
        send_month(engine, settings, oversized, MemoryTransport())
    assert rows(engine) == {}


def test_the_checks_of_one_issue_run_once_for_the_cli_and_send_month(
    monkeypatch, settings, issue
) -> None:
    """`newsletter send` asks for the warnings, then `send_month` checks again: the second
    asking reuses the first's findings (the checks rendered the issue twice each time),
    unless the settings or the issue are others by then."""
    from newsletter.sending import campaign

    calls = []
    real = campaign.check_loaded_issue

    def counting(settings, issue):
        calls.append(issue.month)
        return real(settings, issue)

    monkeypatch.setattr(campaign, "check_loaded_issue", counting)
    first = campaign.refuse_unready(settings, issue)
    assert campaign.refuse_unready(settings, issue) == first and len(calls) == 1
    settings.newsletter.name = "Another Digest"  # changed in place: checked again
    campaign.refuse_unready(settings, issue)
    assert len(calls) == 2
    campaign.refuse_unready(settings, dataclasses.replace(issue))  # another issue object
    assert len(calls) == 3
    huge = dataclasses.replace(issue.summaries[0], summary_md="Findings. " * 40000)
    with pytest.raises(IssueNotReady, match="Gmail clips"):
        campaign.refuse_unready(settings, dataclasses.replace(issue, summaries=(huge,)))


# --- issue 12: late joiners, variant labels, honest progress --------------------------------


def test_late_joiners_do_not_get_an_old_month_unless_asked(
    engine, settings, taxonomy, issue, audience
) -> None:
    """Item 4: one rule on every path, decided in the planner."""
    from newsletter.config import ListSpec
    from newsletter.sending.campaign import preview_plan
    from newsletter.store.models import PLANNED
    from newsletter.store.subscribers import confirm
    from newsletter.store.subscribers import set_lists

    settings.lists = [ListSpec(slug="digest", name="Digest"), ListSpec(slug="news", name="News")]
    with db.transaction(engine) as session:
        add_subscriber(session, settings, taxonomy, "elsewhere@example.net", lists=["news"])
    transport = MemoryTransport()
    assert send_month(engine, settings, issue, transport).report.sent == 4
    with db.transaction(engine) as session:
        add_subscriber(session, settings, taxonomy, "late@example.net")  # created after
        confirm(session, require_subscriber(session, "pending@example.net"))  # confirmed after
        # On the other list all along, added to the campaign's list after it was planned.
        set_lists(
            session,
            settings,
            require_subscriber(session, "elsewhere@example.net"),
            ["digest", "news"],
        )
    preview = preview_plan(engine, settings, issue)
    assert (preview.late_joiners, preview.new_rows, preview.to_send) == (3, 0, 0)
    assert preview.first_planned is not None
    again = send_month(engine, settings, issue, transport)
    assert again.plan.late_joiners == 3 and again.report.sent == 0
    assert len(transport.outbox) == 4 and "late@example.net" not in rows(engine)
    asked = send_month(engine, settings, issue, transport, include_late_joiners=True)
    assert asked.plan.late_joiners == 0 and asked.report.sent == 3 and asked.report.finished
    late = {"late@example.net", "pending@example.net", "elsewhere@example.net"}
    assert {m.recipient for m in transport.outbox[4:]} == late
    # Planning only (the CLI's `plan`, the scheduler's plan mode) reopens a finished month
    # for the workers when it adds rows.
    with db.transaction(engine) as session:
        add_subscriber(session, settings, taxonomy, "later@example.net")
    planned = send_month(engine, settings, issue, send=False, include_late_joiners=True)
    assert planned.plan.new_rows == 1
    with db.session_factory(engine)() as session:
        assert ledger.find_campaign(session, "2025-01").status == PLANNED


def test_the_web_admin_send_follows_the_late_joiner_rule(
    engine, settings, taxonomy, issue, audience
) -> None:
    from newsletter.web.sending import Sending

    transport = MemoryTransport()
    sending = Sending(settings, taxonomy, engine, lambda: transport, custom_transport=True)
    sending.start(issue)
    sending.wait("2025-01", 30)
    assert len(transport.outbox) == 4
    with db.transaction(engine) as session:
        add_subscriber(session, settings, taxonomy, "late@example.net")
    sending.start(issue)
    sending.wait("2025-01", 30)
    assert sending.state("2025-01").error == ""
    assert len(transport.outbox) == 4 and "late@example.net" not in rows(engine)
    assert sending.plan(issue).late_joiners == 1  # what the admin page can show


def test_plan_labels_variants_by_summary_titles(engine, settings, issue, audience) -> None:
    """Item 13: the plan reads as summary titles, not as ledger keys."""
    from newsletter.sending.plan import variant_label

    plan = plan_campaign(engine, settings, issue, dry_run=True)
    labels = {plan.label(key): count for key, count in plan.variants.items()}
    assert labels == {
        "Client Contribution to the Alliance Predicts Recovery From Depression + CBT Outperforms "
        "Placebo for Adult Anxiety Disorders + It Is the Therapist’s Side of the Alliance That "
        "Counts; with topic notes": 1,
        "CBT Outperforms Placebo for Adult Anxiety Disorders; with topic notes": 1,
        "Client Contribution to the Alliance Predicts Recovery From Depression + It Is the "
        "Therapist’s Side of the Alliance That Counts; with topic notes": 2,
    }
    whole = variant_label(issue, "alliance-in-depression,cbt-for-anxiety")
    assert whole.endswith("; whole issue, no topic notes") and " + " in whole


def test_progress_never_passes_its_total_with_retries_resumed_and_new_rows(
    engine, settings, taxonomy, issue, audience
) -> None:
    """Item 12: rows that retry, rows left claimed by a crashed run, and rows planned while
    the run goes: the progress total grows with them, and done never passes it."""
    import datetime as dt

    from newsletter.store.models import utcnow

    settings.delivery.retry_base_seconds = 0
    settings.delivery.batch_size = 1
    plan_campaign(engine, settings, issue)
    with db.transaction(engine) as session:  # a crashed run's claim, its lease run out
        campaign = ledger.find_campaign(session, "2025-01")
        ledger.claim_batch(
            session, campaign.id, "gone:1", 2, dt.timedelta(seconds=-1), ["digest"], utcnow()
        )
    failed_once: set[str] = set()

    def fail_once(recipient: str):
        if recipient not in failed_once:
            failed_once.add(recipient)
            return TemporaryFailure("451 4.3.0 try again")
        return None

    seen: list[tuple[int, int]] = []
    added = []

    def on_progress(report, _step) -> None:
        seen.append((report.done, report.total))
        if not added:  # a subscriber planned mid-run (e.g. by another operator's `plan`)
            with db.transaction(engine) as session:
                add_subscriber(session, settings, taxonomy, "mid@example.net")
            added.append(plan_campaign(engine, settings, issue, include_late_joiners=True))

    report = send_month(
        engine, settings, issue, MemoryTransport(fail=fail_once), on_progress=on_progress
    ).report
    assert report.finished and report.sent == 5
    assert added[0].new_rows == 1
    assert all(done <= total for done, total in seen), seen
    assert seen[-1] == (5, 5)
    assert report.render_seconds > 0 and report.elapsed >= report.render_seconds


def test_rows_still_held_are_not_claimed_again_when_their_lease_runs_out(
    engine, settings, issue, audience
) -> None:
    """The runner claims its next batch while the last is being sent; a row it still holds
    whose (short) lease ran out meanwhile must not come back to it and go out twice."""
    import time
    from collections import Counter

    settings.delivery.batch_size = 2
    settings.delivery.lease_seconds = 0.05

    def slow(_recipient: str) -> None:
        time.sleep(0.06)  # longer than the lease: every held row's lease runs out
        return None

    transport = MemoryTransport(fail=slow)
    report = send_month(engine, settings, issue, transport).report
    received = Counter(message.recipient for message in transport.outbox)
    assert report.finished and report.sent == len(transport.outbox) >= 3  # several batches
    assert set(received.values()) == {1}  # each reader exactly once


def test_postgresql_late_joiners_and_taking_over_a_stopped_senders_rows(
    pg_engine, settings, taxonomy, issue
) -> None:
    """The late-joiner and lease SQL on PostgreSQL (aggregates, EXISTS, the take-over)."""
    import datetime as dt
    import socket
    import subprocess
    import sys

    with db.transaction(pg_engine) as session:
        for address, topics in PEOPLE.items():
            add_subscriber(session, settings, taxonomy, address, topics=topics)
    plan_campaign(pg_engine, settings, issue)
    with db.transaction(pg_engine) as session:
        add_subscriber(session, settings, taxonomy, "late@example.net")
    assert plan_campaign(pg_engine, settings, issue, dry_run=True).late_joiners == 1
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    crashed = f"{socket.gethostname()}:{ended.pid}"
    with db.transaction(pg_engine) as session:
        campaign = ledger.find_campaign(session, "2025-01")
        ledger.claim_batch(session, campaign.id, crashed, 2, dt.timedelta(minutes=5), ["digest"])
        held = ledger.open_rows(session, campaign.id, "me")
    assert [(h.worker_id, h.rows) for h in held.held] == [(crashed, 2)]
    assert held.held[0].lease_until > held.held[0].claimed_at
    lines: list[str] = []
    transport = MemoryTransport()
    result = send_month(pg_engine, settings, issue, transport, take_over=True, on_wait=lines.append)
    report = result.report
    assert lines == [f"took over 2 rows claimed by a stopped sender ({crashed})"]
    assert report.finished and report.sent == 4
    assert "late@example.net" not in {m.recipient for m in transport.outbox}


def test_wait_lines_repeat_only_when_what_is_waited_for_changes() -> None:
    from newsletter.sending.waits import Announcer
    from newsletter.sending.waits import Notice
    from newsletter.sending.waits import duration

    announcer = Announcer(repeat=3600)
    one = [Notice("retry", "1 address is being retried at 10:42; Ctrl-C leaves it queued")]
    assert announcer.changed(one) == [one[0].text]
    assert announcer.changed(one) == []  # the same wait: said once
    two = [Notice("retry", "2 addresses are being retried at 10:43; Ctrl-C leaves them queued")]
    assert announcer.changed(two) == []  # the same kind, changed: not more than once a while
    held = [*two, Notice("gone", "waiting up to 4 min for 3 rows claimed by a stopped sender")]
    assert announcer.changed(held) == [n.text for n in held]  # a new kind: at once
    assert (duration(0.2), duration(59.1), duration(200), duration(3700)) == (
        "1 s",
        "1 min",
        "4 min",
        "1 h 2 min",
    )
