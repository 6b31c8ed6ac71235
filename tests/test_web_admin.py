"""Route tests of the admin pages: login, issues, preview, test send, real send, subscribers."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from test_web_support import BASE
from test_web_support import PASSWORD
from test_web_support import TestClient
from test_web_support import csrf
from test_web_support import parse

from newsletter.content.taxonomy import default_taxonomy
from newsletter.passwords import hash_password
from newsletter.passwords import verify_password
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.store.models import ACTIVE
from newsletter.store.models import BOUNCED

pytest_plugins = ["test_web_support"]
TAXONOMY = default_taxonomy()


def add(engine, settings, address: str, **options) -> int:
    with session_factory(engine)() as session:
        subscriber = api.add_subscriber(session, settings, TAXONOMY, address, **options)
        session.commit()
        return subscriber.id


def logged(engine) -> list[tuple[str, str, str, str]]:
    """The audit log, newest first: (actor, action, target, detail)."""
    from newsletter.store import audit

    with session_factory(engine)() as session:
        entries, _ = audit.recent(session)
    return [(e.actor, e.action, e.target, e.detail) for e in entries]


def login(client: TestClient, password: str):
    return client.post(
        "/admin/login",
        data={"password": password, "csrf_token": csrf(client, "/admin/login")},
    )


# --- passwords and login -------------------------------------------------------------------


def test_password_hash_round_trip():
    stored = hash_password("s3cret-enough")
    assert stored.startswith("scrypt$")
    assert verify_password("s3cret-enough", stored)
    assert not verify_password("wrong", stored)
    assert not verify_password("s3cret-enough", "garbage")
    assert not verify_password("x", "scrypt$99999999$8$1$AAAA$AAAA")


def test_admin_pages_need_a_login(client):
    for path in ("/admin", "/admin/issues", "/admin/subscribers", "/admin/issues/2025-01"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == BASE + "/admin/login"
    response = client.post("/admin/issues/2025-01/send", data={})
    assert response.status_code == 303


def test_login_and_logout(client):
    assert login(client, "wrong").status_code == 401
    response = login(client, PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == BASE + "/admin/issues"
    assert client.get("/admin/issues").status_code == 200
    page = client.get("/admin/issues").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/admin/logout", data={"csrf_token": "bad"}).status_code == 403
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/admin/issues").status_code == 303


def test_login_needs_csrf(client):
    client.get("/admin/login")
    response = client.post("/admin/login", data={"password": PASSWORD, "csrf_token": "x"})
    assert response.status_code == 403
    assert client.get("/admin/issues").status_code == 303


def test_lock_out_after_repeated_failures(client, app):
    # A stopped clock: the first wait (1 s) must not pass while the test runs.
    app.state.ctx.clock = lambda: dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    for _ in range(5):
        assert login(client, "wrong").status_code == 401
    locked = login(client, PASSWORD)  # even the right password, for a while
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert client.get("/admin/issues").status_code == 303


def test_login_is_off_without_a_password_hash(client, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_ADMIN_PASSWORD_HASH")
    page = client.get("/admin/login")
    assert "Admin login is off" in page.text
    assert "newsletter admin hash-password" in page.text


def test_hash_password_command(runner):
    from newsletter.cli import main

    result = runner.invoke(
        main, ["admin", "hash-password"], input="long enough pw\nlong enough pw\n"
    )
    assert result.exit_code == 0, result.output
    assert verify_password("long enough pw", result.output.strip().splitlines()[-1])
    short = runner.invoke(main, ["admin", "hash-password", "--password", "short"])
    assert short.exit_code != 0


# --- issues, preview, test send ------------------------------------------------------------


def test_issues_page_lists_the_months(admin):
    page = admin.get("/admin/issues")
    assert page.status_code == 200
    assert "2025-01" in page.text and "2025-02" in page.text
    assert "Fixture issue: alliance and anxiety" in page.text
    assert "not sent" in page.text


def test_issue_page(admin):
    page = admin.get("/admin/issues/2025-01")
    assert page.status_code == 200
    assert "Preview" in page.text and "Test send" in page.text
    assert admin.get("/admin/issues/2031-01").status_code == 404
    assert admin.get("/admin/issues/not-a-month").status_code == 404


def test_preview_for_topics(admin):
    page = admin.get(
        "/admin/issues/2025-01/preview",
        params={"topic_mode": "some", "topics": ["anxiety-disorders"]},
    )
    assert page.status_code == 200
    assert page.text.count("<iframe") == 2
    assert 'sandbox=""' in page.text
    assert "srcdoc=" in page.text
    assert "Gmail clips at 102 KB" in page.text
    assert "CBT" in page.text or "Anxiety" in page.text
    text_part = re.search(r'<pre class="text-part"[^>]*>(.*?)</pre>', page.text, re.S).group(1)
    assert "PRACTICE IMPLICATIONS" in text_part


def test_preview_as_a_subscriber(admin, engine, web_settings):
    add(engine, web_settings, "ana@example.com", name="Ana", topics="empathy;training")
    page = admin.get("/admin/issues/2025-01/preview", params={"subscriber": "ana@example.com"})
    assert "none of these topics" in page.text  # her topics are not in this issue
    add(engine, web_settings, "bo@example.com", name="Bo", topics="therapist-factors")
    page = admin.get("/admin/issues/2025-01/preview", params={"subscriber": "bo@example.com"})
    assert page.status_code == 200
    assert "Dear Bo," in page.text
    assert admin.get(
        "/admin/issues/2025-01/preview", params={"subscriber": "nobody@example.com"}
    ).text.count("No subscriber")


def test_preview_unknown_topic(admin):
    page = admin.get(
        "/admin/issues/2025-01/preview", params={"topic_mode": "some", "topics": ["astrology"]}
    )
    assert "Unknown topic" in page.text


def test_test_send(admin, outbox):
    path = "/admin/issues/2025-01"
    response = admin.post(
        f"{path}/test",
        data={
            "addresses": "a@example.com, b@example.com",
            "topic_mode": "some",
            "topics": ["anxiety-disorders"],
            "csrf_token": csrf(admin, path),
        },
    )
    assert response.status_code == 200
    assert "test sent to a@example.com" in response.text
    assert [m.recipient for m in outbox.outbox] == ["a@example.com", "b@example.com"]
    assert parse(outbox.outbox[0].message)["Subject"].startswith("[TEST] ")
    bad = admin.post(
        f"{path}/test", data={"addresses": "not-an-address", "csrf_token": csrf(admin, path)}
    )
    assert "Test not sent" in bad.text
    forged = admin.post(f"{path}/test", data={"addresses": "c@example.com", "csrf_token": "x"})
    assert forged.status_code == 403
    assert len(outbox.outbox) == 2


def test_a_round_up_is_previewed_and_test_sent_from_the_admin(admin, outbox):
    found = admin.get("/admin/round-up", params={"quarter": "2025-q1"}, follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"].endswith("/admin/issues/2025-Q1")
    page = admin.get("/admin/issues/2025-Q1")
    assert page.status_code == 200 and "Round-up 2025-Q1" in page.text
    assert "2025-01, 2025-02" in page.text and "(2025-01/" in page.text
    preview = admin.get("/admin/issues/2025-Q1/preview")
    assert preview.status_code == 200
    sent = admin.post(
        "/admin/issues/2025-Q1/test",
        data={
            "addresses": "editor@example.com",
            "csrf_token": csrf(admin, "/admin/issues/2025-Q1"),
        },
    )
    assert sent.status_code == 200 and "test sent to editor@example.com" in sent.text
    [message] = outbox.outbox
    assert parse(message.message)["Subject"].startswith("[TEST] ")
    body = message.message.decode("utf-8", "replace").replace("=\r\n", "")
    assert "Progress Feedback Helps" in body and "CBT Outperforms Placebo" in body  # both months
    for missing in ("2019-Q1", "2025-Q5", "2025-13"):
        assert admin.get(f"/admin/issues/{missing}").status_code == 404, missing
    assert admin.get("/admin/round-up", params={"quarter": "Q1"}).status_code == 404


def test_real_send_confirms_then_runs_in_the_background(admin, app, engine, web_settings, outbox):
    add(engine, web_settings, "ana@example.com", topics="anxiety-disorders")
    add(engine, web_settings, "bo@example.com")
    add(engine, web_settings, "cy@example.com", topics="empathy")
    page = admin.get("/admin/issues/2025-01/send")
    assert page.status_code == 200
    facts = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    assert "Audience 3 subscribers" in facts
    assert "Variants 2" in facts
    assert "Messages to send 2" in facts
    assert outbox.outbox == []  # the confirmation page sends nothing
    forged = admin.post("/admin/issues/2025-01/send", data={"csrf_token": "x"})
    assert forged.status_code == 403
    response = admin.post(
        "/admin/issues/2025-01/send",
        data={"csrf_token": csrf(admin, "/admin/issues/2025-01/send"), "lists": ["digest"]},
    )
    assert response.status_code == 303
    app.state.ctx.sending.wait("2025-01", timeout=30)
    assert sorted(m.recipient for m in outbox.outbox) == ["ana@example.com", "bo@example.com"]
    page = admin.get("/admin/issues/2025-01")
    assert "2 sent" in page.text and "1 skipped" in page.text
    assert "done" in page.text
    # Newest first: the archive rebuilt after the send completed, the completion, the start.
    events = logged(engine)
    assert [event[:3] for event in events] == [
        ("admin", "archive-rebuild", "archive"),
        ("admin", "send", "2025-01"),
        ("admin", "send", "2025-01"),
    ]
    assert events[1][3].startswith("completed: 2 sent, 0 failed")
    assert events[2][3] == "lists: digest"


def test_send_refuses_a_second_run_while_one_runs(app, web_settings):
    import threading

    from newsletter.errors import SendError

    sending = app.state.ctx.sending
    issue = sending.load("2025-01")
    gate = threading.Event()
    original = sending._run
    sending._run = lambda *args: (gate.wait(10), original(*args))
    sending.start(issue)
    with pytest.raises(SendError, match="already being sent"):
        sending.start(issue)
    gate.set()
    sending.wait("2025-01", timeout=30)


# --- subscribers ---------------------------------------------------------------------------


def test_subscribers_page_search_and_filters(admin, engine, web_settings):
    add(engine, web_settings, "ana@example.com", name="Ana", topics="empathy")
    add(engine, web_settings, "bo@example.com", topics="training", status="pending")
    page = admin.get("/admin/subscribers")
    assert "ana@example.com" in page.text and "bo@example.com" in page.text
    assert "bo@" not in admin.get("/admin/subscribers", params={"q": "ana"}).text
    pending = admin.get("/admin/subscribers", params={"status": "pending"}).text
    assert "bo@example.com" in pending and "ana@example.com" not in pending
    empathy = admin.get("/admin/subscribers", params={"topic": "empathy"}).text
    assert "ana@example.com" in empathy and "bo@example.com" not in empathy
    assert "ana@example.com" in admin.get("/admin/subscribers", params={"list": "digest"}).text
    odd = admin.get("/admin/subscribers", params={"status": "weird", "topic": "x", "page": "z"})
    assert odd.status_code == 200 and "unknown status" in odd.text


def test_add_subscriber_change_status_and_see_deliveries(admin, engine, web_settings):
    response = admin.post(
        "/admin/subscribers",
        data={
            "email": "new@example.com",
            "name": "New",
            "status": "active",
            "topic_mode": "some",
            "topics": ["empathy"],
            "csrf_token": csrf(admin, "/admin/subscribers"),
        },
    )
    assert response.status_code == 303
    detail = response.headers["location"].removeprefix(BASE)
    page = admin.get(detail)
    assert "new@example.com" in page.text and "Empathy" in page.text
    assert "Nothing sent to this subscriber yet" in page.text
    changed = admin.post(
        f"{detail}/status", data={"status": BOUNCED, "csrf_token": csrf(admin, detail)}
    )
    assert "Status changed to bounced" in changed.text
    with session_factory(engine)() as session:
        assert api.get_subscriber(session, "new@example.com").status == BOUNCED
    again = admin.post(
        "/admin/subscribers",
        data={"email": "new@example.com", "csrf_token": csrf(admin, "/admin/subscribers")},
    )
    assert again.status_code == 400 and "already subscribed" in again.text
    assert admin.get("/admin/subscribers/99999").status_code == 404


def test_import_csv_with_the_cli_report(admin, engine):
    good = "email,name,topics\nx@example.com,X,empathy\ny@example.com,Y,*\n"
    response = admin.post(
        "/admin/import",
        data={"csrf_token": csrf(admin, "/admin/import")},
        files={"file": ("people.csv", good.encode(), "text/csv")},
    )
    assert response.status_code == 200
    assert "added 2, updated 0, skipped 0 existing, rejected 0" in response.text
    bad = "email,topics\nz@example.com,astrology\nw@example.com,*\n"
    refused = admin.post(
        "/admin/import",
        data={"csrf_token": csrf(admin, "/admin/import")},
        files={"file": ("bad.csv", bad.encode(), "text/csv")},
    )
    assert refused.status_code == 400
    assert "1 of 2 rows rejected" in refused.text and "astrology" in refused.text
    with session_factory(engine)() as session:
        assert api.get_subscriber(session, "w@example.com") is None
    skipped = admin.post(
        "/admin/import",
        data={"csrf_token": csrf(admin, "/admin/import"), "skip_invalid": "1"},
        files={"file": ("bad.csv", bad.encode(), "text/csv")},
    )
    assert "added 1, updated 0, skipped 0 existing, rejected 1" in skipped.text
    with session_factory(engine)() as session:
        assert api.get_subscriber(session, "w@example.com").status == ACTIVE
    latin1 = admin.post(
        "/admin/import",
        data={"csrf_token": csrf(admin, "/admin/import")},
        files={"file": ("l.csv", "email,name\nv@example.com,Zoë\n".encode("latin-1"), "text/csv")},
    )
    assert latin1.status_code == 400 and "not UTF-8" in latin1.text
    assert admin.post("/admin/import", data={"csrf_token": "x"}).status_code == 403
    # The imports that happened are logged; the refused ones are not.
    assert logged(engine) == [
        ("admin", "import", "bad.csv", "1 added, 0 updated, 1 rejected"),
        ("admin", "import", "people.csv", "2 added, 0 updated, 0 rejected"),
    ]


# --- schedule ------------------------------------------------------------------------------


def test_schedule_page_queues_and_removes_one_off_sends(admin, web_settings, tmp_path, engine):
    web_settings._config_path = tmp_path / "config.toml"  # jobs name the config file
    web_settings.schedule.timezone = "America/Toronto"
    page = admin.get("/admin/schedule")
    assert page.status_code == 200
    assert "1st tue" in page.text.lower() or "first tuesday" in page.text.lower()
    assert page.text.count(" — sends ") == 3  # the next three monthly runs
    assert "None queued." in page.text
    token = csrf(admin, "/admin/schedule")
    refused = admin.post("/admin/schedule/add", data={"month": "2025-01", "at": "2099-01-05T09:30"})
    assert refused.status_code == 403
    added = admin.post(
        "/admin/schedule/add",
        data={"month": "2025-01", "at": "2099-01-05T09:30", "csrf_token": token},
    )
    assert added.status_code == 303
    page = admin.get("/admin/schedule").text
    assert "send-2025-01" in page and "2099-01-05 09:30 EST" in page
    past = admin.post(
        "/admin/schedule/add",
        data={"month": "2025-02", "at": "2001-01-01T09:00", "csrf_token": token},
    )
    assert past.status_code == 400 and "past" in past.text
    removed = admin.post(
        "/admin/schedule/remove", data={"job_id": "send-2025-01", "csrf_token": token}
    )
    assert removed.status_code == 303
    assert "None queued." in admin.get("/admin/schedule").text
    unknown = admin.post("/admin/schedule/remove", data={"job_id": "nope", "csrf_token": token})
    assert unknown.status_code == 400 and "no queued send" in unknown.text
    # Only what was done is logged: not the refused, past or unknown ones.
    assert [event[1:3] for event in logged(engine)] == [
        ("unschedule", "send-2025-01"),
        ("schedule", "2025-01"),
    ]


def test_schedule_page_queues_a_quarters_round_up(admin, web_settings, tmp_path, engine):
    web_settings._config_path = tmp_path / "config.toml"
    web_settings.schedule.timezone = "America/Toronto"
    page = admin.get("/admin/schedule").text
    assert '<optgroup label="Quarterly round-ups">' in page
    assert '<option value="2025-Q1">2025-Q1 (round-up of January–March 2025)</option>' in page
    token = csrf(admin, "/admin/schedule")
    added = admin.post(
        "/admin/schedule/add",
        data={"month": "2025-Q1", "at": "2099-04-07T09:00", "csrf_token": token},
    )
    assert added.status_code == 303
    page = admin.get("/admin/schedule").text
    assert "send-2025-Q1" in page and "2099-04-07 09:00 EDT" in page
    assert "2025-Q1 (round-up of January–March 2025)</td>" in page
    none = admin.post(
        "/admin/schedule/add",
        data={"month": "2025-Q2", "at": "2099-04-07T09:00", "csrf_token": token},
    )
    assert none.status_code == 400 and "2025-Q2 cannot be sent" in none.text
    assert [event[1:3] for event in logged(engine)] == [("schedule", "2025-Q1")]


def test_schedule_page_needs_a_login(client):
    assert client.get("/admin/schedule").status_code == 303


def test_shutting_the_app_down_drains_a_running_send(web_settings, engine):
    import threading

    from sqlalchemy import select

    from newsletter.store.models import Delivery
    from newsletter.transport.memory import MemoryTransport
    from newsletter.web import create_app

    for n in range(40):
        add(engine, web_settings, f"reader{n}@example.com")
    first_sent = threading.Event()

    def slow(_recipient: str):
        first_sent.set()
        threading.Event().wait(0.05)  # a slow relay: the send is still running at shutdown
        return None

    transport = MemoryTransport(fail=slow)
    app = create_app(web_settings, transport_factory=lambda: transport, engine=engine)
    with TestClient(app, base_url="https://testserver"):
        sending = app.state.ctx.sending
        sending.start(sending.load("2025-01"))
        assert first_sent.wait(30)
    # Leaving the client ran the app's shutdown: the send stopped cleanly, and nothing is
    # left claimed; what was not sent is still queued for the next run.
    state = sending.state("2025-01")
    assert state.finished and not state.thread.is_alive()
    with session_factory(engine)() as session:
        statuses = list(session.scalars(select(Delivery.status)))
    assert "sending" not in statuses
    assert statuses.count("sent") == len(transport.outbox) < 40
    assert statuses.count("queued") == 40 - len(transport.outbox)
