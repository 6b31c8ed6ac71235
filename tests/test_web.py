"""Route tests of the public web app: subscribe, confirm, preferences, one-click unsubscribe."""

from __future__ import annotations

import json
import re
import time

import itsdangerous.timed
import pytest
from sqlalchemy import func
from sqlalchemy import select
from test_web_support import BASE
from test_web_support import TestClient
from test_web_support import csrf
from test_web_support import link_to
from test_web_support import parse
from test_web_support import subscribe
from test_web_support import text_of

from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.sending.campaign import send_month
from newsletter.store import subscribers as api
from newsletter.store.bounces import record_bounce
from newsletter.store.engine import session_factory
from newsletter.store.models import ACTIVE
from newsletter.store.models import PENDING
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import Bounce
from newsletter.store.models import Delivery
from newsletter.store.models import Subscriber
from newsletter.tokens import CONFIRM
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer
from newsletter.transport.memory import MemoryTransport
from newsletter.web import create_app

pytest_plugins = ["test_web_support"]
TAXONOMY = default_taxonomy()


def load(engine, address: str) -> Subscriber | None:
    with session_factory(engine)() as session:
        return api.get_subscriber(session, address)


def add(engine, settings, address: str, status: str = ACTIVE, topics=None, lists=None) -> int:
    with session_factory(engine)() as session:
        subscriber = api.add_subscriber(
            session, settings, TAXONOMY, address, topics=topics, lists=lists, status=status
        )
        session.commit()
        return subscriber.id


def token(settings, purpose: str, subscriber_id: int, address: str) -> str:
    return Signer(settings.secret_key()).make(purpose, subscriber_id, address)


def old_token(monkeypatch, settings, purpose, subscriber_id, address, age: float) -> str:
    """A token signed `age` seconds ago."""
    with monkeypatch.context() as patch:
        patch.setattr(
            itsdangerous.timed.TimestampSigner,
            "get_timestamp",
            lambda self: int(time.time() - age),
        )
        return token(settings, purpose, subscriber_id, address)


def confirm_via_email(client: TestClient, message: bytes):
    path = link_to(message, "/confirm/")
    page = client.get(path)
    assert page.status_code == 200
    assert "Yes, subscribe me" in page.text
    return client.post(path)


# --- subscribe -----------------------------------------------------------------------------


def test_subscribe_page_offers_every_topic_grouped_with_all_preselected(client):
    page = client.get("/subscribe")
    assert page.status_code == 200
    html = page.text
    for term in TAXONOMY.topics:
        assert f'value="{term.slug}"' in html
    assert re.search(r'name="topic_mode" value="all" checked', html)
    assert "Conditions" in html and "Treatments" in html
    assert 'name="csrf_token"' in html
    assert "Subscribe to Test Digest" in client.get("/").text


def test_choices_from_the_archive_form_arrive_filled_in(client):
    query = "email=ana%40example.org&name=Ana&topic_mode=some&topics=empathy&topics=nonsense"
    html = client.get(f"/subscribe?{query}").text
    assert 'value="ana@example.org"' in html and 'value="Ana"' in html
    assert re.search(r'name="topic_mode" value="some" checked', html)
    assert re.search(r'value="empathy"[^>]*checked', html)
    assert "nonsense" not in html  # unknown topics are dropped, not echoed


def test_subscribe_creates_a_pending_subscriber_and_sends_a_confirmation(client, engine, outbox):
    response = subscribe(
        client,
        "Ana@Example.com",
        name="Ana",
        topic_mode="some",
        topics=["empathy", "anxiety-disorders"],
    )
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    subscriber = load(engine, "ana@example.com")
    assert subscriber.status == PENDING
    assert subscriber.topic_slugs == {"empathy", "anxiety-disorders"}
    assert subscriber.consent_source == "web"
    assert subscriber.consent_ip == "testclient"
    assert api.subscribed_lists(subscriber) == ["digest"]
    [sent] = outbox.outbox
    message = parse(sent.message)
    assert sent.recipient == "Ana@example.com"
    assert message["Subject"] == "Please confirm your subscription to Test Digest"
    assert message["List-Unsubscribe"] is None
    assert message["Auto-Submitted"] == "auto-generated"
    assert "Anxiety Disorders, Empathy" in text_of(sent.message)
    html = message.get_body(("html",)).get_content()
    assert "Confirm my subscription" in html and "#102a43" in html
    assert link_to(sent.message, "/confirm/") in html


def test_all_topics_is_the_default(client, engine):
    subscribe(client, "bo@example.com", topic_mode="all", topics=["empathy"])
    assert load(engine, "bo@example.com").all_topics


def test_confirm_needs_a_press_of_the_button_then_activates_once(client, engine, outbox):
    subscribe(client, "ana@example.com")
    path = link_to(outbox.outbox[0].message, "/confirm/")
    assert client.get(path).status_code == 200
    assert load(engine, "ana@example.com").status == PENDING  # link scanners GET; nothing happens
    done = client.post(path)
    assert done.status_code == 200
    assert "You are subscribed" in done.text
    subscriber = load(engine, "ana@example.com")
    assert subscriber.status == ACTIVE
    assert subscriber.confirmed_at is not None
    assert subscriber.consent_ip == "testclient"
    again = client.post(path)
    assert again.status_code == 200 and "Already confirmed" in again.text
    assert "Already confirmed" in client.get(path).text


def test_confirm_works_without_cookies(app, engine, outbox):
    with TestClient(app, base_url="https://testserver") as first:
        subscribe(first, "ana@example.com")
    path = link_to(outbox.outbox[0].message, "/confirm/")
    with TestClient(app, base_url="https://testserver") as other_browser:
        assert other_browser.post(path).status_code == 200
    assert load(engine, "ana@example.com").status == ACTIVE


def test_welcome_sends_the_latest_sent_issue_cut_to_the_topics(
    client, engine, web_settings, outbox
):
    add(engine, web_settings, "old@example.com")
    issue = load_issue(web_settings.content.dir, "2025-02", TAXONOMY, "Test Digest")
    send_month(engine, web_settings, issue, MemoryTransport())
    subscribe(client, "ana@example.com", topic_mode="some", topics=["client-factors"])
    confirm_via_email(client, outbox.outbox[0].message)
    welcome = outbox.outbox[-1]
    message = parse(welcome.message)
    assert message["Subject"].startswith("Welcome to Test Digest: ")
    text = text_of(welcome.message)
    assert "Dropout Is Common" in text
    assert "Progress Feedback" not in text  # not one of her topics
    assert message["List-Unsubscribe"]  # a real issue: unsubscribe header as always
    assert load(engine, "ana@example.com").status == ACTIVE


def test_welcome_opens_with_its_own_greeting_not_the_digests_intro(
    client, engine, web_settings, outbox
):
    """The digest's intro was written for that month's readers ("This month ..."): the welcome
    says welcome, names the issue and links to the archive instead."""
    add(engine, web_settings, "old@example.com")
    issue = load_issue(web_settings.content.dir, "2025-01", TAXONOMY, "Test Digest")
    send_month(engine, web_settings, issue, MemoryTransport())
    subscribe(client, "ana@example.com", topic_mode="some", topics=["anxiety-disorders"])
    confirm_via_email(client, outbox.outbox[0].message)
    message = parse(outbox.outbox[-1].message)
    text = " ".join(message.get_body(("plain",)).get_content().split())
    html = message.get_body(("html",)).get_content()
    archive = web_settings.archive_url()
    assert "Welcome to Test Digest: your subscription is confirmed." in text
    assert "latest issue, January 2025, with the summaries on your topics" in text
    assert f"the archive <{archive}>" in text
    assert f'href="{archive}"' in html
    assert "A small test issue" not in text and "A small test issue" not in html
    assert "CBT Outperforms Placebo" in text  # the issue itself, cut to her topic
    assert "Alliance Predicts Recovery" not in text


def test_welcome_without_a_sent_issue_is_a_short_note(client, outbox):
    subscribe(client, "ana@example.com")
    confirm_via_email(client, outbox.outbox[0].message)
    welcome = outbox.outbox[-1]
    assert parse(welcome.message)["Subject"] == "Welcome to Test Digest"
    assert link_to(welcome.message, "/preferences/")


def test_welcome_can_be_switched_off(client, web_settings, outbox):
    web_settings.web.welcome_latest = False
    subscribe(client, "ana@example.com")
    confirm_via_email(client, outbox.outbox[0].message)
    assert len(outbox.outbox) == 1


def _normalized(page: str) -> str:
    page = re.sub(r'name="csrf_token" value="[^"]+"', "", page)
    return re.sub(r"[\w.+-]+@example\.com", "ADDRESS", page)


def test_same_answer_for_known_and_unknown_addresses(client, engine, web_settings, outbox):
    add(engine, web_settings, "active@example.com")
    add(engine, web_settings, "pending@example.com", status=PENDING)
    add(engine, web_settings, "left@example.com", status=UNSUBSCRIBED)
    with session_factory(engine)() as session:
        api.suppress(session, "gone@example.com", "forgotten")
        api.suppress(session, "spam@example.com", "complaint")
        session.commit()
    pages = {}
    for address in ("new", "active", "pending", "left", "gone", "spam"):
        response = subscribe(client, f"{address}@example.com")
        assert response.status_code == 200
        assert response.headers.get("set-cookie") is None
        pages[address] = _normalized(response.text)
    assert len(set(pages.values())) == 1
    subjects = {m.recipient: parse(m.message)["Subject"] for m in outbox.outbox}
    assert subjects == {
        "new@example.com": "Please confirm your subscription to Test Digest",
        "active@example.com": "You are already subscribed to Test Digest",
        "pending@example.com": "Please confirm your subscription to Test Digest",
        "left@example.com": "Please confirm your subscription to Test Digest",
        # Forgotten at their request: subscribing again is new consent, confirmed by mail.
        "gone@example.com": "Please confirm your subscription to Test Digest",
    }
    # Asking does not change anyone's status: only the emailed link does.
    assert load(engine, "left@example.com").status == UNSUBSCRIBED
    assert load(engine, "gone@example.com").status == PENDING  # until they confirm
    assert load(engine, "spam@example.com") is None


def test_already_subscribed_email_links_to_preferences(client, engine, web_settings, outbox):
    add(engine, web_settings, "active@example.com")
    subscribe(client, "active@example.com")
    path = link_to(outbox.outbox[0].message, "/preferences/")
    assert client.get(path).status_code == 200


def test_unsubscribed_address_comes_back_only_through_the_new_link(
    client, engine, web_settings, outbox, monkeypatch
):
    subscriber_id = add(engine, web_settings, "left@example.com", status=PENDING)
    stale = old_token(monkeypatch, web_settings, CONFIRM, subscriber_id, "left@example.com", 3600)
    with session_factory(engine)() as session:
        api.unsubscribe(session, session.get(Subscriber, subscriber_id))
        session.commit()
    refused = client.post(f"/confirm/{stale}")
    assert refused.status_code == 400
    assert "older than your last change" in refused.text
    subscribe(client, "left@example.com", topic_mode="some", topics=["empathy"])
    assert load(engine, "left@example.com").status == UNSUBSCRIBED
    confirm_via_email(client, outbox.outbox[0].message)
    subscriber = load(engine, "left@example.com")
    assert subscriber.status == ACTIVE
    assert subscriber.topic_slugs == {"empathy"}
    assert api.subscribed_lists(subscriber) == ["digest"]


@pytest.mark.parametrize("status", [PENDING, UNSUBSCRIBED])
def test_a_stranger_cannot_rewrite_a_record_without_the_link(
    client, engine, web_settings, outbox, status
):
    """Issue 11, item 2: subscribing someone else's pending or unsubscribed address changes
    nothing on their record; the choices travel in the link and apply only when it is used."""
    add(engine, web_settings, "ben@example.com", status=PENDING, topics="training")
    with session_factory(engine)() as session:
        ben = api.get_subscriber(session, "ben@example.com")
        ben.name = "Ben"
        api.change_status(session, ben, status)
        session.commit()

    def record() -> tuple:
        subscriber = load(engine, "ben@example.com")
        lists = api.subscribed_lists(subscriber)
        return (subscriber.name, subscriber.status, subscriber.topic_slugs, lists)

    before = record()
    response = subscribe(
        client, "ben@example.com", name="Mallory", topic_mode="some", topics=["empathy"]
    )
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert record() == before
    [sent] = outbox.outbox
    assert parse(sent.message)["To"] == "Ben <ben@example.com>"  # the name on record
    assert "Mallory" not in text_of(sent.message)
    assert "these topics: Empathy" in text_of(sent.message)  # what confirming gives them
    path = link_to(sent.message, "/confirm/")
    page = client.get(path)
    assert "these topics: Empathy" in page.text
    assert record() == before  # showing the page changes nothing either
    assert client.post(path).status_code == 200
    assert record() == ("Mallory", ACTIVE, {"empathy"}, ["digest"])


def test_bad_csrf_is_refused_and_changes_nothing(client, engine, outbox):
    csrf(client, "/subscribe")  # the session cookie exists, the token does not match
    response = client.post("/subscribe", data={"email": "ana@example.com", "csrf_token": "x"})
    assert response.status_code == 403
    assert "expired" in response.text
    assert 'value="ana@example.com"' in response.text  # what they typed is kept
    assert load(engine, "ana@example.com") is None
    assert outbox.outbox == []


def test_csrf_token_from_another_browser_is_refused(app, client, engine):
    token_ = csrf(client, "/subscribe")
    with TestClient(app, base_url="https://testserver") as other:
        other.get("/subscribe")
        response = other.post("/subscribe", data={"email": "a@example.com", "csrf_token": token_})
    assert response.status_code == 403
    assert load(engine, "a@example.com") is None


def test_missing_cookie_is_a_csrf_failure(app, client):
    token_ = csrf(client, "/subscribe")
    with TestClient(app, base_url="https://testserver") as cookieless:
        response = cookieless.post(
            "/subscribe", data={"email": "a@example.com", "csrf_token": token_}
        )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "not an address"}, "does not look valid"),
        ({"email": ""}, "does not look valid"),
        ({"topic_mode": "some", "topics": ["no-such-topic"]}, "Unknown topic"),
        ({"topic_mode": "some"}, "at least one topic"),
        ({"lists": ["secret"]}, "Unknown list"),
        ({"name": "x" * 201}, "too long"),
    ],
)
def test_invalid_forms_are_explained(client, engine, outbox, fields, message):
    data = {"email": "ana@example.com", **fields}
    response = subscribe(client, data.pop("email"), **data)
    assert response.status_code == 400
    assert message in response.text
    assert load(engine, "ana@example.com") is None
    assert outbox.outbox == []


def test_honeypot_field_pretends_success(client, engine, outbox):
    response = subscribe(client, "bot@example.com", website="http://spam.example")
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert load(engine, "bot@example.com") is None
    assert outbox.outbox == []


def test_rate_limit_per_address_stops_the_emails_silently(client, outbox):
    for _ in range(5):
        response = subscribe(client, "ana@example.com")
        assert response.status_code == 200 and "Check your inbox" in response.text
    assert len(outbox.outbox) == 3  # subscribe_per_address_per_hour


def test_rate_limit_per_ip(client, web_settings):
    web_settings.web.subscribe_per_ip_per_hour = 2  # read when the app was built: use the limiter
    limiter = client.app.state.ctx.limits.subscribe_ip
    limiter.limit = 2
    assert subscribe(client, "a@example.com").status_code == 200
    assert subscribe(client, "b@example.com").status_code == 200
    blocked = subscribe(client, "c@example.com")
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


# --- links: tampered, expired, wrong address -----------------------------------------------


def test_tampered_token_gets_a_clear_page_with_a_fresh_link_form(client):
    for path in ("/confirm/abc", "/preferences/abc.def.ghi", "/u/xyz", "/preferences/" + "a" * 900):
        response = client.get(path)
        assert response.status_code == 400, path
        assert "This link does not work" in response.text
        assert 'action="/link"' in response.text


def test_expired_confirmation_link(client, engine, web_settings, monkeypatch):
    subscriber_id = add(engine, web_settings, "ana@example.com", status=PENDING)
    expired = old_token(
        monkeypatch, web_settings, CONFIRM, subscriber_id, "ana@example.com", 8 * 86400
    )
    for response in (client.get(f"/confirm/{expired}"), client.post(f"/confirm/{expired}")):
        assert response.status_code == 400
        assert "expired" in response.text
    assert load(engine, "ana@example.com").status == PENDING


def test_token_of_a_changed_address_does_not_work(client, engine, web_settings):
    subscriber_id = add(engine, web_settings, "ana@example.com")
    other = token(web_settings, PREFERENCES, subscriber_id, "someone-else@example.com")
    response = client.get(f"/preferences/{other}")
    assert response.status_code == 400
    assert "no longer matches" in response.text


def test_token_for_another_purpose_does_not_work(client, engine, web_settings):
    subscriber_id = add(engine, web_settings, "ana@example.com")
    unsubscribe_token = token(web_settings, UNSUBSCRIBE, subscriber_id, "ana@example.com")
    assert client.get(f"/preferences/{unsubscribe_token}").status_code == 400


def test_links_of_test_messages_say_so(client, web_settings):
    test_token = token(web_settings, UNSUBSCRIBE, 0, "tester@example.com")
    response = client.post(f"/u/{test_token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert "test message" in response.text


def test_fresh_link_request(client, engine, web_settings, outbox):
    add(engine, web_settings, "active@example.com")
    add(engine, web_settings, "pending@example.com", status=PENDING)
    pages = set()
    for address in ("active", "pending", "unknown"):
        response = client.post(
            "/link",
            data={"email": f"{address}@example.com", "csrf_token": csrf(client, "/link")},
        )
        assert response.status_code == 200
        pages.add(_normalized(response.text))
    assert len(pages) == 1
    by_recipient = {m.recipient: m.message for m in outbox.outbox}
    assert set(by_recipient) == {"active@example.com", "pending@example.com"}
    assert client.get(link_to(by_recipient["active@example.com"], "/preferences/")).is_success
    assert link_to(by_recipient["pending@example.com"], "/confirm/")


def test_fresh_link_form_needs_csrf(client, outbox):
    client.get("/link")
    response = client.post("/link", data={"email": "a@example.com", "csrf_token": "nope"})
    assert response.status_code == 403
    assert outbox.outbox == []


# --- preferences ---------------------------------------------------------------------------


@pytest.fixture
def ana(engine, web_settings):
    subscriber_id = add(engine, web_settings, "ana@example.com", topics="empathy;training")
    return token(web_settings, PREFERENCES, subscriber_id, "ana@example.com")


def post_preferences(client, prefs: str, **fields):
    path = f"/preferences/{prefs}"
    return client.post(path, data={"csrf_token": csrf(client, path), **fields})


def test_preferences_page_shows_the_current_choices(client, ana):
    page = client.get(f"/preferences/{ana}")
    assert page.status_code == 200
    assert "ana@example.com" in page.text
    assert re.search(r'name="topic_mode" value="some" checked', page.text)
    assert re.search(r'value="empathy" checked', page.text)
    assert not re.search(r'value="anxiety-disorders" checked', page.text)
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"


def test_change_topics_name_and_back_to_all(client, engine, ana):
    response = post_preferences(
        client, ana, name="Ana B.", topic_mode="some", topics=["anxiety-disorders", "empathy"]
    )
    assert response.status_code == 200 and "saved" in response.text
    subscriber = load(engine, "ana@example.com")
    assert subscriber.topic_slugs == {"anxiety-disorders", "empathy"}
    assert subscriber.name == "Ana B."
    post_preferences(client, ana, topic_mode="all", topics=["empathy"])
    assert load(engine, "ana@example.com").all_topics


def test_unknown_topic_changes_nothing(client, engine, ana):
    response = post_preferences(client, ana, topic_mode="some", topics=["empathy", "astrology"])
    assert response.status_code == 400
    assert "Unknown topic" in response.text
    assert load(engine, "ana@example.com").topic_slugs == {"empathy", "training"}


def test_preferences_need_csrf(client, engine, ana):
    client.get(f"/preferences/{ana}")
    response = client.post(
        f"/preferences/{ana}", data={"action": "unsubscribe", "csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert load(engine, "ana@example.com").status == ACTIVE


def test_lists_can_be_chosen_when_there_are_several(engine, outbox, web_settings):
    from newsletter.config import ListSpec

    web_settings.lists = [
        ListSpec(slug="digest", name="Monthly digest"),
        ListSpec(slug="events", name="Events"),
        ListSpec(slug="staff", name="Staff only", public=False),
    ]
    app = create_app(web_settings, transport_factory=lambda: outbox, engine=engine)
    with TestClient(app, base_url="https://testserver") as client:
        page = client.get("/subscribe").text
        assert 'value="events"' in page and 'value="staff"' not in page
        subscribe(client, "ana@example.com", lists=["events"])
        assert api.subscribed_lists(load(engine, "ana@example.com")) == ["events"]
        assert subscribe(client, "bo@example.com", lists=["staff"]).status_code == 400
        subscriber = load(engine, "ana@example.com")
        prefs = token(web_settings, PREFERENCES, subscriber.id, subscriber.email)
        post_preferences(client, prefs, topic_mode="all", lists=["digest", "events"])
        assert api.subscribed_lists(load(engine, "ana@example.com")) == ["digest", "events"]
        response = post_preferences(client, prefs, topic_mode="all")
        assert response.status_code == 400 and "at least one list" in response.text


def test_drop_one_topic_asks_first(client, engine, ana):
    page = client.get(f"/preferences/{ana}?drop=empathy")
    assert page.status_code == 200
    assert "Stop sending me Empathy?" in page.text
    assert load(engine, "ana@example.com").topic_slugs == {"empathy", "training"}
    done = post_preferences(client, ana, action="drop", topic="empathy")
    assert done.status_code == 200 and "no longer receive summaries about Empathy" in done.text
    assert load(engine, "ana@example.com").topic_slugs == {"training"}
    again = client.get(f"/preferences/{ana}?drop=empathy")
    assert "already do not receive" in again.text
    last = post_preferences(client, ana, action="drop", topic="training")
    assert last.status_code == 400 and "only topic" in last.text
    assert load(engine, "ana@example.com").topic_slugs == {"training"}


def test_drop_from_all_topics_keeps_every_other_topic(client, engine, web_settings):
    subscriber_id = add(engine, web_settings, "bo@example.com")
    prefs = token(web_settings, PREFERENCES, subscriber_id, "bo@example.com")
    post_preferences(client, prefs, action="drop", topic="empathy")
    bo = load(engine, "bo@example.com")
    # Every topic but empathy, topics added later included: not today's other topics.
    assert bo.all_topics and bo.topic_slugs is None and bo.excluded_slugs == {"empathy"}


def test_drop_unknown_topic(client, engine, ana):
    page = client.get(f"/preferences/{ana}?drop=astrology")
    assert page.status_code == 404
    assert "not one of ours" in page.text
    response = post_preferences(client, ana, action="drop", topic="astrology")
    assert response.status_code == 400
    assert load(engine, "ana@example.com").topic_slugs == {"empathy", "training"}


def test_unsubscribe_from_everything_and_come_back(client, engine, ana):
    response = post_preferences(client, ana, action="unsubscribe")
    assert response.status_code == 200 and "You are unsubscribed" in response.text
    subscriber = load(engine, "ana@example.com")
    assert subscriber.status == UNSUBSCRIBED
    assert api.subscribed_lists(subscriber) == []
    page = client.get(f"/preferences/{ana}")
    assert "Subscribe again" in page.text
    back = post_preferences(client, ana, action="resubscribe")
    assert "subscribed again" in back.text
    subscriber = load(engine, "ana@example.com")
    assert subscriber.status == ACTIVE
    assert api.subscribed_lists(subscriber) == ["digest"]


def privacy_link(client, prefs: str, outbox) -> str:
    """Ask on the preferences page for the emailed privacy link; its path."""
    before = len(outbox.outbox)
    response = post_preferences(client, prefs, action="privacy")
    assert response.status_code == 200 and "We have emailed a link" in response.text
    [sent] = outbox.outbox[before:]
    return link_to(sent.message, "/privacy/")


def test_download_my_data(client, engine, web_settings, ana, outbox):
    issue = load_issue(web_settings.content.dir, "2025-01", TAXONOMY, "Test Digest")
    send_month(engine, web_settings, issue, MemoryTransport())
    privacy = privacy_link(client, ana, outbox)
    assert "Download my data" in client.get(privacy).text
    response = client.get(f"{privacy}/data")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    data = json.loads(response.text)
    assert data["email"] == "ana@example.com"
    assert data["topics"] == ["empathy", "training"]
    assert data["deliveries"][0]["month"] == "2025-01"


def test_forget_me_deletes_and_suppresses(client, engine, web_settings, ana, outbox):
    issue = load_issue(web_settings.content.dir, "2025-01", TAXONOMY, "Test Digest")
    send_month(engine, web_settings, issue, MemoryTransport())
    with session_factory(engine)() as session:  # a soft bounce on record, with the address
        record_bounce(session, email_address="ana@example.com", kind="soft", message_id="<b@x>")
        session.commit()
    path = privacy_link(client, ana, outbox) + "/forget"
    page = client.get(path)
    assert page.status_code == 200 and "Delete my data" in page.text
    refused = client.post(path, data={"csrf_token": "nope"})
    assert refused.status_code == 403
    assert load(engine, "ana@example.com") is not None
    done = client.post(path, data={"csrf_token": csrf(client, path)})
    assert done.status_code == 200 and "Your data is deleted" in done.text
    assert load(engine, "ana@example.com") is None
    with session_factory(engine)() as session:
        assert api.is_suppressed(session, "ANA@example.com")
        emails = set(session.scalars(select(Delivery.email)))
        assert session.scalar(select(func.count()).select_from(Bounce)) == 0
    assert "ana@example.com" not in emails
    # The old link says plainly that the data was deleted; subscribing again is new consent:
    # a normal confirmation, which lifts the suppression once used.
    old = client.get(f"/preferences/{ana}")
    assert old.status_code == 400 and "Your data was deleted" in old.text
    before = len(outbox.outbox)
    subscribe(client, "ana@example.com")
    [sent] = outbox.outbox[before:]
    assert parse(sent.message)["Subject"] == "Please confirm your subscription to Test Digest"
    confirm_via_email(client, sent.message)
    with session_factory(engine)() as session:
        assert not api.is_suppressed(session, "ana@example.com")
    assert load(engine, "ana@example.com").status == ACTIVE


# --- one-click unsubscribe -----------------------------------------------------------------


@pytest.fixture
def unsub(engine, web_settings):
    subscriber_id = add(engine, web_settings, "ana@example.com")
    return token(web_settings, UNSUBSCRIBE, subscriber_id, "ana@example.com")


def test_one_click_form_urlencoded(app, engine, unsub):
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as mail_server:
        response = mail_server.post(f"/u/{unsub}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert "You are unsubscribed" in response.text
    assert load(engine, "ana@example.com").status == UNSUBSCRIBED


def test_one_click_multipart(app, engine, unsub):
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as mail_server:
        response = mail_server.post(f"/u/{unsub}", files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert load(engine, "ana@example.com").status == UNSUBSCRIBED


def test_one_click_twice_is_fine(client, engine, unsub):
    for _ in range(2):
        response = client.post(f"/u/{unsub}", data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
    assert load(engine, "ana@example.com").status == UNSUBSCRIBED


def test_get_only_shows_a_button(client, engine, unsub):
    page = client.get(f"/u/{unsub}")
    assert page.status_code == 200
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert load(engine, "ana@example.com").status == ACTIVE


@pytest.mark.parametrize(
    "body",
    [
        {"data": {}},
        {"data": {"List-Unsubscribe": "yes"}},
        {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data"}},
    ],
)
def test_one_click_without_the_body_changes_nothing(client, engine, unsub, body):
    response = client.post(f"/u/{unsub}", **body)
    assert response.status_code == 400
    assert load(engine, "ana@example.com").status == ACTIVE


def test_the_links_of_a_real_digest_work(client, engine, web_settings):
    add(engine, web_settings, "ana@example.com", topics="depression-and-depressive-symptoms")
    issue = load_issue(web_settings.content.dir, "2025-01", TAXONOMY, "Test Digest")
    transport = MemoryTransport()
    send_month(engine, web_settings, issue, transport)
    [sent] = transport.outbox
    message = parse(sent.message)
    assert client.get(link_to(sent.message, "/preferences/")).status_code == 200
    html = message.get_body(("html",)).get_content()
    drop = re.search(re.escape(BASE) + r'(/preferences/[^"]+\?drop=[a-z-]+)', html).group(1)
    assert "Stop sending me" in client.get(drop).text
    header_url = re.search(r"<(https://[^>]+)>", message["List-Unsubscribe"]).group(1)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    response = client.post(header_url[len(BASE) :], data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert load(engine, "ana@example.com").status == UNSUBSCRIBED


# --- the app itself ------------------------------------------------------------------------


def test_not_found_is_a_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.text
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors" in response.headers["content-security-policy"]


def test_stylesheet_is_served(client):
    response = client.get("/static/web.css")
    assert response.status_code == 200 and "#0b6e69" in response.text
    assert client.get("/static/..%2Fbase.html").status_code == 404


def test_templates_can_be_overridden(tmp_path, engine, web_settings, outbox):
    override = tmp_path / "my-templates" / "web"
    override.mkdir(parents=True)
    (override / "check_inbox.html").write_text(
        '{% extends "default/web/check_inbox.html" %}'
        "{% block content %}<p>Custom: look for our email.</p>{{ super() }}{% endblock %}"
    )
    web_settings.templates.dir = tmp_path / "my-templates"
    app = create_app(web_settings, transport_factory=lambda: outbox, engine=engine)
    with TestClient(app, base_url="https://testserver") as client:
        response = subscribe(client, "ana@example.com")
    assert "Custom: look for our email." in response.text
    assert "Check your inbox" in response.text


def test_session_cookie_flags(client):
    response = client.get("/subscribe")
    cookie = response.headers["set-cookie"]
    assert "nl_session=" in cookie
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert "secure" in cookie.lower()  # base_url is https


def test_no_secure_flag_for_plain_http(engine, web_settings, outbox):
    web_settings.newsletter.base_url = "http://127.0.0.1:8000"
    app = create_app(web_settings, transport_factory=lambda: outbox, engine=engine)
    with TestClient(app) as client:
        cookie = client.get("/subscribe").headers["set-cookie"]
    assert "secure" not in cookie.lower()


def test_subscribe_form_refuses_a_name_with_a_line_break(client, engine, outbox):
    response = subscribe(client, "eve@example.com", name="Eve\r\nBcc: victim@example.net")
    assert response.status_code == 400
    assert "line breaks" in response.text
    assert load(engine, "eve@example.com") is None
    assert outbox.outbox == []
