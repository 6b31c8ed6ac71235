"""The subscriber API: validation, lists, topics, status changes, suppression, import/export."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func
from sqlalchemy import select

from newsletter.config import ListSpec
from newsletter.config import Settings
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import InvalidAddress
from newsletter.errors import SubscriberError
from newsletter.errors import TaxonomyError
from newsletter.store import import_export
from newsletter.store import subscribers as api
from newsletter.store.models import ACTIVE
from newsletter.store.models import PENDING
from newsletter.store.models import SUBSCRIBED
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import MailingList
from newsletter.store.models import Subscriber
from newsletter.store.models import SubscriberTopic
from newsletter.store.models import Subscription
from newsletter.store.models import Suppression


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def slugs(subscriber: Subscriber) -> frozenset[str] | None:
    return subscriber.topic_slugs


# --- addresses, lists, topics -------------------------------------------------------------


def test_normalize_email_lowercases_the_domain_and_makes_a_key() -> None:
    assert api.normalize_email("  Jane.Doe@Example.ORG ") == (
        "Jane.Doe@example.org",
        "jane.doe@example.org",
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("no-at-sign", "@-sign"),
        ("a@b", "period"),
        ("two..dots@example.org", "two periods"),
        ("x@example.invalid", "special-use"),
    ],
)
def test_normalize_email_rejects_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        api.normalize_email(text)


def test_ensure_lists_creates_and_updates(session, multi: Settings) -> None:
    lists = api.ensure_lists(session, multi)
    assert list(lists) == ["digest", "events", "staff"]
    assert lists["digest"].name == "Test Digest"
    assert lists["staff"].public is False
    multi.lists = [ListSpec(slug="events", name="Events and workshops")]
    again = api.ensure_lists(session, multi)
    assert again["events"].id == lists["events"].id
    assert again["events"].name == "Events and workshops"
    assert count(session, MailingList) == 3  # lists no longer configured are kept


def test_parse_topics_accepts_labels_and_slugs_in_any_case(taxonomy: Taxonomy) -> None:
    assert api.parse_topics("Empathy; attachment ;TRAUMA AND/OR PTSD", taxonomy) == {
        "empathy",
        "attachment",
        "trauma-and-or-ptsd",
    }
    assert api.parse_topics(["Group Psychotherapy", "termination"], taxonomy) == {
        "group-psychotherapy",
        "termination",
    }
    assert api.parse_topics("Adherance", taxonomy) == {"adherence"}  # old spelling


@pytest.mark.parametrize("value", [None, "", "  ", "*", "all", " ALL ", [], ["*"], "empathy;*"])
def test_parse_topics_all(value, taxonomy: Taxonomy) -> None:
    assert api.parse_topics(value, taxonomy) is None


def test_parse_topics_unknown_names_the_closest(taxonomy: Taxonomy) -> None:
    with pytest.raises(TaxonomyError, match="unknown topic 'empaty'; did you mean 'Empathy'"):
        api.parse_topics("attachment;empaty", taxonomy)


# --- add, get, remove ---------------------------------------------------------------------


def test_add_active_subscriber(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(
        session,
        settings,
        taxonomy,
        "Ann@Example.org",
        name=" Ann ",
        topics="Empathy;attachment",
        source="web",
        ip="192.0.2.1",
    )
    assert subscriber.id is not None
    assert subscriber.email == "Ann@example.org"
    assert subscriber.email_key == "ann@example.org"
    assert subscriber.name == "Ann"
    assert subscriber.status == ACTIVE
    assert subscriber.confirmed_at is not None
    assert subscriber.unsubscribed_at is None
    assert (subscriber.consent_source, subscriber.consent_ip) == ("web", "192.0.2.1")
    assert slugs(subscriber) == {"empathy", "attachment"}
    assert api.subscribed_lists(subscriber) == ["digest"]


def test_add_pending_subscriber_is_not_confirmed(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(session, settings, taxonomy, "p@example.org", status=PENDING)
    assert subscriber.confirmed_at is None
    assert slugs(subscriber) is None  # all topics by default


def test_add_rejects_duplicates_case_insensitively(session, settings, taxonomy) -> None:
    api.add_subscriber(session, settings, taxonomy, "dup@example.org")
    with pytest.raises(SubscriberError, match="already subscribed"):
        api.add_subscriber(session, settings, taxonomy, "DUP@Example.Org")
    assert count(session, Subscriber) == 1


def test_add_rejects_unknown_list_and_status(session, multi, taxonomy) -> None:
    with pytest.raises(SubscriberError, match=r"unknown list 'nope' \(known lists: digest"):
        api.add_subscriber(session, multi, taxonomy, "a@example.org", lists=["events", "nope"])
    with pytest.raises(SubscriberError, match="unknown status 'sleeping'"):
        api.add_subscriber(session, multi, taxonomy, "a@example.org", status="sleeping")
    with pytest.raises(InvalidAddress):
        api.add_subscriber(session, multi, taxonomy, "not an address")
    assert count(session, Subscriber) == 0


def test_add_to_several_lists(session, multi, taxonomy) -> None:
    subscriber = api.add_subscriber(
        session, multi, taxonomy, "l@example.org", lists=["staff", "events", "staff"]
    )
    assert api.subscribed_lists(subscriber) == ["events", "staff"]


def test_get_and_require(session, settings, taxonomy) -> None:
    added = api.add_subscriber(session, settings, taxonomy, "g@example.org")
    assert api.get_subscriber(session, " G@EXAMPLE.ORG ") is added
    assert api.get_subscriber(session, "other@example.org") is None
    assert api.get_subscriber(session, "not an address") is None
    with pytest.raises(SubscriberError, match=r"no subscriber other@example\.org"):
        api.require_subscriber(session, "other@example.org")


def test_remove_cascades(session, settings, taxonomy) -> None:
    api.add_subscriber(session, settings, taxonomy, "r@example.org", topics="empathy")
    api.add_subscriber(session, settings, taxonomy, "keep@example.org", topics="empathy")
    api.remove_subscriber(session, "R@example.org")
    assert api.get_subscriber(session, "r@example.org") is None
    assert count(session, Subscriber) == 1
    assert count(session, SubscriberTopic) == 1
    assert count(session, Subscription) == 1
    with pytest.raises(SubscriberError, match="no subscriber"):
        api.remove_subscriber(session, "r@example.org")


# --- suppression --------------------------------------------------------------------------


def test_suppression_stores_only_a_hash(session, settings, taxonomy) -> None:
    api.suppress(session, "Gone@Example.org", "forget-me")
    api.suppress(session, "gone@example.org", "again")  # idempotent, keeps the first reason
    row = session.scalars(select(Suppression)).one()
    assert row.email_hash == hashlib.sha256(b"gone@example.org").hexdigest()
    assert row.reason == "forget-me"
    assert api.is_suppressed(session, "GONE@example.org")
    assert not api.is_suppressed(session, "other@example.org")
    with pytest.raises(SubscriberError, match="suppression list"):
        api.add_subscriber(session, settings, taxonomy, "gone@EXAMPLE.org")


# --- status, topics, lists ----------------------------------------------------------------


def test_confirm_pending(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(session, settings, taxonomy, "c@example.org", status=PENDING)
    api.confirm(session, subscriber, ip="198.51.100.7")
    assert subscriber.status == ACTIVE
    assert subscriber.confirmed_at is not None
    assert subscriber.consent_ip == "198.51.100.7"
    first = subscriber.confirmed_at
    api.confirm(session, subscriber)  # a second click changes nothing
    assert subscriber.confirmed_at == first


def test_confirm_cannot_revive_an_unsubscribed_address(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(session, settings, taxonomy, "u@example.org", status=PENDING)
    api.set_status(session, subscriber, UNSUBSCRIBED)
    with pytest.raises(SubscriberError, match="unsubscribed"):
        api.confirm(session, subscriber)


def test_set_status_timestamps(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(session, settings, taxonomy, "s@example.org", status=PENDING)
    api.set_status(session, subscriber, ACTIVE)
    assert subscriber.confirmed_at is not None
    api.set_status(session, subscriber, UNSUBSCRIBED)
    assert subscriber.unsubscribed_at is not None
    api.set_status(session, subscriber, ACTIVE)
    assert subscriber.unsubscribed_at is None
    with pytest.raises(SubscriberError, match="unknown status"):
        api.set_status(session, subscriber, "gone")


def test_unsubscribe_from_one_list(session, multi, taxonomy) -> None:
    subscriber = api.add_subscriber(
        session, multi, taxonomy, "one@example.org", lists=["digest", "events"]
    )
    api.unsubscribe(session, subscriber, "events")
    assert subscriber.status == ACTIVE
    assert api.subscribed_lists(subscriber) == ["digest"]
    with pytest.raises(SubscriberError, match="not on the list 'staff'"):
        api.unsubscribe(session, subscriber, "staff")


def test_unsubscribe_globally(session, multi, taxonomy) -> None:
    subscriber = api.add_subscriber(
        session, multi, taxonomy, "all@example.org", lists=["digest", "events"]
    )
    api.unsubscribe(session, subscriber)
    assert subscriber.status == UNSUBSCRIBED
    assert subscriber.unsubscribed_at is not None
    assert api.subscribed_lists(subscriber) == []
    assert {s.status for s in subscriber.subscriptions} == {UNSUBSCRIBED}


def test_set_topics(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(session, settings, taxonomy, "t@example.org", topics="empathy")
    api.set_topics(session, subscriber, frozenset({"empathy", "training"}))  # overlapping set
    assert slugs(subscriber) == {"empathy", "training"}
    api.set_topics(session, subscriber, None)
    assert slugs(subscriber) is None
    assert count(session, SubscriberTopic) == 0
    api.set_topics(session, subscriber, frozenset({"termination"}))
    session.expire_all()
    assert slugs(api.require_subscriber(session, "t@example.org")) == {"termination"}


def test_set_lists_keeps_unsubscribed_rows(session, multi, taxonomy) -> None:
    subscriber = api.add_subscriber(session, multi, taxonomy, "sl@example.org")
    api.set_lists(session, multi, subscriber, ["events", "staff"])
    assert api.subscribed_lists(subscriber) == ["events", "staff"]
    statuses = {s.mailing_list.slug: s.status for s in subscriber.subscriptions}
    assert statuses == {"digest": UNSUBSCRIBED, "events": SUBSCRIBED, "staff": SUBSCRIBED}
    api.set_lists(session, multi, subscriber, ["digest"])
    assert api.subscribed_lists(subscriber) == ["digest"]
    with pytest.raises(SubscriberError, match="unknown list 'x'"):
        api.set_lists(session, multi, subscriber, ["x"])


def test_query_subscribers(session, multi, taxonomy) -> None:
    add = api.add_subscriber
    add(session, multi, taxonomy, "everything@example.org", name="Eve")
    add(session, multi, taxonomy, "empathy@example.org", topics="empathy", lists=["events"])
    add(session, multi, taxonomy, "train@example.org", topics="training", status=PENDING)
    add(session, multi, taxonomy, "odd_100%@example.org", name="Percy")
    unsub = add(session, multi, taxonomy, "gone@example.org", lists=["digest", "events"])
    api.unsubscribe(session, unsub, "events")

    def emails(**filters) -> list[str]:
        return [s.email for s in api.query_subscribers(session, **filters)]

    assert len(emails()) == 5
    assert emails(status=PENDING) == ["train@example.org"]
    assert emails(list_slug="events") == ["empathy@example.org"]
    # all-topics subscribers get every topic
    assert emails(topic="empathy") == [
        "everything@example.org",
        "empathy@example.org",
        "odd_100%@example.org",
        "gone@example.org",
    ]
    assert emails(topic="training", status=PENDING) == ["train@example.org"]
    assert emails(search="EVE") == ["everything@example.org"]
    assert emails(search="percy") == ["odd_100%@example.org"]
    assert emails(search="_100%") == ["odd_100%@example.org"]  # LIKE wildcards are literal
    assert emails(limit=2, offset=1) == ["empathy@example.org", "train@example.org"]


def test_subscriber_to_dict(session, settings, taxonomy) -> None:
    subscriber = api.add_subscriber(
        session, settings, taxonomy, "d@example.org", name="Dee", topics="training;empathy"
    )
    record = import_export.subscriber_to_dict(subscriber)
    assert record["topics"] == ["empathy", "training"]
    assert record["lists"] == ["digest"]
    assert record["status"] == ACTIVE
    assert record["consent_source"] == "cli"
    assert record["unsubscribed_at"] is None
    assert record["created_at"].endswith("+00:00")
    assert record["confirmed_at"].startswith(record["created_at"][:10])
    api.set_topics(session, subscriber, None)
    assert import_export.subscriber_to_dict(subscriber)["topics"] == "*"


def test_search_folds_the_case_of_every_letter(session, settings, taxonomy) -> None:
    api.add_subscriber(session, settings, taxonomy, "emilie@example.org", name="Émilie Dubois")
    api.add_subscriber(session, settings, taxonomy, "zoe@example.org", name="ZOË")
    found = [s.email for s in api.query_subscribers(session, search="émilie")]
    assert found == ["emilie@example.org"]
    assert [s.email for s in api.query_subscribers(session, search="zoë")] == ["zoe@example.org"]
