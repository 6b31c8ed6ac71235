"""The reader's side of the subscriber service (real SQLite): coming back keeps the topics,
subscribing after "forget me", links of deleted records, pause, frequency, change of address,
and the anonymous unsubscribe reasons."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import inspect
from sqlalchemy import select

from newsletter.config import ListSpec
from newsletter.errors import InvalidAddress
from newsletter.errors import LinkProblem
from newsletter.errors import SubscriberConflict
from newsletter.errors import SubscriberError
from newsletter.store import address_change
from newsletter.store import feedback
from newsletter.store import registrar
from newsletter.store import subscribers as api
from newsletter.store.models import ACTIVE
from newsletter.store.models import PENDING
from newsletter.store.models import QUARTERLY
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import Campaign
from newsletter.store.models import MailingList
from newsletter.store.models import UnsubscribeReason
from newsletter.tokens import ADDRESS
from newsletter.tokens import CONFIRM
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer

NOW = dt.datetime(2026, 8, 31, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def signer(settings) -> Signer:
    return Signer(settings.secret_key())


def add(session, settings, taxonomy, address: str, **options):
    return api.add_subscriber(session, settings, taxonomy, address, **options)


def ask(session, settings, taxonomy, address: str, topics=None):
    return registrar.request_subscription(
        session, settings, taxonomy, address, topics=topics, source="web", ip="203.0.113.9"
    )


def confirm_reply(session, settings, taxonomy, signer, reply):
    payload = None if reply.request is None else reply.request.to_payload()
    token = signer.make(CONFIRM, reply.subscriber.id, reply.subscriber.email, payload)
    return registrar.confirm_subscription(session, settings, taxonomy, signer, token)


# --- coming back through the subscribe form ---------------------------------------------------


def test_coming_back_with_all_topics_keeps_the_chosen_topics(session, settings, taxonomy, signer):
    ana = add(session, settings, taxonomy, "ana@example.com", topics="empathy,training")
    api.unsubscribe(session, ana)
    reply = ask(session, settings, taxonomy, "ana@example.com")  # the form's default: all
    assert reply.kind == registrar.CONFIRMATION
    assert reply.request.topics == {"empathy", "training"}  # the mail and link say so
    assert confirm_reply(session, settings, taxonomy, signer, reply) == (ana, True)
    assert (ana.status, ana.topic_slugs) == (ACTIVE, {"empathy", "training"})


def test_coming_back_with_ticked_topics_takes_the_new_ones(session, settings, taxonomy, signer):
    ana = add(session, settings, taxonomy, "ana@example.com", topics="empathy")
    api.unsubscribe(session, ana)
    reply = ask(session, settings, taxonomy, "ana@example.com", topics=frozenset({"training"}))
    confirm_reply(session, settings, taxonomy, signer, reply)
    assert ana.topic_slugs == {"training"}


def test_coming_back_keeps_all_topics_except_the_stopped(session, settings, taxonomy, signer):
    ana = add(session, settings, taxonomy, "ana@example.com")
    assert registrar.drop_topic(session, taxonomy, ana, "empathy") == registrar.DROPPED
    api.unsubscribe(session, ana)
    reply = ask(session, settings, taxonomy, "ana@example.com")
    confirm_reply(session, settings, taxonomy, signer, reply)
    assert (ana.status, ana.topic_slugs, ana.excluded_slugs) == (ACTIVE, None, {"empathy"})


def test_a_pending_request_still_takes_all_topics(session, settings, taxonomy, signer):
    ben = add(session, settings, taxonomy, "ben@example.com", topics="empathy", status=PENDING)
    reply = ask(session, settings, taxonomy, "ben@example.com")
    confirm_reply(session, settings, taxonomy, signer, reply)
    assert (ben.status, ben.topic_slugs) == (ACTIVE, None)


# --- after "forget me" ------------------------------------------------------------------------


def test_subscribing_after_forget_me_sends_a_confirmation_that_lifts_it(
    session, settings, taxonomy, signer
):
    ana = add(session, settings, taxonomy, "ana@example.com")
    old = signer.make(PREFERENCES, ana.id, ana.email)
    api.forget_subscriber(session, ana)
    reply = ask(session, settings, taxonomy, "Ana@example.com")
    assert reply.kind == registrar.CONFIRMATION
    fresh = reply.subscriber
    assert (fresh.status, api.is_suppressed(session, "ana@example.com")) == (PENDING, True)
    assert confirm_reply(session, settings, taxonomy, signer, reply) == (fresh, True)
    assert fresh.status == ACTIVE
    assert not api.is_suppressed(session, "ana@example.com")
    # The links of the deleted record say so: the new record never gets its id (0011).
    assert fresh.id != ana.id
    with pytest.raises(LinkProblem) as caught:
        registrar.subscriber_for_token(session, signer, PREFERENCES, old)
    assert caught.value.kind == "deleted"


@pytest.mark.parametrize("address", ["ana@example.com", "bo@example.com"])
def test_a_forgotten_subscribers_link_never_acts_on_who_comes_next(
    session, settings, taxonomy, signer, address
):
    """The forgotten record had the highest id, the one plain SQLite gives again after a
    delete: the next subscriber (the same person or someone else) gets a new one, and every
    link of the forgotten record keeps saying the data was deleted."""
    add(session, settings, taxonomy, "keep@example.com")
    ana = add(session, settings, taxonomy, "ana@example.com")
    links = {
        purpose: signer.make(purpose, ana.id, ana.email)
        for purpose in (PREFERENCES, UNSUBSCRIBE, CONFIRM)
    }
    forgotten_id = ana.id
    api.forget_subscriber(session, ana)
    session.commit()
    if address == "ana@example.com":
        api.lift_suppression(session, address)  # she subscribes again, anew
    newcomer = add(session, settings, taxonomy, address)
    session.commit()
    assert newcomer.id > forgotten_id
    for purpose, token in links.items():
        with pytest.raises(LinkProblem) as caught:
            registrar.subscriber_for_token(session, signer, purpose, token)
        assert caught.value.kind == "deleted", purpose
    assert newcomer.status == ACTIVE and api.get_subscriber(session, address) is newcomer


def test_a_complaint_or_bounce_suppression_still_gets_nothing(session, settings, taxonomy):
    api.suppress(session, "cleo@example.com", "complaint")
    assert ask(session, settings, taxonomy, "cleo@example.com") is None
    assert api.get_subscriber(session, "cleo@example.com") is None


def test_links_of_a_forgotten_subscriber_say_the_data_was_deleted(
    session, settings, taxonomy, signer
):
    add(session, settings, taxonomy, "keep@example.com")  # so the forgotten id is not reused
    ana = add(session, settings, taxonomy, "ana@example.com")
    add(session, settings, taxonomy, "last@example.com")
    token = signer.make(PREFERENCES, ana.id, ana.email)
    api.forget_subscriber(session, ana)
    with pytest.raises(LinkProblem) as caught:
        registrar.subscriber_for_token(session, signer, PREFERENCES, token)
    assert caught.value.kind == "deleted"
    assert "has been deleted" in str(caught.value)


# --- pause and frequency ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("months", "until"),
    [
        (1, dt.datetime(2026, 9, 30, 12, 0, tzinfo=dt.UTC)),
        (6, NOW.replace(year=2027, month=2, day=28)),
    ],
)
def test_pause_for_some_months(session, settings, taxonomy, months, until):
    ana = add(session, settings, taxonomy, "ana@example.com")
    assert registrar.pause(session, ana, months, NOW) == until
    session.expire_all()
    assert ana.paused_until == until
    assert registrar.paused_until(ana, NOW) == until
    assert registrar.paused_until(ana, until) is None  # over: it resumes by itself
    registrar.resume(session, ana)
    assert ana.paused_until is None


@pytest.mark.parametrize("months", [0, 7, -1, True, "3"])
def test_pause_refuses_other_lengths(session, settings, taxonomy, months):
    ana = add(session, settings, taxonomy, "ana@example.com")
    with pytest.raises(SubscriberError, match="month"):
        registrar.pause(session, ana, months, NOW)
    assert ana.paused_until is None


def test_pause_needs_an_active_subscriber(session, settings, taxonomy):
    ben = add(session, settings, taxonomy, "ben@example.com", status=UNSUBSCRIBED)
    with pytest.raises(SubscriberError, match="nothing to pause"):
        registrar.pause(session, ben, 2, NOW)


def test_frequency(session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "ana@example.com")
    assert ana.frequency == "monthly"
    registrar.set_frequency(session, ana, QUARTERLY)
    session.expire_all()
    assert ana.frequency == QUARTERLY
    with pytest.raises(SubscriberError, match="unknown frequency 'weekly'"):
        registrar.set_frequency(session, ana, "weekly")
    assert ana.frequency == QUARTERLY


# --- change of address ------------------------------------------------------------------------


def test_change_of_address_needs_the_link_mailed_to_the_new_one(
    session, settings, taxonomy, signer
):
    ana = add(session, settings, taxonomy, "ana@example.com", topics="empathy")
    assert address_change.request_address_change(session, ana, " Ana.New@Example.com ") == (
        "Ana.New@example.com"
    )
    token = signer.make(ADDRESS, ana.id, ana.email, {"email": "Ana.New@example.com"})
    assert address_change.new_address_in(signer, token) == "Ana.New@example.com"
    assert address_change.change_address(session, signer, token) is ana
    assert (ana.email, ana.email_key, ana.topic_slugs) == (
        "Ana.New@example.com",
        "ana.new@example.com",
        {"empathy"},
    )
    # Used once: the link named the old address, so it no longer matches.
    with pytest.raises(LinkProblem) as caught:
        address_change.change_address(session, signer, token)
    assert caught.value.kind == "gone"


def test_an_address_of_someone_else_gets_no_link(session, settings, taxonomy, signer):
    ana = add(session, settings, taxonomy, "ana@example.com")
    add(session, settings, taxonomy, "ben@example.com", status=UNSUBSCRIBED)
    api.suppress(session, "cleo@example.com", "complaint")
    api.suppress(session, "dora@example.com", "forgotten")
    ask_for = address_change.request_address_change
    assert ask_for(session, ana, "BEN@example.com") is None
    assert ask_for(session, ana, "cleo@example.com") is None
    assert ask_for(session, ana, "ana@EXAMPLE.com") is None  # the same address
    assert ask_for(session, ana, "dora@example.com") == "dora@example.com"  # forgotten: free
    with pytest.raises(InvalidAddress):
        ask_for(session, ana, "not an address")


def test_an_address_taken_meanwhile_is_refused_when_the_link_comes_back(
    session, settings, taxonomy, signer
):
    ana = add(session, settings, taxonomy, "ana@example.com")
    token = signer.make(ADDRESS, ana.id, ana.email, {"email": "new@example.com"})
    add(session, settings, taxonomy, "new@example.com")
    with pytest.raises(SubscriberConflict):
        address_change.change_address(session, signer, token)
    assert ana.email == "ana@example.com"


def test_address_links_of_another_kind_or_without_an_address_do_not_work(
    session, settings, taxonomy, signer
):
    ana = add(session, settings, taxonomy, "ana@example.com")
    for token in (
        signer.make(PREFERENCES, ana.id, ana.email),
        signer.make(ADDRESS, ana.id, ana.email),
        signer.make(ADDRESS, ana.id, ana.email, {"email": 3}),
        "x" * 500,
    ):
        with pytest.raises(LinkProblem) as caught:
            address_change.change_address(session, signer, token)
        assert caught.value.kind == "invalid"
    assert ana.email == "ana@example.com"


# --- unsubscribe reasons ----------------------------------------------------------------------


def test_reason_counts_keep_no_subscriber(session):
    session.add(Campaign(month="2026-10", subject="October"))
    session.add(Campaign(month="2026-11", subject="November"))
    session.flush()
    feedback.record_unsubscribe_reason(session, "too_frequent", on=dt.date(2026, 11, 2))
    feedback.record_unsubscribe_reason(session, "too_frequent", on=dt.date(2026, 11, 20))
    feedback.record_unsubscribe_reason(session, "other", on=dt.date(2026, 10, 1))
    assert feedback.unsubscribe_reason_counts(session) == {
        "too_frequent": 2,
        "not_relevant": 0,
        "too_long": 0,
        "other": 1,
    }
    since = feedback.unsubscribe_reason_counts(session, since=dt.date(2026, 11, 1))
    assert since == {"too_frequent": 2, "not_relevant": 0, "too_long": 0, "other": 0}
    rows = session.scalars(select(UnsubscribeReason)).all()
    assert {row.campaign_month for row in rows} == {"2026-11"}
    columns = {
        column["name"] for column in inspect(session.bind).get_columns("unsubscribe_reasons")
    }
    assert columns == {"id", "reason", "campaign_month", "on_date"}


def test_an_unknown_reason_is_refused(session):
    with pytest.raises(SubscriberError, match="unknown reason 'bored'"):
        feedback.record_unsubscribe_reason(session, "bored")
    assert feedback.unsubscribe_reason_counts(session)["other"] == 0


def test_list_descriptions_come_from_the_config(session, settings, taxonomy):
    settings.lists = [
        ListSpec(slug="events", name="Events", description="Workshops, twice a year.")
    ]
    api.ensure_lists(session, settings)
    row = session.scalar(select(MailingList).where(MailingList.slug == "events"))
    assert row.description == "Workshops, twice a year."
    settings.lists = [ListSpec(slug="events", name="Events", description="Workshops.")]
    api.ensure_lists(session, settings)
    assert row.description == "Workshops."
