"""How each issue did (store.reports) on SQLite and PostgreSQL, and the dashboard's SVG charts."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import TEST_SECRET
from conftest import make_config
from conftest import pg_schema
from outside_tools import require_tool
from outside_tools import update_golden
from sqlalchemy import select
from sqlalchemy import update

from newsletter.config import settings_from_dict
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.errors import PermanentFailure
from newsletter.render import charts
from newsletter.sending.campaign import send_month
from newsletter.store import engine as db
from newsletter.store import reports
from newsletter.store import responses
from newsletter.store.bounces import record_bounce
from newsletter.store.models import COMPLAINED
from newsletter.store.models import Campaign
from newsletter.store.models import Delivery
from newsletter.store.models import IssueResponse
from newsletter.store.models import Subscriber
from newsletter.store.subscribers import add_subscriber
from newsletter.store.subscribers import require_subscriber
from newsletter.store.subscribers import unsubscribe
from newsletter.transport.memory import MemoryTransport

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
SVG = "{http://www.w3.org/2000/svg}"
ANXIETY = "anxiety-disorders"
ALLIANCE = "alliance-and-therapeutic-relationship"
PEOPLE = {
    "all@example.net": None,  # every topic
    "anxious@example.net": ANXIETY,
    "alliance@example.net": ALLIANCE,
    "gone@example.net": ANXIETY,  # refused by the server: failed
    "none@example.net": "group-psychotherapy",  # nothing in the issue: skipped
    "later@example.net": ALLIANCE,  # unsubscribes 40 days after: not counted
    "angry@example.net": None,  # complains
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sent(request, tmp_path_factory, migrated_sqlite):
    """One database per backend for the whole module, holding `scenario` (read-only tests)."""
    tmp = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as patch, contextlib.ExitStack() as stack:
        patch.setenv("NEWSLETTER_SECRET_KEY", TEST_SECRET)
        settings = settings_from_dict(make_config(tmp), tmp)
        if request.param == "sqlite":
            shutil.copyfile(migrated_sqlite, tmp / "subscribers.db")
            engine = db.make_engine(settings.database.url)
            stack.callback(engine.dispose)
        else:
            url = os.environ.get("NEWSLETTER_TEST_DATABASE_URL")
            require_tool(url, "NEWSLETTER_TEST_DATABASE_URL is not set (PostgreSQL tests need it)")
            engine = stack.enter_context(pg_schema(url))
        scenario(engine, settings, default_taxonomy())
        yield engine


def scenario(store, settings, taxonomy):
    """2025-01 sent to PEOPLE: one failed, one skipped, then bounces, unsubscribes, complaints."""
    settings.archive.rebuild_after_send = False  # tested in test_publish.py
    with db.transaction(store) as session:
        for address, topics in PEOPLE.items():
            add_subscriber(session, settings, taxonomy, address, topics=topics)
        add_subscriber(session, settings, taxonomy, "pending@example.net", status="pending")

    def refuse(recipient: str):
        if recipient == "gone@example.net":
            return PermanentFailure("550 no such user", code=550, reply="550 5.1.1 no such user")
        return None

    issue = load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)
    result = send_month(store, settings, issue, MemoryTransport(refuse))
    assert result.report is not None and result.report.finished
    with db.transaction(store) as session:
        sent_at = session.scalar(
            select(Delivery.sent_at).where(Delivery.email == "anxious@example.net")
        )
        anxious = require_subscriber(session, "anxious@example.net")
        unsubscribe(session, anxious)
        anxious.unsubscribed_at = sent_at + dt.timedelta(days=3)
        later = require_subscriber(session, "later@example.net")
        unsubscribe(session, later)
        later.unsubscribed_at = sent_at + dt.timedelta(days=40)
        angry = require_subscriber(session, "angry@example.net")
        angry.status = COMPLAINED
        # Through the issue's links (the web pages record these: see test_web_reports.py).
        assert responses.record(session, "2025-01", responses.UNSUBSCRIBED)
        assert responses.record(session, "2025-01", responses.DROPPED_TOPIC, ANXIETY)
        assert responses.record(session, "2025-01", responses.DROPPED_TOPIC, ANXIETY)
        assert responses.record(session, "2025-01", responses.DROPPED_TOPIC, ALLIANCE)
        assert not responses.record(session, "1999-01", responses.UNSUBSCRIBED)  # never sent
        late = IssueResponse(
            campaign_id=session.scalar(select(Campaign.id).where(Campaign.month == "2025-01")),
            kind=responses.UNSUBSCRIBED,
            at=sent_at + dt.timedelta(days=40),
        )
        session.add(late)  # 40 days after: past the window
        record_bounce(
            session,
            email_address="alliance@example.net",
            kind="soft",
            message_id="<dsn-1@mx.example.net>",
            original_message_id=f"<2025-01.{angry.id}.abcdef@example.org>",
        )
        record_bounce(  # answers another month's message: not this issue's
            session,
            email_address="alliance@example.net",
            kind="soft",
            message_id="<dsn-2@mx.example.net>",
            original_message_id="<2024-12.1.abcdef@example.org>",
        )
    return store


def test_the_report_counts_what_happened_to_the_issue(sent) -> None:
    with db.session_factory(sent)() as session:
        report = reports.issue_report(session, "2025-01")
    assert report is not None
    assert report.status == "done"
    assert report.audience == 7  # the pending subscriber is not in it
    assert (report.sent, report.failed, report.skipped) == (5, 1, 1)
    assert report.failed_reasons == [("550 no such user", 1)]
    assert len(report.skipped_reasons) == 1 and report.skipped_reasons[0][1] == 1
    # One hard bounce at send time (the 550), one soft one from a DSN; the other month's not.
    assert (report.bounced_hard, report.bounced_soft) == (1, 1)
    assert report.unsubscribed == 1  # the one 40 days after is not counted
    assert report.topics_dropped == [(ANXIETY, 2), (ALLIANCE, 1)]
    assert report.complained == 1
    assert report.complaint_rate == pytest.approx(1 / 5)
    assert report.bounce_rate == pytest.approx(2 / 5)


def test_a_complaint_goes_to_the_last_issue_the_reader_got(engine, settings, taxonomy) -> None:
    sent = scenario(engine, settings, taxonomy)
    issue = load_issue(settings.content.dir, "2025-02", taxonomy, settings.newsletter.name)
    send_month(sent, settings, issue, MemoryTransport())  # all@ gets every issue
    with db.transaction(sent) as session:
        first = session.scalar(
            select(Delivery.sent_at)
            .where(Delivery.email == "all@example.net")
            .order_by(Delivery.id)
        )
        assert first is not None
        session.execute(  # February reached them a day after January, and they complained
            update(Delivery)
            .where(Delivery.email == "all@example.net", Delivery.sent_at > first)
            .values(sent_at=first + dt.timedelta(days=1))
        )
        reader = require_subscriber(session, "all@example.net")
        reader.status = COMPLAINED
        reader.updated_at = first + dt.timedelta(days=2)
    with db.session_factory(sent)() as session:
        january = reports.issue_report(session, "2025-01")
        february = reports.issue_report(session, "2025-02")
    assert january is not None and february is not None
    assert january.complained == 1  # angry@ only
    assert february.complained == 1  # all@


def test_an_unknown_response_is_refused(session) -> None:
    with pytest.raises(ValueError, match="unknown response"):
        responses.record(session, "2025-01", "opened")


def test_the_recipients_list_filters_searches_and_pages(sent) -> None:
    with db.session_factory(sent)() as session:
        everyone, total = reports.recipients(session, "2025-01")
        failed, failed_total = reports.recipients(session, "2025-01", status="failed")
        found, found_total = reports.recipients(session, "2025-01", search="ALL")
        literal, _ = reports.recipients(session, "2025-01", search="%")  # not a wildcard
        page, page_total = reports.recipients(session, "2025-01", limit=2, offset=2)
        with pytest.raises(ValueError, match="status"):
            reports.recipients(session, "2025-01", status="lost")
        assert reports.recipients(session, "1999-01") == ([], 0)
    assert total == 7 and len(everyone) == 7
    assert [(r.email, r.status, r.reason) for r in failed] == [
        ("gone@example.net", "failed", "550 no such user")
    ]
    assert failed_total == 1
    assert {r.email for r in found} == {"all@example.net", "alliance@example.net"}
    assert found_total == 2
    assert literal == []
    assert [r.email for r in page] == [r.email for r in everyone[2:4]] and page_total == 7
    statuses = {r.email: r.subscriber_status for r in everyone}
    assert statuses["anxious@example.net"] == "unsubscribed"


def test_no_report_for_a_month_never_sent(engine) -> None:
    with db.session_factory(engine)() as session:
        assert reports.issue_report(session, "2025-01") is None


def test_growth_and_topic_popularity(sent, taxonomy) -> None:
    now = dt.datetime.now(dt.UTC)
    with db.session_factory(sent)() as session:
        growth = reports.growth(session, 3, now)
        per_topic = reports.readers_per_topic(session, [t.slug for t in taxonomy.topics])
        last = reports.last_campaign(session)
        totals = reports.status_totals(session)
        subscribers = session.scalars(select(Subscriber)).all()
    assert [g.month for g in growth] == reports.months_back(now, 3)
    this_month = growth[-1]
    assert this_month.new == len(subscribers) == 8
    assert this_month.unsubscribed == 1  # the 40-day one falls in a later month
    assert this_month.bounced == 1  # the 550 set gone@ aside (policy: one hard bounce)
    # Active readers: all@ (every topic), alliance@; anxious@ and later@ left, angry@ complained,
    # gone@ bounced, none@ chose group psychotherapy.
    assert per_topic[ALLIANCE] == 2
    assert per_topic[ANXIETY] == 1
    assert per_topic["group-psychotherapy"] == 2
    assert last is not None and last.month == "2025-01"
    assert totals["active"] == 3


def test_months_back_crosses_the_year() -> None:
    now = dt.datetime(2026, 2, 10, tzinfo=dt.UTC)
    assert reports.months_back(now, 4) == ["2025-11", "2025-12", "2026-01", "2026-02"]


# --- the charts (pure) -------------------------------------------------------------------------


def _assert_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if update_golden():  # refused under CI
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), f"{name} changed (UPDATE_GOLDEN=1 to accept)"


def growth_chart() -> str:
    return charts.grouped_columns(
        "growth",
        "Subscribers by month",
        ["2026-01", "2026-02", "2026-03"],
        [("new", [12, 30, 7]), ("confirmed", [10, 25, 7]), ("unsubscribed", [1, 0, 3])],
    )


def topics_chart() -> str:
    return charts.horizontal_bars(
        "topics",
        "Readers per topic",
        [("Alliance & Therapeutic Relationship", 41), ("Anxiety <disorders>", 17), ("Empathy", 0)],
        unit=" readers",
    )


@pytest.mark.parametrize(
    ("name", "make"), [("chart-growth.svg", growth_chart), ("chart-topics.svg", topics_chart)]
)
def test_the_charts_match_their_golden_files(name, make) -> None:
    _assert_golden(name, make())


def test_a_chart_is_valid_svg_with_its_numbers_in_words() -> None:
    for svg, words in (
        (growth_chart(), "2026-02: new 30, confirmed 25, unsubscribed 0"),
        (topics_chart(), "Anxiety <disorders>: 17 readers"),
    ):
        root = ET.fromstring(svg)  # well-formed: labels are escaped
        assert root.get("role") == "img"
        title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
        assert title is not None and title.text
        assert desc is not None and words in (desc.text or "")
        assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
        assert "style=" not in svg and "<script" not in svg


def test_a_chart_refuses_series_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="one value per category"):
        charts.grouped_columns("x", "t", ["a", "b"], [("s", [1])])


def test_an_empty_chart_says_so() -> None:
    svg = charts.horizontal_bars("empty", "Nothing", [])
    assert "no data" in svg
    ET.fromstring(svg)


def test_the_last_issue_sent_within_the_window(sent):
    """What an unsubscribe by mail without a campaign counts for (`responses`), per backend."""
    with db.session_factory(sent)() as session:
        reader = require_subscriber(session, "anxious@example.net")
        sent_at = session.scalar(
            select(Delivery.sent_at).where(Delivery.subscriber_id == reader.id)
        )
        assert sent_at is not None
        day = dt.timedelta(days=1)
        assert responses.last_sent_campaign(session, reader.id, sent_at + day) == "2025-01"
        assert responses.last_sent_campaign(session, reader.id, sent_at + 31 * day) == ""
        assert responses.last_sent_campaign(session, reader.id, sent_at - day) == ""
        skipped = require_subscriber(session, "none@example.net")  # nothing was sent to them
        assert responses.last_sent_campaign(session, skipped.id, sent_at + day) == ""
