"""The subscriber service's topics: reading a topics field, and setting what a subscriber
receives — chosen topics, every topic, or every topic except the ones they stopped
(`ExcludedTopic` rows; see `newsletter.content.choice.TopicChoice`).

`newsletter.store.subscribers` re-exports these; like the rest of the store they take a
`Session` (or a record) and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from newsletter.content.choice import TopicChoice
from newsletter.content.taxonomy import Taxonomy
from newsletter.store.models import ExcludedTopic
from newsletter.store.models import Subscriber
from newsletter.store.models import SubscriberTopic

ALL_TOPICS = "*"
# Words that mean "every topic" in a topics field (compared case-insensitively).
_ALL_WORDS = frozenset({"", "*", "all"})
# In a CSV topics cell, "-slug" after "*" is a topic an all-topics subscriber stopped.
EXCLUDE = "-"


def split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


def parse_topics(value: str | Iterable[str] | None, taxonomy: Taxonomy) -> frozenset[str] | None:
    """Topic slugs from labels or slugs (any case, `;`-separated in a string).

    `*`, "all", an empty string or an empty iterable mean "all topics" and give None. An unknown
    topic raises `TaxonomyError` naming the closest labels.
    """
    if value is None:
        return None
    names = split_list(value) if isinstance(value, str) else [str(v).strip() for v in value]
    names = [n for n in names if n]
    if not names or any(n.casefold() in _ALL_WORDS for n in names):
        return None
    return frozenset(taxonomy.topics.get(name).slug for name in names)


def topics_cell(choice: TopicChoice) -> str:
    """The CSV topics cell: "*", "*;-empathy" (every topic but Empathy) or slugs joined by ";"."""
    if choice.chosen is not None:
        return ";".join(sorted(choice.chosen))
    return ";".join([ALL_TOPICS, *(EXCLUDE + slug for slug in sorted(choice.excluded))])


def parse_topic_choice(value: str, taxonomy: Taxonomy) -> TopicChoice:
    """A topics cell: what `parse_topics` reads, plus "*;-slug;…" for every topic but those.
    `TaxonomyError` for an unknown topic, `ValueError` for "-slug" without "*"."""
    names = split_list(value)
    stopped = [name[len(EXCLUDE) :].strip() for name in names if name.startswith(EXCLUDE)]
    if not stopped:
        return TopicChoice.of(parse_topics(value, taxonomy))
    rest = [name for name in names if not name.startswith(EXCLUDE)]
    if not rest or any(name.casefold() not in _ALL_WORDS for name in rest):
        raise ValueError(f"topics {value!r}: '-topic' (a stopped topic) goes only after '*'")
    return TopicChoice.every(taxonomy.topics.get(name).slug for name in stopped)


def topic_rows(topics: frozenset[str] | None) -> list[SubscriberTopic]:
    return [] if topics is None else [SubscriberTopic(topic=slug) for slug in sorted(topics)]


def apply_topics(subscriber: Subscriber, topics: TopicChoice | frozenset[str] | None) -> None:
    choice = TopicChoice.of(topics)
    subscriber.all_topics = choice.all_topics
    # Change rows in place: deleting and re-adding the same primary key in one flush fails.
    wanted = choice.chosen or frozenset()
    subscriber.topics = [row for row in subscriber.topics if row.topic in wanted]
    have = {row.topic for row in subscriber.topics}
    subscriber.topics.extend(SubscriberTopic(topic=slug) for slug in sorted(wanted - have))
    stopped = choice.excluded
    subscriber.excluded_topics = [row for row in subscriber.excluded_topics if row.topic in stopped]
    have = {row.topic for row in subscriber.excluded_topics}
    subscriber.excluded_topics.extend(ExcludedTopic(topic=slug) for slug in sorted(stopped - have))


def set_topics(
    session: Session, subscriber: Subscriber, topics: TopicChoice | frozenset[str] | None
) -> None:
    """Replace what they receive: chosen slugs, None for every topic (see `parse_topics`), or a
    `TopicChoice` (every topic except some). Choosing anew clears the stopped topics."""
    apply_topics(subscriber, topics)
    session.flush()
