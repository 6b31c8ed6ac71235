"""What the issue report counts as an issue's unsubscribes and dropped topics, by source: topics
unticked in the preference form opened from a digest, unsubscribes by mail (the token's campaign,
else the last issue sent within 30 days), and not an admin's CLI unsubscribe (the audit log)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy import update
from test_bounce_support import maildir
from test_bounce_support import sample
from test_web_support import BASE
from test_web_support import csrf
from test_web_support import text_of

from newsletter.cli import main
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.returns.unsubscribe import scan
from newsletter.sending.campaign import send_month
from newsletter.store import audit
from newsletter.store import reports
from newsletter.store import responses
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction
from newsletter.store.models import Delivery
from newsletter.store.models import IssueResponse
from newsletter.store.models import utcnow
from newsletter.tokens import CAMPAIGN
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer
from newsletter.transport.memory import MemoryTransport

pytest_plugins = ["test_web_support"]
TAXONOMY = default_taxonomy()
MAILTO = "unsubscribe@example.org"


def send_2025_01(engine, settings, *readers: tuple[str, str | None]) -> dict[str, bytes]:
    """Add the readers (address, topics) and send them 2025-01: address -> message."""
    with transaction(engine) as session:
        for address, topics in readers:
            api.add_subscriber(session, settings, TAXONOMY, address, topics=topics)
    issue = load_issue(settings.content.dir, "2025-01", TAXONOMY, "Test Digest")
    transport = MemoryTransport()
    send_month(engine, settings, issue, transport)
    return {sent.recipient: sent.message for sent in transport.outbox}


def report(engine):
    with session_factory(engine)() as session:
        found = reports.issue_report(session, "2025-01")
    assert found is not None
    return found


def preferences_link(message: bytes) -> str:
    found = re.search(re.escape(BASE) + r"(/preferences/[^\s?>]+)(?:\s|$)", text_of(message))
    assert found, text_of(message)
    return found.group(1)


def save_form(client, path: str, **fields):
    data = {"csrf_token": csrf(client, path), "action": "save", "topic_mode": "some", **fields}
    return client.post(path, data=data)


# --- 1. topics unticked in the preference form -----------------------------------------------


def test_topics_unticked_in_the_form_from_a_digest_count_for_that_issue(
    client, engine, web_settings
):
    chosen = "anxiety-disorders;therapist-factors;depression-and-depressive-symptoms"
    messages = send_2025_01(engine, web_settings, ("ana@example.net", chosen))
    prefs = preferences_link(messages["ana@example.net"])
    saved = save_form(client, prefs, topics=["depression-and-depressive-symptoms"])
    assert saved.status_code == 200 and "Your preferences are saved." in saved.text
    dropped = dict(report(engine).topics_dropped)
    assert dropped == {"anxiety-disorders": 1, "therapist-factors": 1}
    # Saving again without a change drops nothing more.
    assert (
        save_form(client, prefs, topics=["depression-and-depressive-symptoms"]).status_code == 200
    )
    assert dict(report(engine).topics_dropped) == dropped


def test_an_all_topics_reader_who_switches_to_some_drops_the_rest(client, engine, web_settings):
    messages = send_2025_01(engine, web_settings, ("bo@example.net", None))
    prefs = preferences_link(messages["bo@example.net"])
    keep = [t.slug for t in TAXONOMY.topics.terms][:-2]
    assert save_form(client, prefs, topics=keep).status_code == 200
    dropped = dict(report(engine).topics_dropped)
    assert dropped == {t.slug: 1 for t in TAXONOMY.topics.terms[-2:]}


def test_a_form_from_a_link_outside_a_digest_or_after_the_window_counts_for_none(
    client, engine, web_settings
):
    chosen = "anxiety-disorders;depression-and-depressive-symptoms"
    send_2025_01(engine, web_settings, ("cy@example.net", chosen), ("di@example.net", chosen))
    signer = Signer(web_settings.secret_key())
    with session_factory(engine)() as session:
        cy = api.require_subscriber(session, "cy@example.net").id
        di = api.require_subscriber(session, "di@example.net").id
    plain = signer.make(PREFERENCES, cy, "cy@example.net")  # no campaign in it
    assert (
        save_form(
            client, f"/preferences/{plain}", topics=["depression-and-depressive-symptoms"]
        ).status_code
        == 200
    )
    assert report(engine).topics_dropped == []
    # Opened from the digest, but 31 days after the issue went out: outside the report.
    late = signer.make(PREFERENCES, di, "di@example.net", {CAMPAIGN: "2025-01"})
    assert (
        save_form(
            client, f"/preferences/{late}", topics=["depression-and-depressive-symptoms"]
        ).status_code
        == 200
    )
    assert dict(report(engine).topics_dropped) == {"anxiety-disorders": 1}
    with transaction(engine) as session:
        for row in session.scalars(select(IssueResponse)):
            row.at += dt.timedelta(days=31)
    assert report(engine).topics_dropped == []


# --- 2. unsubscribes by mail, and by an admin --------------------------------------------------


def mail(sender: str, subject: str) -> bytes:
    return sample("unsubscribe-request.eml", FROM=sender, TO=MAILTO, SUBJECT=subject, BODY="")


def test_an_unsubscribe_by_mail_counts_for_the_issue_in_its_token(
    tmp_path: Path, engine, web_settings
):
    messages = send_2025_01(engine, web_settings, ("ana@example.net", None))
    header = str(_parse(messages["ana@example.net"])["List-Unsubscribe"])
    subject = re.search(r"subject=([^>]+)>", header).group(1)
    box = maildir(tmp_path, mail("someone@else.example", subject.replace("%20", " ")))
    done = scan(box, web_settings, engine)
    assert [how for _, _, how in done.unsubscribed] == ["token"]
    assert report(engine).unsubscribed == 1
    # Read again: already unsubscribed, counted once.
    scan(
        maildir(tmp_path, mail("someone@else.example", subject), name="again"), web_settings, engine
    )
    assert report(engine).unsubscribed == 1


def test_an_unsubscribe_by_mail_without_a_campaign_counts_for_the_last_issue_sent(
    tmp_path: Path, engine, web_settings
):
    send_2025_01(
        engine,
        web_settings,
        ("ben@example.net", None),
        ("cleo@example.net", None),
        ("dan@example.net", None),
    )
    with transaction(engine) as session:
        cleo = api.require_subscriber(session, "cleo@example.net").id
        dan = api.require_subscriber(session, "dan@example.net")
        # Dan's copy went out 40 days ago: no issue within 30 days of his request.
        session.execute(
            update(Delivery)
            .where(Delivery.subscriber_id == dan.id)
            .values(sent_at=utcnow() - dt.timedelta(days=40))
        )
    old_token = Signer(web_settings.secret_key()).make(UNSUBSCRIBE, cleo, "cleo@example.net")
    box = maildir(
        tmp_path,
        mail("ben@example.net", "Please unsubscribe me"),  # by the sender, no token
        mail("x@else.example", f"unsubscribe {old_token}"),  # a token naming no campaign
        mail("dan@example.net", "unsubscribe"),
    )
    done = scan(box, web_settings, engine)
    assert sorted(how for _, _, how in done.unsubscribed) == ["sender", "sender", "token"]
    assert report(engine).unsubscribed == 2  # Ben and Cleo; Dan's is counted for no issue
    with session_factory(engine)() as session:
        assert responses.last_sent_campaign(session, cleo) == "2025-01"
        assert responses.last_sent_campaign(session, cleo, utcnow() + dt.timedelta(days=31)) == ""
        assert responses.last_sent_campaign(session, dan.id) == ""


def test_a_cli_unsubscribe_is_an_admin_action_in_the_audit_log(
    runner: CliRunner, config_file: Path, engine, settings
):
    send_2025_01(engine, settings, ("eve@example.net", None))
    result = runner.invoke(
        main, ["--config", str(config_file), "subscribers", "unsubscribe", "eve@example.net"]
    )
    assert result.exit_code == 0, result.output
    assert report(engine).unsubscribed == 0
    assert "admin" in report(engine).counted_sources and "by mail" in report(engine).counted_sources
    with session_factory(engine)() as session:
        eve = session.scalar(
            select(Delivery.subscriber_id).where(Delivery.email == "eve@example.net")
        )
        entries, _ = audit.recent(session, action="unsubscribe")
    assert [(e.actor, e.target, e.detail) for e in entries] == [
        ("cli", f"subscriber {eve}", "every list")
    ]
    again = runner.invoke(
        main, ["--config", str(config_file), "subscribers", "unsubscribe", "eve@example.net"]
    )
    assert again.exit_code == 0 and "already" in again.output
    with session_factory(engine)() as session:
        assert audit.recent(session, action="unsubscribe")[1] == 1  # nothing changed: no entry
    # `set-status … unsubscribed` is an admin's change too: in the log, counted for no issue.
    send_2025_01(engine, settings, ("fay@example.net", None))
    args = ["--config", str(config_file), "subscribers", "set-status", "fay@example.net"]
    assert runner.invoke(main, [*args, "unsubscribed"]).exit_code == 0
    assert report(engine).unsubscribed == 0
    with session_factory(engine)() as session:
        [entry] = audit.recent(session, action="edit-subscriber")[0]
    assert (entry.actor, entry.detail) == ("cli", "status active → unsubscribed")


def test_the_report_page_and_api_say_which_sources_they_count(admin, engine, web_settings):
    send_2025_01(engine, web_settings, ("fay@example.net", None))
    page = admin.get("/admin/issues/2025-01/report").text
    assert 'id="counted-sources"' in page and "by mail" in page and "audit log" in page
    body = admin.get(
        "/api/issues/2025-01/report", headers={"Authorization": "Bearer test-api-token"}
    ).json()
    assert body["counted_sources"] == reports.COUNTED_SOURCES


def _parse(message: bytes):
    import email
    import email.policy

    return email.message_from_bytes(message, policy=email.policy.default)
