"""The subscriber service's rules, called directly (real SQLite), and the clients that share them.

The web routes, the CLI and the inbound-mail scans only translate to and from these functions;
the tests here pin each rule down where it lives (`newsletter.store.subscribers` and
`newsletter.store.registrar`).
"""

from __future__ import annotations

import time
from pathlib import Path

import itsdangerous.timed
import pytest
from test_bounce_support import maildir
from test_inbound import request as unsubscribe_request

from newsletter.content.choice import TopicChoice
from newsletter.errors import LinkProblem
from newsletter.errors import NewsletterError
from newsletter.errors import SubscriberError
from newsletter.errors import TokenError
from newsletter.errors import TokenExpired
from newsletter.returns.unsubscribe import scan as scan_unsubscribes
from newsletter.store import engine as db
from newsletter.store import registrar
from newsletter.store import subscribers as api
from newsletter.store.models import ACTIVE
from newsletter.store.models import PENDING
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import Subscriber
from newsletter.tokens import CONFIRM
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer
from newsletter.tokens import address_hash

pytest_plugins = ["test_web_support"]


@pytest.fixture
def signer(settings) -> Signer:
    return Signer(settings.secret_key())


def add(session, settings, taxonomy, address: str, **options) -> Subscriber:
    return api.add_subscriber(session, settings, taxonomy, address, **options)


def aged_token(monkeypatch, signer: Signer, purpose: str, subscriber: Subscriber, age: float):
    """A token for `subscriber` signed `age` seconds ago."""
    with monkeypatch.context() as patch:
        patch.setattr(
            itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: int(time.time() - age)
        )
        return signer.make(purpose, subscriber.id, subscriber.email)


# --- errors ----------------------------------------------------------------------------------


def test_link_and_form_problems_belong_to_the_exception_tree() -> None:
    from newsletter.errors import FormProblem

    problem = LinkProblem("gone", "This link no longer matches.")
    assert isinstance(problem, NewsletterError)
    assert (problem.kind, str(problem)) == ("gone", "This link no longer matches.")
    assert issubclass(FormProblem, NewsletterError)
    assert issubclass(FormProblem, ValueError)
    assert issubclass(TokenExpired, TokenError)


def test_an_expired_token_raises_token_expired(monkeypatch, signer, session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "ana@example.com", status=PENDING)
    expired = aged_token(monkeypatch, signer, CONFIRM, ana, 8 * 86400)
    with pytest.raises(TokenExpired):
        signer.read(CONFIRM, expired)
    tampered = signer.make(CONFIRM, ana.id, ana.email)[:-3] + "AAA"
    with pytest.raises(TokenError) as caught:
        signer.read(CONFIRM, tampered)
    assert not isinstance(caught.value, TokenExpired)


# --- token → subscriber ----------------------------------------------------------------------


def test_a_valid_token_names_its_subscriber(signer, session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "Ana@Example.com")
    for purpose in (UNSUBSCRIBE, PREFERENCES, CONFIRM):
        token = signer.make(purpose, ana.id, ana.email)
        assert registrar.subscriber_for_token(session, signer, purpose, token) is ana


def kind_of(session, signer, purpose: str, token: str) -> str:
    with pytest.raises(LinkProblem) as caught:
        registrar.subscriber_for_token(session, signer, purpose, token)
    return caught.value.kind


def test_refused_tokens_say_why(monkeypatch, signer, session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "ana@example.com", status=PENDING)
    good = signer.make(PREFERENCES, ana.id, ana.email)
    assert kind_of(session, signer, PREFERENCES, "") == "invalid"
    assert kind_of(session, signer, PREFERENCES, "a" * 401) == "invalid"
    assert kind_of(session, signer, PREFERENCES, good[:-4] + "AAAA") == "invalid"
    assert kind_of(session, signer, UNSUBSCRIBE, good) == "invalid"  # another purpose
    expired = aged_token(monkeypatch, signer, CONFIRM, ana, 8 * 86400)
    assert kind_of(session, signer, CONFIRM, expired) == "expired"
    assert kind_of(session, signer, PREFERENCES, signer.make(PREFERENCES, 0, "t@x.org")) == "test"
    other = signer.make(PREFERENCES, ana.id, "someone-else@example.com")
    assert kind_of(session, signer, PREFERENCES, other) == "gone"
    assert kind_of(session, signer, PREFERENCES, signer.make(PREFERENCES, 10**12, "a@b.org")) == (
        "gone"
    )
    api.remove_subscriber(session, ana.email)
    assert kind_of(session, signer, PREFERENCES, good) == "deleted"


def test_reference_checks_the_hash_length_it_is_given(session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "ana@example.com")
    short = address_hash(ana.email, 6)
    assert registrar.subscriber_by_reference(session, ana.id, short, hash_length=6) is ana
    with pytest.raises(LinkProblem) as caught:
        registrar.subscriber_by_reference(session, ana.id, short)  # a 10-digit hash expected
    assert caught.value.kind == "gone"
    with pytest.raises(LinkProblem) as caught:
        registrar.subscriber_by_reference(session, ana.id, "", hash_length=6)
    assert caught.value.kind == "gone"


def test_mail_and_web_unsubscribes_apply_the_same_token_check(
    tmp_path: Path, settings, web_settings, engine, client, taxonomy
) -> None:
    """A token made for an address the subscriber no longer has is refused by the one-click link
    and by the mailto request alike; a current token works in both."""
    signer = Signer(settings.secret_key())
    with db.transaction(engine) as session:
        ana = add(session, settings, taxonomy, "ana@example.net")
        ben = add(session, settings, taxonomy, "ben@example.net")
        cleo = add(session, settings, taxonomy, "cleo@example.net")
        ids = {"ana": ana.id, "ben": ben.id, "cleo": cleo.id}
    stale = signer.make(UNSUBSCRIBE, ids["ana"], "ana.old@example.net")

    web = client.post(f"/u/{stale}", data={"List-Unsubscribe": "One-Click"})
    assert web.status_code == 400
    assert "no longer matches" in web.text
    path = maildir(tmp_path, unsubscribe_request("stranger@example.com", f"unsubscribe {stale}"))
    report = scan_unsubscribes(path, settings, engine)
    assert report.unsubscribed == []
    assert "no longer matches" in report.ignored[0][1]

    by_web = signer.make(UNSUBSCRIBE, ids["ben"], "ben@example.net")
    assert client.post(f"/u/{by_web}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    by_mail = signer.make(UNSUBSCRIBE, ids["cleo"], "cleo@example.net")
    path = maildir(
        tmp_path,
        unsubscribe_request("stranger@example.com", f"unsubscribe {by_mail}"),
        name="Maildir2",
    )
    report = scan_unsubscribes(path, settings, engine)
    assert [(a, how) for _, a, how in report.unsubscribed] == [("cleo@example.net", "token")]
    with db.transaction(engine) as session:
        statuses = {
            name: api.require_subscriber(session, f"{name}@example.net").status
            for name in ("ana", "ben", "cleo")
        }
    assert statuses == {"ana": ACTIVE, "ben": UNSUBSCRIBED, "cleo": UNSUBSCRIBED}


# --- what an admin changes (web admin, JSON API, CLI) ----------------------------------------


def test_change_status(session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "ana@example.com", status=PENDING)
    assert (api.is_subscribed(ana), api.is_active(ana)) == (True, False)
    api.change_status(session, ana, ACTIVE)
    assert (ana.status, ana.confirmed_at is not None, api.is_active(ana)) == (ACTIVE, True, True)
    api.change_status(session, ana, UNSUBSCRIBED)
    assert (ana.status, api.subscribed_lists(ana)) == (UNSUBSCRIBED, [])  # left every list
    assert ana.unsubscribed_at is not None
    assert not api.is_subscribed(ana)
    api.change_status(session, ana, "bounced")
    assert (ana.status, api.is_subscribed(ana)) == ("bounced", False)
    with pytest.raises(SubscriberError, match="unknown status 'gone'"):
        api.change_status(session, ana, "gone")
    assert ana.status == "bounced"


def test_count_subscribers(session, settings, taxonomy):
    assert api.count_subscribers(session) == 0
    add(session, settings, taxonomy, "ana@example.com")
    add(session, settings, taxonomy, "ben@example.com", status=PENDING)
    assert (api.count_subscribers(session), api.count_subscribers(session, ACTIVE)) == (2, 1)
    with pytest.raises(SubscriberError, match="unknown status"):
        api.count_subscribers(session, "gone")


def test_set_name(session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "ana@example.com", name="Ana")
    assert api.set_name(session, ana, "  Ana Pérez ").name == "Ana Pérez"
    with pytest.raises(SubscriberError, match=r"too long \(200 characters at most\)"):
        api.set_name(session, ana, "x" * 201)
    assert ana.name == "Ana Pérez"


def test_unsubscribe_says_whether_anything_changed(session, two_lists, taxonomy):
    ana = add(session, two_lists, taxonomy, "ana@example.com", lists=["digest", "events"])
    assert api.unsubscribe(session, ana, "events") is True
    assert (ana.status, api.subscribed_lists(ana)) == (ACTIVE, ["digest"])
    assert api.unsubscribe(session, ana, "events") is False
    with pytest.raises(SubscriberError, match="not on the list 'staff'"):
        api.unsubscribe(session, ana, "staff")
    assert api.unsubscribe(session, ana) is True
    assert (ana.status, api.subscribed_lists(ana)) == (UNSUBSCRIBED, [])
    assert api.unsubscribe(session, ana) is False


def test_forget_keeps_only_a_suppression_hash(session, settings, taxonomy):
    from sqlalchemy import select

    from newsletter.store.bounces import record_bounce
    from newsletter.store.models import Bounce
    from newsletter.store.models import Campaign
    from newsletter.store.models import Delivery

    ana = add(session, settings, taxonomy, "ana@example.com", name="Ana")
    campaign = Campaign(month="2026-11", subject="November")
    session.add(campaign)
    session.flush()
    session.add(
        Delivery(campaign_id=campaign.id, subscriber_id=ana.id, email=ana.email, variant="a")
    )
    record_bounce(
        session, email_address=ana.email, kind="soft", message_id="<1@x>", subscriber_id=ana.id
    )
    api.forget_subscriber(session, ana)
    session.expire_all()
    assert api.get_subscriber(session, "ana@example.com") is None
    assert api.is_suppressed(session, "ANA@example.com")
    assert session.scalars(select(Bounce)).all() == []
    assert session.scalars(select(Delivery.email)).all() == ["(forgotten)"]
    with pytest.raises(SubscriberError, match="suppression list"):
        add(session, settings, taxonomy, "ana@example.com")


# --- the subscribe request: what a stranger may and may not change ---------------------------


@pytest.fixture
def two_lists(settings):
    from newsletter.config import ListSpec

    settings.lists = [ListSpec(slug="events", name="Events")]
    return settings


def snapshot(subscriber: Subscriber) -> dict:
    return {
        "name": subscriber.name,
        "status": subscriber.status,
        "topics": subscriber.topic_slugs,
        "lists": api.subscribed_lists(subscriber),
        "confirmed_at": subscriber.confirmed_at,
        "unsubscribed_at": subscriber.unsubscribed_at,
        "consent_source": subscriber.consent_source,
        "consent_ip": subscriber.consent_ip,
    }


def ask(session, settings, taxonomy, address: str, **choices):
    choices = {"name": "Stranger", "topics": frozenset({"empathy"}), "lists": ["events"]} | choices
    return registrar.request_subscription(
        session, settings, taxonomy, address, source="web", ip="203.0.113.9", **choices
    )


def test_a_new_address_is_added_pending_with_its_choices(session, two_lists, taxonomy):
    kind, subscriber, request = ask(session, two_lists, taxonomy, "New@Example.com")
    assert (kind, request) == (registrar.CONFIRMATION, None)  # the record holds the choices
    assert snapshot(subscriber) | {"id": subscriber.id > 0} == {
        "id": True,
        "name": "Stranger",
        "status": PENDING,
        "topics": {"empathy"},
        "lists": ["events"],
        "confirmed_at": None,
        "unsubscribed_at": None,
        "consent_source": "web",
        "consent_ip": "203.0.113.9",
    }
    assert subscriber.email == "New@example.com"


def test_an_active_record_is_left_alone(session, two_lists, taxonomy):
    ana = add(session, two_lists, taxonomy, "ana@example.com", name="Ana", topics="training")
    before = snapshot(ana)
    assert ask(session, two_lists, taxonomy, "ANA@example.com") == (
        registrar.ALREADY_SUBSCRIBED,
        ana,
        None,
    )
    session.expire_all()
    assert snapshot(api.require_subscriber(session, "ana@example.com")) == before


@pytest.mark.parametrize("status", [PENDING, UNSUBSCRIBED, "bounced", "complained"])
def test_a_record_not_active_is_left_alone_and_the_choices_go_in_the_link(
    session, two_lists, taxonomy, status
):
    """A stranger who types someone's address changes nothing on their record (issue 11,
    item 2): the choices travel in the confirmation link and apply when it is used."""
    ben = add(session, two_lists, taxonomy, "ben@example.com", name="Ben", topics="training")
    api.change_status(session, ben, status)
    before = snapshot(ben)
    kind, subscriber, request = ask(session, two_lists, taxonomy, "ben@example.com")
    assert (kind, subscriber) == (registrar.CONFIRMATION, ben)
    assert request == registrar.SubscriptionRequest("Stranger", frozenset({"empathy"}), ("events",))
    session.flush()
    session.expire_all()
    assert snapshot(api.require_subscriber(session, "ben@example.com")) == before


@pytest.mark.parametrize("status", [PENDING, UNSUBSCRIBED])
def test_the_choices_in_the_link_apply_when_it_is_used(
    signer, session, two_lists, taxonomy, status
):
    ben = add(session, two_lists, taxonomy, "ben@example.com", name="Ben", topics="training")
    api.change_status(session, ben, status)
    _, _, request = ask(session, two_lists, taxonomy, "ben@example.com")
    token = signer.make(CONFIRM, ben.id, ben.email, request.to_payload())
    assert registrar.read_confirmation(session, signer, token) == (ben, request)
    assert registrar.confirm_subscription(
        session, two_lists, taxonomy, signer, token, ip="192.0.2.1"
    ) == (ben, True)
    after = snapshot(ben)
    assert (after["name"], after["topics"], after["lists"]) == ("Stranger", {"empathy"}, ["events"])
    assert (after["status"], after["consent_ip"]) == (ACTIVE, "192.0.2.1")


def test_choices_no_longer_offered_are_left_out_when_the_link_is_used(
    signer, session, settings, taxonomy
):
    ben = add(session, settings, taxonomy, "ben@example.com", topics="training", status=PENDING)
    request = registrar.SubscriptionRequest("", frozenset({"astrology"}), ("gone-list",))
    token = signer.make(CONFIRM, ben.id, ben.email, request.to_payload())
    registrar.confirm_subscription(session, settings, taxonomy, signer, token)
    assert (ben.name, ben.topic_slugs, api.subscribed_lists(ben)) == ("", {"training"}, ["digest"])


def test_a_link_with_odd_choices_does_not_work(signer, session, settings, taxonomy):
    ben = add(session, settings, taxonomy, "ben@example.com", status=PENDING)
    for payload in ({"topics": "empathy"}, {"name": 3}, {"lists": [1]}, {"name": "a\r\nBcc: x"}):
        token = signer.make(CONFIRM, ben.id, ben.email, payload)
        with pytest.raises(LinkProblem) as caught:
            registrar.confirm_subscription(session, settings, taxonomy, signer, token)
        assert caught.value.kind == "invalid"
    assert ben.status == PENDING


def test_only_a_pending_address_gets_a_confirmation_on_request(session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "ana@example.com", status=PENDING)
    assert registrar.pending_for_confirmation(session, "ANA@example.com") is ana
    add(session, settings, taxonomy, "bo@example.com")
    with pytest.raises(SubscriberError, match=r"bo@example\.com is active, not pending"):
        registrar.pending_for_confirmation(session, "bo@example.com")
    with pytest.raises(SubscriberError, match="no subscriber"):
        registrar.pending_for_confirmation(session, "nobody@example.com")


def test_a_suppressed_address_gets_nothing_and_nothing_is_stored(session, settings, taxonomy):
    api.suppress(session, "gone@example.com", "complaint")
    assert ask(session, settings, taxonomy, "gone@example.com", lists=None) is None
    assert api.get_subscriber(session, "gone@example.com") is None
    # Suppressed while still on record (e.g. a complaint): the record is not touched either.
    cleo = add(session, settings, taxonomy, "cleo@example.com", name="Cleo", status=PENDING)
    before = snapshot(cleo)
    api.suppress(session, "cleo@example.com", "complaint")
    assert ask(session, settings, taxonomy, "cleo@example.com", lists=None) is None
    session.expire_all()
    assert snapshot(api.require_subscriber(session, "cleo@example.com")) == before


def test_a_long_name_is_refused(session, settings, taxonomy):
    with pytest.raises(SubscriberError, match=r"too long \(200 characters at most\)"):
        ask(session, settings, taxonomy, "x@example.com", name="x" * 201, lists=None)


def test_a_fresh_link_request(session, settings, taxonomy):
    add(session, settings, taxonomy, "active@example.com")
    add(session, settings, taxonomy, "pending@example.com", status=PENDING)
    add(session, settings, taxonomy, "left@example.com", status=UNSUBSCRIBED)
    add(session, settings, taxonomy, "hidden@example.com")
    api.suppress(session, "hidden@example.com", "forgotten")
    kinds = {
        address: (reply[0] if reply else None)
        for address in ("active", "pending", "left", "hidden", "unknown")
        for reply in [registrar.request_fresh_link(session, f"{address}@example.com")]
    }
    assert kinds == {
        "active": registrar.NEW_LINK,
        "pending": registrar.CONFIRMATION,
        "left": registrar.NEW_LINK,
        "hidden": None,
        "unknown": None,
    }


# --- confirm and re-confirm --------------------------------------------------------------------


def test_confirm_activates_a_pending_subscriber_once(signer, session, settings, taxonomy):
    _, ana, _ = ask(session, settings, taxonomy, "ana@example.com", lists=None)
    token = signer.make(CONFIRM, ana.id, ana.email)
    subscriber, activated = registrar.confirm_subscription(
        session, settings, taxonomy, signer, token, ip="198.51.100.7", source="web"
    )
    assert (subscriber, activated) == (ana, True)
    assert (ana.status, ana.consent_source, ana.consent_ip) == (ACTIVE, "web", "198.51.100.7")
    assert ana.confirmed_at is not None
    stamp = ana.confirmed_at
    again = registrar.confirm_subscription(
        session, settings, taxonomy, signer, token, ip="192.0.2.1"
    )
    assert again == (ana, False)
    assert (ana.confirmed_at, ana.consent_ip) == (stamp, "198.51.100.7")


def test_someone_who_left_comes_back_only_with_a_link_made_after(
    monkeypatch, signer, session, settings, taxonomy
):
    ana = add(session, settings, taxonomy, "ana@example.com", status=PENDING)
    stale = aged_token(monkeypatch, signer, CONFIRM, ana, 3600)
    api.unsubscribe(session, ana)
    with pytest.raises(LinkProblem) as caught:
        registrar.confirm_subscription(session, settings, taxonomy, signer, stale, ip="192.0.2.1")
    assert caught.value.kind == "stale"
    assert "older than your last change" in str(caught.value)
    assert ana.status == UNSUBSCRIBED
    fresh = signer.make(CONFIRM, ana.id, ana.email)
    assert registrar.confirm_subscription(
        session, settings, taxonomy, signer, fresh, ip="192.0.2.1"
    ) == (ana, True)
    assert (ana.status, ana.unsubscribed_at, ana.consent_ip) == (ACTIVE, None, "192.0.2.1")


def test_confirm_refuses_a_link_that_does_not_work(
    monkeypatch, signer, session, settings, taxonomy
):
    ana = add(session, settings, taxonomy, "ana@example.com", status=PENDING)
    expired = aged_token(monkeypatch, signer, CONFIRM, ana, 8 * 86400)
    with pytest.raises(LinkProblem) as caught:
        registrar.confirm_subscription(session, settings, taxonomy, signer, expired)
    assert caught.value.kind == "expired"
    assert ana.status == PENDING


# --- the preference center -------------------------------------------------------------------


def test_resubscribe(session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "ana@example.com")
    api.unsubscribe(session, ana)
    assert api.subscribed_lists(ana) == []
    registrar.resubscribe(session, settings, ana, source="web")
    assert (ana.status, ana.consent_source, api.subscribed_lists(ana)) == (
        ACTIVE,
        "web",
        ["digest"],
    )
    api.suppress(session, ana.email, "complaint")
    api.unsubscribe(session, ana)
    with pytest.raises(SubscriberError, match="suppression"):
        registrar.resubscribe(session, settings, ana)
    assert ana.status == UNSUBSCRIBED


def test_saving_preferences_does_not_put_someone_who_left_back_on_a_list(
    session, two_lists, taxonomy
):
    ana = add(session, two_lists, taxonomy, "ana@example.com")
    registrar.update_preferences(
        session, two_lists, ana, name=" Ana ", topics=frozenset({"empathy"}), lists=["events"]
    )
    assert (ana.name, ana.topic_slugs, api.subscribed_lists(ana)) == (
        "Ana",
        {"empathy"},
        ["events"],
    )
    api.unsubscribe(session, ana)
    registrar.update_preferences(session, two_lists, ana, name="Ana", topics=None, lists=["digest"])
    assert (ana.topic_slugs, api.subscribed_lists(ana), ana.status) == (None, [], UNSUBSCRIBED)


def test_drop_a_topic(session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "ana@example.com", topics="empathy;training")
    assert registrar.follows_topic(ana, "empathy")
    assert registrar.drop_topic(session, taxonomy, ana, "empathy") == registrar.DROPPED
    assert ana.topic_slugs == {"training"}
    assert not registrar.follows_topic(ana, "empathy")
    assert registrar.drop_topic(session, taxonomy, ana, "empathy") == registrar.NOT_FOLLOWED
    assert registrar.drop_topic(session, taxonomy, ana, "training") == registrar.ONLY_TOPIC
    assert ana.topic_slugs == {"training"}
    everything = add(session, settings, taxonomy, "ben@example.com")
    assert registrar.follows_topic(everything, "empathy")
    assert registrar.drop_topic(session, taxonomy, everything, "empathy") == registrar.DROPPED
    # Still a reader of all topics, except one: not a list of today's other topics.
    assert everything.all_topics and everything.topic_slugs is None
    assert everything.excluded_slugs == {"empathy"}
    assert everything.topic_choice == TopicChoice.every({"empathy"})
    assert not registrar.follows_topic(everything, "empathy")
    assert registrar.follows_topic(everything, "training")
    assert registrar.drop_topic(session, taxonomy, everything, "empathy") == registrar.NOT_FOLLOWED
