"""Route tests of the admin's subscriber tools: edit, resend the confirmation, forget, CSV
export, sorting, paging and the total, bulk changes with their confirm step, dates in the zone."""

from __future__ import annotations

import csv
import io
import re

import pytest
from test_web_support import BASE
from test_web_support import csrf
from test_web_support import link_to
from test_web_support import parse

from newsletter.content.taxonomy import default_taxonomy
from newsletter.store import audit
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.store.models import ACTIVE
from newsletter.store.models import BOUNCED
from newsletter.store.models import PENDING
from newsletter.store.models import UNSUBSCRIBED
from newsletter.web.admin_subscribers import PAGE_SIZE

pytest_plugins = ["test_web_support"]
TAXONOMY = default_taxonomy()


def add(engine, settings, address: str, **options) -> int:
    with session_factory(engine)() as session:
        subscriber = api.add_subscriber(session, settings, TAXONOMY, address, **options)
        session.commit()
        return subscriber.id


def events(engine) -> list[tuple[str, str, str, str]]:
    with session_factory(engine)() as session:
        entries, _ = audit.recent(session)
    return [(e.actor, e.action, e.target, e.detail) for e in entries]


def record(engine, subscriber_id: int):
    with session_factory(engine)() as session:
        subscriber = session.get(api.Subscriber, subscriber_id)
        if subscriber is None:
            return None
        return subscriber.name, subscriber.topic_slugs, api.subscribed_lists(subscriber)


@pytest.fixture
def two_lists(web_settings):
    from newsletter.config import ListSpec

    web_settings.lists = [
        ListSpec(slug="digest", name="Monthly digest"),
        ListSpec(slug="events", name="Events"),
    ]
    return web_settings


# --- one subscriber ------------------------------------------------------------------------


def test_edit_name_topics_and_lists(admin, engine, two_lists) -> None:
    sid = add(engine, two_lists, "ana@example.com", name="Ana")
    page = f"/admin/subscribers/{sid}"
    form = admin.get(page).text
    assert f'action="/admin/subscribers/{sid}/address"' in form
    saved = admin.post(
        page,
        data={
            "name": "Ana Lima",
            "topic_mode": "some",
            "topics": ["empathy", "Attachment"],
            "lists": ["digest", "events"],
            "csrf_token": csrf(admin, page),
        },
    )
    assert saved.status_code == 200 and "Saved: name, topics, lists." in saved.text
    assert record(engine, sid) == (
        "Ana Lima",
        frozenset({"empathy", "attachment"}),
        ["digest", "events"],
    )
    assert events(engine) == [
        ("admin", "edit-subscriber", f"subscriber {sid}", "changed name, topics, lists")
    ]
    same = admin.post(
        page,
        data={
            "name": "Ana Lima",
            "topic_mode": "some",
            "topics": ["empathy", "attachment"],
            "lists": ["events", "digest"],
            "csrf_token": csrf(admin, page),
        },
    )
    assert "Nothing to change." in same.text and len(events(engine)) == 1


BAD_EDITS = [
    ({"topic_mode": "some", "topics": ["no-such-topic"]}, "Unknown topic"),
    ({"topic_mode": "some"}, "Choose at least one topic"),
    ({"lists": ["nope"]}, "unknown list &#39;nope&#39;"),
    ({"name": "x" * 300}, "Not saved"),
]


def test_a_bad_edit_changes_nothing(admin, engine, web_settings) -> None:
    sid = add(engine, web_settings, "ana@example.com", name="Ana")
    before = record(engine, sid)
    page = f"/admin/subscribers/{sid}"
    for fields, message in BAD_EDITS:  # one app for all cases: each is one request
        response = admin.post(page, data={"name": "Ana", **fields, "csrf_token": csrf(admin, page)})
        assert response.status_code == 400 and message in response.text, fields
    assert record(engine, sid) == before and events(engine) == []


def test_edit_cannot_put_someone_who_left_on_a_list(admin, engine, web_settings) -> None:
    sid = add(engine, web_settings, "ana@example.com", status=UNSUBSCRIBED)
    page = f"/admin/subscribers/{sid}"
    refused = admin.post(
        page, data={"name": "Ana", "lists": ["digest"], "csrf_token": csrf(admin, page)}
    )
    assert refused.status_code == 400 and "cannot put them on a list" in refused.text


def test_edit_needs_csrf_and_a_subscriber(admin, engine, web_settings) -> None:
    sid = add(engine, web_settings, "ana@example.com")
    assert admin.post(f"/admin/subscribers/{sid}", data={"name": "X"}).status_code == 403
    token = csrf(admin, f"/admin/subscribers/{sid}")
    missing = admin.post("/admin/subscribers/99999", data={"name": "X", "csrf_token": token})
    assert missing.status_code == 404
    huge = admin.post(f"/admin/subscribers/{2**70}", data={"csrf_token": token})
    assert huge.status_code == 404


def test_resend_the_confirmation_to_a_pending_subscriber(admin, engine, web_settings, outbox):
    pending = add(engine, web_settings, "pat@example.com", status=PENDING)
    active = add(engine, web_settings, "act@example.com")
    page = f"/admin/subscribers/{pending}"
    assert "Resend the confirmation link" in admin.get(page).text
    assert "Resend the confirmation link" not in admin.get(f"/admin/subscribers/{active}").text
    sent = admin.post(f"{page}/resend", data={"csrf_token": csrf(admin, page)})
    assert sent.status_code == 200 and "A new confirmation link was emailed." in sent.text
    (message,) = outbox.outbox
    assert message.recipient == "pat@example.com"
    assert "/confirm/" in parse(message.message).get_body(("plain",)).get_content()
    refused = admin.post(
        f"/admin/subscribers/{active}/resend",
        data={"csrf_token": csrf(admin, f"/admin/subscribers/{active}")},
    )
    assert refused.status_code == 409 and "not pending" in refused.text
    assert len(outbox.outbox) == 1
    assert [e[1] for e in events(engine)] == ["resend-confirmation"]


def test_an_admin_added_pending_subscriber_gets_a_confirmation(admin, engine, outbox) -> None:
    added = admin.post(
        "/admin/subscribers",
        data={
            "email": "pat@example.com",
            "status": "pending",
            "csrf_token": csrf(admin, "/admin/subscribers"),
        },
    )
    assert added.status_code == 303
    location = added.headers["location"].removeprefix(BASE)
    assert location.endswith("?done=added-mailed")
    assert "a confirmation link was emailed" in admin.get(location).text
    (message,) = outbox.outbox
    assert parse(message.message)["To"] == "pat@example.com"
    assert [e[1] for e in events(engine)] == ["add-subscriber"]


def test_forget_a_subscriber(admin, engine, web_settings) -> None:
    sid = add(engine, web_settings, "ana@example.com")
    page = f"/admin/subscribers/{sid}"
    unsure = admin.post(f"{page}/forget", data={"csrf_token": csrf(admin, page)})
    assert unsure.status_code == 400 and record(engine, sid) is not None
    done = admin.post(f"{page}/forget", data={"sure": "yes", "csrf_token": csrf(admin, page)})
    assert done.status_code == 303
    assert done.headers["location"] == BASE + "/admin/subscribers?done=forgot"
    assert record(engine, sid) is None
    with session_factory(engine)() as session:
        assert api.is_suppressed(session, "ana@example.com")
    assert events(engine) == [("admin", "forget", f"subscriber {sid}", "")]
    assert "ana@example.com" not in str(events(engine))
    assert "only a hash of the address is kept" in admin.get("/admin/subscribers?done=forgot").text
    # A crafted notice puts no words on the page.
    assert "pwned" not in admin.get("/admin/subscribers?done=pwned").text


def test_status_change_is_logged(admin, engine, web_settings) -> None:
    sid = add(engine, web_settings, "ana@example.com")
    page = f"/admin/subscribers/{sid}"
    admin.post(f"{page}/status", data={"status": BOUNCED, "csrf_token": csrf(admin, page)})
    assert events(engine) == [
        ("admin", "edit-subscriber", f"subscriber {sid}", "status active → bounced")
    ]


def test_dates_are_shown_in_the_configured_zone(admin, engine, web_settings) -> None:
    import datetime as dt

    web_settings.schedule.timezone = "America/Toronto"
    sid = add(engine, web_settings, "ana@example.com")
    with session_factory(engine)() as session:
        subscriber = session.get(api.Subscriber, sid)
        subscriber.created_at = dt.datetime(2026, 1, 3, 4, 30, tzinfo=dt.UTC)
        session.commit()
    page = admin.get(f"/admin/subscribers/{sid}").text
    assert "2 Jan 2026, 23:30 EST" in page and "Times in America/Toronto" in page
    listing = admin.get("/admin/subscribers").text
    assert '<time datetime="2026-01-03T04:30:00+00:00">2 Jan 2026</time>' in listing


# --- the list: total, paging, sorting, export ------------------------------------------------


def test_total_paging_and_sorting(admin, engine, web_settings) -> None:
    with session_factory(engine)() as session:
        for number in range(PAGE_SIZE + 5):
            api.add_subscriber(
                session,
                web_settings,
                TAXONOMY,
                f"p{number:03d}@example.com",
                name=f"N{99 - number}",
            )
        session.commit()
    first = admin.get("/admin/subscribers").text
    assert f"{PAGE_SIZE + 5} subscribers, showing 1–{PAGE_SIZE}" in first
    assert "Page 1 of 2" in first and "p000@example.com" in first and "p054@" not in first
    second = admin.get("/admin/subscribers?page=2").text
    assert f"showing {PAGE_SIZE + 1}–{PAGE_SIZE + 5}" in second and "p054@example.com" in second
    by_email = admin.get("/admin/subscribers?sort=email&order=desc").text
    assert by_email.index("p054@") < by_email.index("p053@")
    by_name = admin.get("/admin/subscribers?sort=name&q=p05").text
    assert by_name.index("p054@") < by_name.index("p050@")  # N45 before N49
    assert "5 subscribers" in by_name  # p050-p054
    bad = admin.get("/admin/subscribers?sort=password")
    assert "unknown sort &#39;password&#39;" in bad.text


def test_export_the_filtered_list(admin, engine, web_settings) -> None:
    add(engine, web_settings, "ana@example.com", name="Ana")
    add(engine, web_settings, "ben@example.com", status=BOUNCED)
    add(engine, web_settings, "cat@example.com", status=PENDING)
    response = admin.get("/admin/subscribers/export.csv?status=active&sort=email")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["email"] for row in rows] == ["ana@example.com"]
    everyone = admin.get("/admin/subscribers/export.csv?sort=email&order=desc")
    assert [r["email"] for r in csv.DictReader(io.StringIO(everyone.text))] == [
        "cat@example.com",
        "ben@example.com",
        "ana@example.com",
    ]
    bad = admin.get("/admin/subscribers/export.csv?status=royal")
    assert bad.status_code == 400 and "unknown status &#39;royal&#39;" in bad.text
    assert [(e[1], e[3]) for e in events(engine)] == [
        ("export", "3 of everyone"),
        ("export", "1 of status 'active'"),
    ]
    admin.cookies.clear()
    assert admin.get("/admin/subscribers/export.csv").status_code == 303


# --- bulk changes ----------------------------------------------------------------------------


def _bulk(admin, **fields):
    return admin.post(
        "/admin/subscribers/bulk", data={**fields, "csrf_token": csrf(admin, "/admin/subscribers")}
    )


def test_bulk_status_change_confirms_the_count_first(admin, engine, web_settings) -> None:
    for address in ("a1@example.com", "a2@example.com", "b1@other.org"):
        add(engine, web_settings, address)
    review = _bulk(admin, q="example.com", action="status", value=UNSUBSCRIBED)
    assert review.status_code == 200 and "Change 2 subscribers?" in review.text
    assert 'name="confirm" value="2"' in review.text
    with session_factory(engine)() as session:
        assert api.count_subscribers(session, UNSUBSCRIBED) == 0  # nothing yet
    done = _bulk(admin, q="example.com", action="status", value=UNSUBSCRIBED, confirm="2")
    assert done.status_code == 303
    location = done.headers["location"].removeprefix(BASE)
    assert "Changed 2 subscriber(s)." in admin.get(location).text
    with session_factory(engine)() as session:
        assert api.count_subscribers(session, UNSUBSCRIBED) == 2
        assert api.count_subscribers(session, ACTIVE) == 1
    (event,) = events(engine)
    assert event[:3] == ("admin", "bulk-edit", "subscribers")
    assert "search 'example.com'" in event[3] and "2 changed" in event[3]


def test_bulk_change_refuses_when_the_selection_changed(admin, engine, web_settings) -> None:
    add(engine, web_settings, "a1@example.com")
    add(engine, web_settings, "a2@example.com")
    add(engine, web_settings, "a3@example.com")  # arrived after the review said 2
    again = _bulk(admin, action="status", value=BOUNCED, confirm="2")
    assert again.status_code == 409 and "has changed since you reviewed it" in again.text
    assert 'name="confirm" value="3"' in again.text
    with session_factory(engine)() as session:
        assert api.count_subscribers(session, BOUNCED) == 0
    assert events(engine) == []


def test_bulk_list_changes(admin, engine, two_lists) -> None:
    joined = add(engine, two_lists, "a1@example.com")
    left = add(engine, two_lists, "a2@example.com", status=UNSUBSCRIBED, lists=[])
    review = _bulk(admin, action="add-list", value="events")
    assert "Change 2 subscribers?" in review.text and "are not put on a list" in review.text
    done = _bulk(admin, action="add-list", value="events", confirm="2")
    location = done.headers["location"].removeprefix(BASE)
    assert "Changed 1 subscriber(s); 1 already so, or not possible." in admin.get(location).text
    assert record(engine, joined)[2] == ["digest", "events"]
    assert record(engine, left)[2] == []
    _bulk(admin, action="remove-list", value="digest", list="digest", confirm="1")
    assert record(engine, joined)[2] == ["events"]


BAD_BULK = [
    ({"action": "delete", "value": "x"}, "choose what to change"),
    ({"action": "status", "value": "royal"}, "unknown status &#39;royal&#39;"),
    ({"action": "add-list", "value": "nope"}, "unknown list &#39;nope&#39;"),
    ({"action": "status", "value": "active", "topic": "nope"}, "unknown topic"),
]


def test_bad_bulk_requests_change_nothing(admin, engine, web_settings) -> None:
    add(engine, web_settings, "a1@example.com")
    for fields, message in BAD_BULK:
        response = _bulk(admin, **fields, confirm="1")
        assert response.status_code == 400 and message in response.text, fields
    assert events(engine) == []


def test_bulk_needs_csrf(admin, engine, web_settings) -> None:
    add(engine, web_settings, "a1@example.com")
    refused = admin.post(
        "/admin/subscribers/bulk", data={"action": "status", "value": BOUNCED, "confirm": "1"}
    )
    assert refused.status_code == 403
    with session_factory(engine)() as session:
        assert api.count_subscribers(session, BOUNCED) == 0


def test_every_new_route_needs_the_admin(client) -> None:
    for method, path in (
        ("get", "/admin/audit"),
        ("get", "/admin/subscribers/export.csv"),
        ("post", "/admin/subscribers/bulk"),
        ("post", "/admin/subscribers/1"),
        ("post", "/admin/subscribers/1/resend"),
        ("post", "/admin/subscribers/1/forget"),
    ):
        response = getattr(client, method)(path)
        assert response.status_code == 303, path
        assert re.search(r"/admin/login$", response.headers["location"])


def test_an_admin_changes_an_address_only_through_a_link_to_the_new_one(
    admin, client, engine, web_settings, outbox
) -> None:
    sid = add(engine, web_settings, "ana@example.com", name="Ana")
    add(engine, web_settings, "ben@example.com")
    page = f"/admin/subscribers/{sid}/address"
    token = csrf(admin, f"/admin/subscribers/{sid}")
    bad = admin.post(page, data={"new_email": "not an address", "csrf_token": token})
    assert bad.status_code == 400 and "New address:" in bad.text
    taken = admin.post(page, data={"new_email": "Ben@example.com", "csrf_token": token})
    assert taken.status_code == 409 and "Nothing sent" in taken.text
    assert outbox.outbox == [] and events(engine) == []  # nothing sent, nothing logged
    asked = admin.post(page, data={"new_email": "Ana.Work@Example.org", "csrf_token": token})
    assert asked.status_code == 200 and "emailed to Ana.Work@example.org" in asked.text
    assert record(engine, sid)[0] == "Ana"
    [sent] = outbox.outbox
    assert sent.recipient == "Ana.Work@example.org"
    with session_factory(engine)() as session:
        assert api.get_subscriber(session, "ana@example.com") is not None  # not yet changed
    path = link_to(sent.message, "/address/")
    assert client.post(path).status_code == 200
    with session_factory(engine)() as session:
        assert api.get_subscriber(session, "ana@example.com") is None
        assert api.get_subscriber(session, "ana.work@example.org").id == sid
    assert ("admin", "edit-subscriber", f"subscriber {sid}") in [e[:3] for e in events(engine)]
