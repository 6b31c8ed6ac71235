"""The subscriber service's admin operations: an admin's edit of one subscriber, and one
change to every subscriber of a selection (the admin's bulk change). Part of the subscriber
service beside `registrar` (workflows) and `subscribers` (records): the web admin holds no
rules of its own."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.content.choice import TopicChoice
from newsletter.errors import SubscriberError
from newsletter.store.models import SUBSCRIBER_STATUSES
from newsletter.store.models import Subscriber
from newsletter.store.subscribers import change_status
from newsletter.store.subscribers import clean_name
from newsletter.store.subscribers import is_subscribed
from newsletter.store.subscribers import require_list
from newsletter.store.subscribers import set_lists
from newsletter.store.subscribers import set_topics
from newsletter.store.subscribers import subscribed_lists


def admin_edit(
    session: Session,
    settings: Settings,
    subscriber: Subscriber,
    *,
    name: str,
    topics: TopicChoice | frozenset[str] | None,
    lists: Iterable[str],
) -> list[str]:
    """An admin's edit of one subscriber: name, topics and lists (not the address, which only a
    confirmation mail to the new address may change). The lists are set as given, except that
    someone who left (unsubscribed, bounced, complained) is put on no list: an admin does not
    give consent for them. Returns what changed, in words, for the audit log."""
    changed = []
    cleaned = clean_name(name)
    if cleaned != subscriber.name:
        subscriber.name = cleaned
        changed.append("name")
    before = subscriber.topic_choice
    set_topics(session, subscriber, topics)
    if subscriber.topic_choice != before:
        changed.append("topics")
    wanted = sorted(dict.fromkeys(lists))
    if not is_subscribed(subscriber) and wanted:
        raise SubscriberError(
            f"{subscriber.email} is {subscriber.status}: an admin cannot put them on a list "
            "(they subscribe again themselves)"
        )
    if wanted != subscribed_lists(subscriber):
        set_lists(session, settings, subscriber, wanted)
        changed.append("lists")
    session.flush()
    return changed


BULK_ACTIONS = ("status", "add-list", "remove-list")


def bulk_change(
    session: Session,
    settings: Settings,
    subscribers: Iterable[Subscriber],
    action: str,
    value: str,
) -> tuple[int, int]:
    """One change to every subscriber of a selection: a status (`change_status`), or joining
    or leaving one list. (changed, unchanged): a subscriber already so, or one who left and so
    cannot be put on a list, counts as unchanged. `SubscriberError` for an unknown action,
    status or list, before anything changes."""
    if action not in BULK_ACTIONS:
        raise SubscriberError(f"unknown bulk action {action[:40]!r}; known: {BULK_ACTIONS}")
    if action == "status":
        if value not in SUBSCRIBER_STATUSES:
            raise SubscriberError(f"unknown status {value[:40]!r}")
    else:
        require_list(session, settings, value)
    changed = unchanged = 0
    for subscriber in subscribers:
        if action == "status":
            if subscriber.status == value:
                unchanged += 1
                continue
            change_status(session, subscriber, value)
        else:
            have = subscribed_lists(subscriber)
            if action == "add-list":
                if value in have or not is_subscribed(subscriber):
                    unchanged += 1
                    continue
                set_lists(session, settings, subscriber, [*have, value])
            else:
                if value not in have:
                    unchanged += 1
                    continue
                set_lists(session, settings, subscriber, [s for s in have if s != value])
        changed += 1
    session.flush()
    return changed, unchanged
