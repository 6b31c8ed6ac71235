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
from newsletter.errors import TaxonomyError
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


# At most this many comma-separated pieces are regrouped into labels (see `_regroup`).
_MAX_PIECES = 60


def parse_topics(value: str | Iterable[str] | None, taxonomy: Taxonomy) -> frozenset[str] | None:
    """Topic slugs from labels or slugs (any case), `;`-separated in a string, as in the CSV.

    The one parser of a topics option (`subscribers add --topics`, `send --test-to … --topics`,
    `preview --topics`): labels may hold commas ("Attendance, Attrition, and Drop-Out"), so `;`
    separates them. For the older comma form, a part that is not a topic but whose
    comma-separated pieces regroup into topics is read as those ("empathy,training").
    `*`, "all", an empty string or an empty iterable mean "all topics" and give None. An unknown
    topic raises `TaxonomyError` naming it, with close labels other than what was typed.
    """
    if value is None:
        return None
    names = split_list(value) if isinstance(value, str) else [str(v).strip() for v in value]
    names = [n for n in names if n]
    if not names or any(n.casefold() in _ALL_WORDS for n in names):
        return None
    return frozenset(slug for name in names for slug in topic_slugs(name, taxonomy))


def topic_slugs(name: str, taxonomy: Taxonomy) -> list[str]:
    """The slug of one topic name, or of the topics its comma-separated pieces name; else
    `TaxonomyError` (see `unknown_topic_message`)."""
    term = taxonomy.topics.find(name)
    if term is not None:
        return [term.slug]
    pieces = [piece.strip() for piece in name.split(",")]
    if 1 < len(pieces) <= _MAX_PIECES and all(pieces):
        grouped = _regroup(tuple(pieces), taxonomy, {})
        if grouped is not None:
            return grouped
    raise TaxonomyError(unknown_topic_message(name, taxonomy))


def _regroup(
    pieces: tuple[str, ...], taxonomy: Taxonomy, memo: dict[int, list[str] | None]
) -> list[str] | None:
    """Slugs for `pieces` split into runs that each name a topic (longest run first), or None.

    Hand-written: a comma is both a separator (old form) and part of labels, so the pieces are
    regrouped; a memo keeps it linear in the number of ways to split."""
    n = len(pieces)

    def from_(start: int) -> list[str] | None:
        if start == n:
            return []
        if start not in memo:
            memo[start] = None
            for end in range(n, start, -1):
                term = taxonomy.topics.find(", ".join(pieces[start:end]))
                rest = from_(end) if term is not None else None
                if term is not None and rest is not None:
                    memo[start] = [term.slug, *rest]
                    break
        return memo[start]

    return from_(0)


def unknown_topic_message(name: str, taxonomy: Taxonomy) -> str:
    """ "unknown topic 'X'; did you mean 'Y'?": only real close matches, never what was typed.

    In a comma-separated part some of whose pieces are topics ("Empathy, Trainin"), it names
    the unknown pieces and suggests labels for them only (not the topics already typed), and
    says that `;` separates topics."""
    vocabulary = taxonomy.topics
    pieces = [piece.strip() for piece in name.split(",") if piece.strip()]
    typed = {term.label for term in map(vocabulary.find, pieces) if term is not None}
    unknown = [piece for piece in pieces if vocabulary.find(piece) is None]
    if len(pieces) > 1 and typed and unknown:
        wanted = unknown
        what = f"unknown topic{'s' if len(unknown) > 1 else ''} "
        what += ", ".join(repr(piece) for piece in unknown) + f" in {name.strip()!r}"
    else:
        wanted = [name]
        what = f"unknown topic {name.strip()!r}"
    said = {text.strip().casefold() for text in [name, *pieces]}
    hints = [
        label
        for label in dict.fromkeys(h for piece in wanted for h in vocabulary.suggestions(piece))
        if label not in typed and label.casefold() not in said
    ][:3]
    separator = " (topics are separated by ';')" if "," in name and typed else ""
    hint = f"; did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
    return what + separator + hint


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
    return TopicChoice.every(slug for name in stopped for slug in topic_slugs(name, taxonomy))


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
