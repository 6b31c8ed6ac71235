"""The dashboard, the issue report (page, CSV, API), and publishing from the web and the API.

Most tests read one site shared by the module (`site`: one app, one admin session, 2025-01
sent from the send button); the ones that change things have their own app (`admin`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import shutil

import pytest
from conftest import TEST_SECRET
from conftest import make_config
from sqlalchemy import Engine
from sqlalchemy import select
from test_web_support import BASE
from test_web_support import PASSWORD
from test_web_support import TestClient
from test_web_support import csrf
from test_web_support import link_to
from test_web_support import text_of

from newsletter.config import Settings
from newsletter.config import settings_from_dict
from newsletter.content.taxonomy import default_taxonomy
from newsletter.errors import PermanentFailure
from newsletter.store import audit
from newsletter.store import engine as db
from newsletter.store.models import Delivery
from newsletter.store.subscribers import add_subscriber
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer
from newsletter.transport.memory import MemoryTransport
from newsletter.web import create_app
from newsletter.web.sending import SendState

pytest_plugins = ["test_web_support"]
AUTH = {"Authorization": "Bearer test-api-token"}
TAXONOMY = default_taxonomy()
READERS = {
    "ana@example.net": None,
    "=cmd@example.net": None,  # a CSV formula
    "gone@example.net": None,  # refused by the server
    "leaver@example.net": "anxiety-disorders",  # unsubscribes (its own test)
    "dropper@example.net": "anxiety-disorders;therapist-factors",  # drops a topic (its own test)
}


@dataclasses.dataclass
class Site:
    client: TestClient  # logged in as admin
    engine: Engine
    settings: Settings
    outbox: MemoryTransport
    state: SendState


def refuse_gone(to: str):
    return PermanentFailure("550 no such user", code=550) if to == "gone@example.net" else None


@pytest.fixture(scope="module")
def site(tmp_path_factory, migrated_sqlite, admin_password_hash):
    """One app for the module, 2025-01 sent to READERS from the admin's send button."""
    tmp = tmp_path_factory.mktemp("web-reports")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEWSLETTER_SECRET_KEY", TEST_SECRET)
        patch.setenv("NEWSLETTER_ADMIN_PASSWORD_HASH", admin_password_hash)
        patch.setenv("NEWSLETTER_API_TOKEN", "test-api-token")
        settings = settings_from_dict(make_config(tmp), tmp)
        shutil.copyfile(migrated_sqlite, tmp / "subscribers.db")
        engine = db.make_engine(settings.database.url)
        with db.transaction(engine) as session:
            for address, topics in READERS.items():
                add_subscriber(session, settings, TAXONOMY, address, topics=topics)
        outbox = MemoryTransport(refuse_gone)
        app = create_app(settings, transport_factory=lambda: outbox, engine=engine)
        with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
            login = {"password": PASSWORD, "csrf_token": csrf(client, "/admin/login")}
            assert client.post("/admin/login", data=login).status_code == 303
            token = csrf(client, "/admin/issues/2025-01/send")
            response = client.post("/admin/issues/2025-01/send", data={"csrf_token": token})
            assert response.status_code == 303
            app.state.ctx.sending.wait("2025-01", timeout=30)
            state = app.state.ctx.sending.state("2025-01")
            assert state is not None and not state.error, state and state.error
            yield Site(client, engine, settings, outbox, state)
        engine.dispose()


def audit_actions(engine) -> list[tuple[str, str, str]]:
    with db.session_factory(engine)() as session:
        entries, _ = audit.recent(session)
    return [(e.actor, e.action, e.target) for e in entries]


# --- publishing ----------------------------------------------------------------------------


def test_a_send_from_the_web_rebuilds_the_archive_it_serves(site):
    assert site.state.archive.startswith("archive rebuilt"), site.state.archive
    assert (site.settings.archive.dir / "2025-01" / "index.html").is_file()
    # The archive did not exist when the app started; it is served now, and linked.
    page = site.client.get("/archive/2025-01/")
    assert page.status_code == 200 and "Fixture issue" in page.text
    report = site.client.get("/admin/issues/2025-01/report")
    assert 'href="/archive/2025-01/"' in report.text
    actions = audit_actions(site.engine)
    assert ("admin", "send", "2025-01") in actions
    assert ("admin", "archive-rebuild", "archive") in actions


def test_the_archive_is_a_404_until_it_is_built(client):
    assert client.get("/archive/").status_code == 404


def test_the_rebuild_button(admin, web_settings, engine):
    token = csrf(admin, "/admin/dashboard")
    response = admin.post("/admin/archive/rebuild", data={"csrf_token": token})
    assert response.status_code == 200
    assert "Archive rebuilt" in response.text
    assert (web_settings.archive.dir / "index.html").is_file()
    assert audit_actions(engine)[0] == ("admin", "archive-rebuild", "archive")


def test_the_rebuild_button_needs_the_form_token_and_the_session(admin, client, web_settings):
    assert admin.post("/admin/archive/rebuild", data={"csrf_token": "x"}).status_code == 403
    assert not web_settings.archive.dir.exists()
    admin.cookies.clear()
    response = client.post("/admin/archive/rebuild", data={"csrf_token": "x"})
    assert response.status_code == 303 and response.headers["location"].endswith("/admin/login")


def test_a_failing_rebuild_is_reported_and_the_old_site_kept(admin, web_settings, engine):
    web_settings.archive.dir.mkdir()
    (web_settings.archive.dir / "mine.txt").write_text("not a site we built")
    token = csrf(admin, "/admin/dashboard")
    response = admin.post("/admin/archive/rebuild", data={"csrf_token": token})
    assert response.status_code == 500
    assert "Archive not rebuilt" in response.text and "refusing to replace" in response.text
    assert (web_settings.archive.dir / "mine.txt").read_text() == "not a site we built"
    with db.session_factory(engine)() as session:
        entries, _ = audit.recent(session, action="archive-rebuild")
    assert entries[0].detail.startswith("failed:")


def test_the_api_rebuilds_the_archive(client, web_settings, engine):
    response = client.post("/api/archive/rebuild", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pages"] > 0 and body["months"] == []  # nothing sent, nothing public yet
    assert (web_settings.archive.dir / "index.html").is_file()
    assert audit_actions(engine)[0] == ("api", "archive-rebuild", "archive")
    assert client.post("/api/archive/rebuild").status_code == 401
    assert (
        client.post("/api/archive/rebuild", headers={"Authorization": "Bearer no"}).status_code
        == 401
    )


def test_the_api_says_why_a_rebuild_failed(client, web_settings):
    web_settings.archive.dir.mkdir()
    (web_settings.archive.dir / "mine.txt").write_text("x")
    response = client.post("/api/archive/rebuild", headers=AUTH)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "refusing to replace" in response.json()["detail"]


# --- the issue report ----------------------------------------------------------------------


def test_the_report_page(site):
    admin = site.client
    page = admin.get("/admin/issues/2025-01/report")
    assert page.status_code == 200
    text = page.text
    assert "How 2025-01 did" in text
    assert "550 no such user" in text  # the failure, with its reason
    assert "1 hard, 0 soft" in text
    assert "ana@example.net" in text and "gone@example.net" in text
    failed = admin.get("/admin/issues/2025-01/report", params={"status": "failed"})
    assert "gone@example.net" in failed.text and "ana@example.net" not in failed.text
    searched = admin.get("/admin/issues/2025-01/report", params={"q": "ana"})
    assert "1 match" in searched.text


def test_the_report_as_csv(site):
    admin = site.client
    response = admin.get("/admin/issues/2025-01/report.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "recipients-2025-01.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {row["email"] for row in rows} == {
        "ana@example.net",
        "'=cmd@example.net",  # never a formula in a spreadsheet
        "gone@example.net",
        "leaver@example.net",
        "dropper@example.net",
    }
    failed = admin.get("/admin/issues/2025-01/report.csv", params={"status": "failed"})
    assert [row["reason"] for row in csv.DictReader(io.StringIO(failed.text))] == [
        "550 no such user"
    ]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/admin/issues/2025-02/report", 404),  # never sent
        ("/admin/issues/2099-01/report", 404),
        ("/admin/issues/2025-1/report", 404),
        ("/admin/issues/2025-01/report?status=lost", 400),
        ("/admin/issues/2025-01/report?page=x", 400),
        ("/admin/issues/2025-02/report.csv", 404),
        ("/admin/issues/2025-01/report.csv?status=lost", 400),
    ],
)
def test_report_pages_refuse_what_they_cannot_show(site, path, status):
    response = site.client.get(path)
    assert response.status_code == status


def test_report_pages_need_the_session(client):
    for path in (
        "/admin/issues/2025-01/report",
        "/admin/issues/2025-01/report.csv",
        "/admin/dashboard",
    ):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].endswith("/admin/login")


def test_the_report_api(site):
    client = site.client
    response = client.get("/api/issues/2025-01/report", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["audience"], body["sent"], body["failed"], body["skipped"]) == (5, 4, 1, 0)
    assert body["failed_reasons"] == [{"reason": "550 no such user", "count": 1}]
    assert body["bounced_hard"] == 1 and body["recipients_total"] == 5
    page = client.get(
        "/api/issues/2025-01/report", headers=AUTH, params={"status": "sent", "limit": 1}
    ).json()
    assert page["recipients_total"] == 4 and len(page["recipients"]) == 1
    with db.session_factory(site.engine)() as session:
        first = session.scalar(
            select(Delivery.email).where(Delivery.status == "sent").order_by(Delivery.id)
        )
    assert page["recipients"][0]["email"] == first


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/issues/2025-02/report", 404),
        ("/api/issues/nope/report", 404),
        ("/api/issues/2025-01/report?status=lost", 422),
        ("/api/issues/2025-01/report?limit=0", 422),
        ("/api/issues/2025-01/report?limit=501", 422),
    ],
)
def test_the_report_api_refuses(site, path, status):
    client = site.client
    response = client.get(path, headers=AUTH)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get(path).status_code == 401


# --- the dashboard -------------------------------------------------------------------------


def test_the_admin_home_is_the_dashboard(site):
    admin = site.client
    assert admin.get("/admin").headers["location"].endswith("/admin/dashboard")
    page = admin.get("/admin/dashboard")
    assert page.status_code == 200
    text = page.text
    assert text.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"') == 2
    assert "Subscribers by month" in text and "Readers who receive each topic" in text
    assert "Alliance and Therapeutic Relationship: 2 readers" in text  # ana@ and =cmd@
    assert 'href="/admin/issues/2025-01/report"' in text  # the last issue
    assert "Next issue" in text
    assert "under 0.30 %" in text  # the Gmail/Yahoo spam-rate threshold
    assert "style=" not in text  # the CSP forbids inline styles
    assert 'action="/admin/archive/rebuild"' in text


def test_the_dashboard_with_nothing_sent(admin):
    page = admin.get("/admin/dashboard")
    assert page.status_code == 200
    assert "none sent yet" in page.text


# --- unsubscribes and dropped topics, counted through the issue's own links -----------------

DROP = re.compile(re.escape(BASE) + r"(/preferences/[^\s\"]+)\?drop=([a-z-]+)")


def test_the_issue_page_links_to_its_report_and_archive_page(site):
    page = site.client.get("/admin/issues/2025-01").text
    assert 'href="/admin/issues/2025-01/report"' in page
    assert 'href="/archive/2025-01/"' in page
    assert "archive rebuilt" in page  # what the send's rebuild did


def test_unsubscribes_and_dropped_topics_count_for_the_issue_they_came_from(site):
    # Last in the module: it changes two readers of the shared site (theirs alone).
    client, engine, web_settings = site.client, site.engine, site.settings
    by_reader = {m.recipient: m.message for m in site.outbox.outbox}
    unsubscribe = link_to(by_reader["leaver@example.net"], "/u/")
    data = {"List-Unsubscribe": "One-Click"}
    assert client.post(unsubscribe, data=data).status_code == 200
    assert client.post(unsubscribe, data=data).status_code == 200  # twice: counted once
    prefs, topic = DROP.search(text_of(by_reader["dropper@example.net"])).groups()
    done = client.post(
        prefs, data={"csrf_token": csrf(client, prefs), "action": "drop", "topic": topic}
    )
    assert "no longer receive" in done.text
    # A link made outside any digest (or before links named their issue) counts for none.
    with db.transaction(engine) as session:
        other = add_subscriber(session, web_settings, TAXONOMY, "old@example.net")
        old = Signer(web_settings.secret_key()).make(UNSUBSCRIBE, other.id, other.email)
    assert client.post(f"/u/{old}", data=data).status_code == 200
    report = client.get("/api/issues/2025-01/report", headers=AUTH).json()
    assert report["unsubscribed"] == 1
    assert report["topics_dropped"] == [{"topic": topic, "count": 1}]
