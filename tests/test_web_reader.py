"""Route tests of the reader's own changes (TestClient, real SQLite): the preference center's
summary, list descriptions, pause, frequency and change of address; coming back through the
subscribe form; the optional "why" after unsubscribing; errors tied to their fields."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func
from sqlalchemy import select
from test_web_support import csrf
from test_web_support import link_to
from test_web_support import parse
from test_web_support import subscribe
from test_web_support import text_of

from newsletter.config import ListSpec
from newsletter.content.taxonomy import default_taxonomy
from newsletter.store import feedback
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.store.models import ACTIVE
from newsletter.store.models import QUARTERLY
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import UnsubscribeReason
from newsletter.store.models import utcnow
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer

pytest_plugins = ["test_web_support"]
TAXONOMY = default_taxonomy()


def add(engine, settings, address: str, **options) -> int:
    with session_factory(engine)() as session:
        subscriber = api.add_subscriber(session, settings, TAXONOMY, address, **options)
        session.commit()
        return subscriber.id


def load(engine, address: str):
    with session_factory(engine)() as session:
        return api.get_subscriber(session, address)


def token(settings, purpose: str, subscriber_id: int, address: str) -> str:
    return Signer(settings.secret_key()).make(purpose, subscriber_id, address)


def post(client, path: str, **fields):
    return client.post(path, data={"csrf_token": csrf(client, path), **fields})


@pytest.fixture
def ana(engine, web_settings) -> str:
    """Ana's preferences path."""
    subscriber_id = add(engine, web_settings, "ana@example.com", topics="empathy;training")
    return f"/preferences/{token(web_settings, PREFERENCES, subscriber_id, 'ana@example.com')}"


def test_the_page_says_what_they_receive_in_words(client, ana):
    page = client.get(ana).text
    assert "You receive:</strong>" in page
    assert "summaries on 2 topics: Empathy, Training." in page
    assert "every month&#39;s digest" in page or "every month's digest" in page


def test_lists_have_descriptions(client, engine, web_settings):
    web_settings.lists = [
        ListSpec(slug="digest", name="Monthly digest", description="The research summaries."),
        ListSpec(slug="events", name="Events", description="Workshops, twice a year."),
    ]
    subscriber_id = add(engine, web_settings, "ben@example.com")
    page = client.get(
        f"/preferences/{token(web_settings, PREFERENCES, subscriber_id, 'ben@example.com')}"
    )
    assert 'aria-describedby="list-events-about"' in page.text
    assert re.search(r'id="list-events-about">Workshops, twice a year\.<', page.text)
    assert "The research summaries." in client.get("/subscribe").text


def test_pause_and_resume(client, engine, ana):
    response = post(client, ana, action="pause", months="3")
    assert response.status_code == 200
    until = load(engine, "ana@example.com").paused_until
    assert until is not None
    assert 88 <= (until - utcnow()).days <= 92
    day = f"{until.day} {until:%B %Y}"
    assert f"Paused</strong> until {day}" in response.text
    assert "Resume now" in response.text
    resumed = post(client, ana, action="resume")
    assert resumed.status_code == 200 and "Resumed" in resumed.text
    assert load(engine, "ana@example.com").paused_until is None


@pytest.mark.parametrize("months", ["0", "7", "", "two"])
def test_a_pause_of_another_length_is_refused_beside_its_field(client, engine, ana, months):
    response = post(client, ana, action="pause", months=months)
    assert response.status_code == 400
    assert 'aria-describedby="months-error" aria-invalid="true" autofocus' in response.text
    assert 'id="months-error">Choose a pause of 1 to 6 months.' in response.text
    assert load(engine, "ana@example.com").paused_until is None


def test_frequency(client, engine, ana):
    response = post(client, ana, action="frequency", frequency="quarterly")
    assert response.status_code == 200 and "one round-up every three months" in response.text
    assert load(engine, "ana@example.com").frequency == QUARTERLY
    assert 'value="quarterly" checked' in response.text
    refused = post(client, ana, action="frequency", frequency="weekly")
    assert refused.status_code == 400 and 'id="frequency-error"' in refused.text
    assert load(engine, "ana@example.com").frequency == QUARTERLY
    back = post(client, ana, action="frequency", frequency="monthly")
    assert back.status_code == 200
    assert load(engine, "ana@example.com").frequency == "monthly"


def test_change_of_address_is_confirmed_by_the_new_mailbox(client, engine, ana, outbox):
    response = post(client, ana, action="address", new_email="Ana.Work@Example.org")
    assert response.status_code == 200
    assert "If Ana.Work@example.org can be used, we have emailed it a link" in response.text
    [sent] = outbox.outbox
    assert sent.recipient == "Ana.Work@example.org"
    assert parse(sent.message)["Subject"] == "Confirm your new address for Test Digest"
    assert load(engine, "ana@example.com") is not None  # nothing changed yet
    path = link_to(sent.message, "/address/")
    page = client.get(path)
    assert page.status_code == 200 and "Yes, use Ana.Work@example.org" in page.text
    assert load(engine, "ana@example.com") is not None  # a GET changes nothing
    done = client.post(path)
    assert done.status_code == 200 and "Your address is changed" in done.text
    moved = load(engine, "ana.work@example.org")
    assert (moved.email, moved.topic_slugs) == ("Ana.Work@example.org", {"empathy", "training"})
    assert load(engine, "ana@example.com") is None
    # Used once; and the old preferences link named the old address.
    assert client.post(path).status_code == 400
    assert client.get(ana).status_code == 400
    new_prefs = re.search(r'href="(/preferences/[^"]+)"', done.text).group(1)
    assert client.get(new_prefs).status_code == 200


def test_an_address_of_someone_else_gets_the_same_page_and_no_mail(
    client, engine, web_settings, ana, outbox
):
    add(engine, web_settings, "ben@example.com")
    taken = post(client, ana, action="address", new_email="ben@example.com")
    free = post(client, ana, action="address", new_email="cleo@example.com")
    assert taken.status_code == free.status_code == 200
    assert _without_tokens(taken.text).replace("ben@", "X@") == _without_tokens(free.text).replace(
        "cleo@", "X@"
    )
    assert [m.recipient for m in outbox.outbox] == ["cleo@example.com"]
    assert load(engine, "ana@example.com").email == "ana@example.com"


def _without_tokens(page: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]+"', "", page)


def test_a_bad_new_address_is_explained_beside_its_field(client, engine, ana, outbox):
    response = post(client, ana, action="address", new_email="not an address")
    assert response.status_code == 400
    assert re.search(
        r'<input type="email" id="new_email" name="new_email" value="not an address"[^>]*'
        r'aria-describedby="new_email-error" aria-invalid="true" autofocus>',
        response.text,
    )
    assert 'id="new_email-error">Please check the new address' in response.text
    assert outbox.outbox == []


def test_subscribe_errors_are_tied_to_their_fields(client, outbox):
    response = subscribe(client, "nope", topic_mode="some")
    assert response.status_code == 400
    assert re.search(r'id="email"[^>]*aria-describedby="email-error email-hint"', response.text)
    assert re.search(r'id="email"[^>]*aria-invalid="true" autofocus', response.text)
    assert 'aria-describedby="topics-error"' in response.text
    assert 'id="topics-error">Choose at least one topic' in response.text
    assert response.text.count("autofocus") == 1  # only the first field in error
    assert outbox.outbox == []


def test_coming_back_through_the_form_keeps_the_topics_and_sends_no_welcome(
    client, engine, web_settings, outbox
):
    subscriber_id = add(engine, web_settings, "ana@example.com", topics="empathy")
    with session_factory(engine)() as session:
        api.unsubscribe(session, session.get(api.Subscriber, subscriber_id))
        session.commit()
    subscribe(client, "ana@example.com")  # "All topics", the form's default
    [confirmation] = outbox.outbox
    assert "Empathy" in text_of(confirmation.message)
    path = link_to(confirmation.message, "/confirm/")
    assert "these topics: Empathy" in client.get(path).text
    done = client.post(path)
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert "We have sent you the latest issue" not in done.text
    back = load(engine, "ana@example.com")
    assert (back.status, back.topic_slugs) == (ACTIVE, {"empathy"})
    assert len(outbox.outbox) == 1  # no welcome issue the second time


def test_a_first_subscription_still_gets_the_welcome(client, outbox):
    subscribe(client, "new@example.com")
    path = link_to(outbox.outbox[0].message, "/confirm/")
    assert "We have sent you the latest issue" in client.post(path).text
    assert parse(outbox.outbox[-1].message)["Subject"].startswith("Welcome to Test Digest")


# --- the optional "why" -----------------------------------------------------------------------


@pytest.fixture
def unsub(engine, web_settings) -> str:
    subscriber_id = add(engine, web_settings, "ana@example.com")
    return token(web_settings, UNSUBSCRIBE, subscriber_id, "ana@example.com")


def reason_rows(engine) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(UnsubscribeReason))


def test_why_after_one_click(client, engine, unsub):
    page = client.post(f"/u/{unsub}", data={"List-Unsubscribe": "One-Click"})
    assert page.status_code == 200 and "why did you unsubscribe?" in page.text
    assert f'action="/u/{unsub}/why"' in page.text
    for label in ("Too frequent", "Not relevant to my work", "Too long", "Another reason"):
        assert label in page.text
    answered = client.post(f"/u/{unsub}/why", data={"reason": "too_long"})
    assert answered.status_code == 200 and "Thank you for telling us" in answered.text
    with session_factory(engine)() as session:
        assert feedback.unsubscribe_reason_counts(session)["too_long"] == 1
        [row] = session.scalars(select(UnsubscribeReason))
        assert row.on_date == utcnow().date()
    assert load(engine, "ana@example.com").status == UNSUBSCRIBED


def test_skipping_the_why_changes_nothing(client, engine, unsub):
    client.post(f"/u/{unsub}", data={"List-Unsubscribe": "One-Click"})
    assert reason_rows(engine) == 0
    refused = client.post(f"/u/{unsub}/why", data={})  # "send" without a choice
    assert refused.status_code == 400 and 'id="why-error"' in refused.text
    assert reason_rows(engine) == 0
    assert load(engine, "ana@example.com").status == UNSUBSCRIBED


def test_why_counts_only_after_unsubscribing(client, engine, unsub):
    response = client.post(f"/u/{unsub}/why", data={"reason": "other"})
    assert response.status_code == 409
    assert reason_rows(engine) == 0
    assert load(engine, "ana@example.com").status == ACTIVE


def test_one_unsubscribe_gets_one_answer(client, engine, web_settings, unsub):
    client.post(f"/u/{unsub}", data={"List-Unsubscribe": "One-Click"})
    assert client.post(f"/u/{unsub}/why", data={"reason": "too_long"}).status_code == 200
    for data in ({"reason": "too_long"}, {"reason": "other"}, {}):  # the same link again
        again = client.post(f"/u/{unsub}/why", data=data)
        assert again.status_code == 200, data
        assert "already recorded, thank you" in again.text
    assert reason_rows(engine) == 1
    # The unsubscribe link opened again says so instead of asking.
    page = client.post(f"/u/{unsub}", data={"List-Unsubscribe": "One-Click"})
    assert "is recorded: thank you" in page.text and "why did you unsubscribe?" not in page.text

    # Subscribing again clears the mark: the next unsubscribe gets its own answer.
    with session_factory(engine)() as session:
        from newsletter.store.registrar import resubscribe

        resubscribe(session, web_settings, api.require_subscriber(session, "ana@example.com"))
        session.commit()
    assert load(engine, "ana@example.com").unsubscribe_reason_given_at is None
    page = client.post(f"/u/{unsub}", data={"List-Unsubscribe": "One-Click"})
    assert "why did you unsubscribe?" in page.text
    assert client.post(f"/u/{unsub}/why", data={"reason": "other"}).status_code == 200
    with session_factory(engine)() as session:
        counts = feedback.unsubscribe_reason_counts(session)
    assert (counts["too_long"], counts["other"], reason_rows(engine)) == (1, 1, 2)


def test_why_after_unsubscribing_on_the_preferences_page(client, engine, ana):
    page = post(client, ana, action="unsubscribe")
    why = re.search(r'action="(/u/[^"]+/why)"', page.text).group(1)
    assert client.post(why, data={"reason": "too_frequent"}).status_code == 200
    with session_factory(engine)() as session:
        counts = feedback.unsubscribe_reason_counts(session, since=dt.date.today())
    assert counts["too_frequent"] == 1


def test_the_editor_sees_the_counts(admin, engine):
    with session_factory(engine)() as session:
        feedback.record_unsubscribe_reason(session, "not_relevant")
        feedback.record_unsubscribe_reason(session, "not_relevant")
        session.commit()
    page = admin.get("/admin/issues")
    assert page.status_code == 200
    assert "Why readers unsubscribed" in page.text
    assert "<td>Not relevant to my work</td><td>2</td>" in page.text
    assert "<td>Too long</td><td>0</td>" in page.text


def test_the_confirm_page_says_that_stopped_topics_stay_stopped(
    client, engine, web_settings, outbox
):
    subscriber_id = add(engine, web_settings, "bo@example.com")
    prefs = f"/preferences/{token(web_settings, PREFERENCES, subscriber_id, 'bo@example.com')}"
    post(client, prefs, action="drop", topic="empathy")
    post(client, prefs, action="unsubscribe")
    subscribe(client, "bo@example.com")
    path = link_to(outbox.outbox[-1].message, "/confirm/")
    assert "You will receive all topics except Empathy." in client.get(path).text
    client.post(path)
    back = load(engine, "bo@example.com")
    assert (back.status, back.topic_slugs, back.excluded_slugs) == (ACTIVE, None, {"empathy"})
