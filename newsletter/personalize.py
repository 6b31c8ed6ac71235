"""Per-subscriber parts of a message, without re-rendering (pure, no I/O).

A subscriber's *variant* is the set of the issue's summaries that meet their topics (plus
whether to show, under each summary, why the reader got it and "stop sending me <topic>" links:
every reader's variant shows them, all-topics readers included; only the whole issue sent to a
reader none of whose topics is in it does not). Each variant is rendered once with slots
like `XNLUNSUBX`: plain alphanumeric markers, because they must survive MJML, premailer (which
rewrites `href` values) and the transfer encoding. `SlotTemplate` splits a rendering at its
slots once, so filling in one subscriber is a list join.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.content.choice import TopicChoice
from newsletter.content.model import Issue
from newsletter.content.model import Summary
from newsletter.render.text import wrap_text
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer

SLOT_RE = re.compile(r"XNL([A-Z]+[0-9]*)X")
GREETING = "GREETING"
EMAIL = "EMAIL"
UNSUB = "UNSUB"
PREFS = "PREFS"
MATCH = "MATCH"  # MATCH1, MATCH2, ...: why the reader got each summary, in variant order
DROP = "DROP"  # DROP1, DROP2, ...: "stop sending me <topic>" links for the topics that matched
DROP_LINK_STYLE = "color:#0b6e69"  # filled in after premailer ran, so the style is inline


@dataclass(frozen=True)
class VariantKey:
    """Which summaries (by slug, in issue order) and whether the match lines are shown."""

    slugs: tuple[str, ...]
    personal: bool

    def encode(self) -> str:
        """Compact form stored in the ledger: 'slug-a,slug-b' or 'slug-a,slug-b;topics'."""
        return ",".join(self.slugs) + (";topics" if self.personal else "")

    @classmethod
    def decode(cls, text: str) -> VariantKey:
        """Inverse of `encode`."""
        slugs, _, flag = text.partition(";")
        return cls(tuple(s for s in slugs.split(",") if s), flag == "topics")


def choose_variant(
    issue: Issue, topics: TopicChoice | frozenset[str] | None, on_no_match: str = "skip"
) -> VariantKey | None:
    """The variant for a subscriber's topics (None = all topics); None if they get nothing.

    A summary is in it when one of its topics is the reader's: a reader of every topic except
    X gets a summary about X and Y, because of Y.
    """
    choice = TopicChoice.of(topics)
    chosen = tuple(issue.summary_name(s) for s in issue.summaries if choice.matching(s.topic_slugs))
    if chosen:
        return VariantKey(chosen, True)
    if on_no_match == "full":
        return VariantKey(tuple(issue.summary_name(s) for s in issue.summaries), False)
    return None


def variant_summaries(issue: Issue, key: VariantKey) -> tuple[Summary, ...]:
    """The Summary objects named by a variant key (KeyError if the content changed)."""
    return tuple(issue.summary(slug) for slug in key.slugs)


class SlotTemplate:
    """A rendered string split at its slots once; `fill` joins it with values."""

    __slots__ = ("_names", "_parts")

    def __init__(self, text: str) -> None:
        pieces = SLOT_RE.split(text)
        self._parts = pieces  # literal, name, literal, name, ..., literal
        self._names = pieces[1::2]

    def fill(self, values: Mapping[str, str]) -> str:
        """The text with every slot replaced; KeyError names a slot with no value."""
        parts = self._parts.copy()
        for index in range(1, len(parts), 2):
            parts[index] = values[parts[index]]
        return "".join(parts)


@dataclass(frozen=True)
class Recipient:
    """What personalization needs to know about one subscriber."""

    email: str
    name: str
    topics: TopicChoice
    unsubscribe_token: str
    preferences_token: str


def greeting(name: str) -> str:
    """'Dear Ana,' or 'Hello,' when there is no name."""
    first = name.strip()
    return f"Dear {first}," if first else "Hello,"


def slot_values(
    recipient: Recipient, summaries: Iterable[Summary], *, for_html: bool, base_url: str = ""
) -> dict[str, str]:
    """The value of every slot for one recipient (HTML-escaped when `for_html`)."""
    text, markup = slot_value_pair(recipient, summaries, base_url)
    return markup if for_html else text


def slot_value_pair(
    recipient: Recipient, summaries: Iterable[Summary], base_url: str = ""
) -> tuple[dict[str, str], dict[str, str]]:
    """`slot_values` for the text part and for the HTML part of one message, each summary's
    matching topics and why-line worked out once for both (per message, on the send's hot
    path)."""
    escape = html.escape
    name = greeting(recipient.name)
    token = recipient.preferences_token
    text = {
        GREETING: name,
        EMAIL: recipient.email,
        UNSUB: recipient.unsubscribe_token,
        PREFS: token,
    }
    markup = {
        GREETING: escape(name),
        EMAIL: escape(recipient.email),
        UNSUB: recipient.unsubscribe_token,
        PREFS: token,
    }
    for index, summary in enumerate(summaries, start=1):
        matched = matched_topics(summary, recipient.topics)
        why = _why(summary, recipient.topics, matched)
        text[f"{MATCH}{index}"] = _wrapped(why)
        markup[f"{MATCH}{index}"] = escape(why)
        text[f"{DROP}{index}"] = drop_lines(matched, base_url, token)
        markup[f"{DROP}{index}"] = drop_links(matched, base_url, token)
    return text, markup


# The text part's why-line, wrapped at its column like the text around it. A send meets only a
# few distinct lines (one per summary and kind of topic choice), so each is wrapped once.
_wrapped = functools.lru_cache(maxsize=4096)(wrap_text)


def matched_topics(summary: Summary, topics: TopicChoice) -> list[tuple[str, str]]:
    """(slug, label) of the summary's topics that the subscriber receives: for a reader of
    every topic, all of them but the ones they stopped."""
    return [(t.slug, t.label) for t in summary.topics if topics.receives(t.slug)]


def why_line(summary: Summary, topics: TopicChoice) -> str:
    """Why the reader got this summary, in words ('' when none of their topics is in it)."""
    return _why(summary, topics, matched_topics(summary, topics))


def _why(summary: Summary, topics: TopicChoice, matched: list[tuple[str, str]]) -> str:
    labels = ", ".join(label for _slug, label in matched)
    if not labels:
        return ""
    if topics.chosen is not None:
        return f"Matches your topics: {labels}"
    if not topics.excluded:
        return "You receive all topics"
    stopped = ", ".join(t.label for t in summary.topics if t.slug in topics.excluded)
    return f"Matches your topics: {labels}" + (f" (you stopped {stopped})" if stopped else "")


def drop_url(base_url: str, token: str, slug: str) -> str:
    """The preference center's "stop sending me <topic>" page (it asks before changing)."""
    return f"{base_url}/preferences/{token}?drop={slug}"


def drop_links(matched: list[tuple[str, str]], base_url: str, token: str) -> str:
    """HTML: one "Stop sending me <topic>" link per topic the reader follows."""
    if not matched:
        return ""
    links = " · ".join(
        f'<a href="{drop_url(base_url, token, slug)}" style="{DROP_LINK_STYLE}">'
        f"Stop sending me {html.escape(label)}</a>"
        for slug, label in matched
    )
    return f"Not for you? {links}"


def drop_lines(matched: list[tuple[str, str]], base_url: str, token: str) -> str:
    """Text: "Stop sending me <topic>:" and its address on the next line, per topic."""
    lines = "\n".join(
        f"Stop sending me {label}:\n{drop_url(base_url, token, slug)}" for slug, label in matched
    )
    return f"Not for you? {lines}" if lines else ""


def make_recipient(
    settings: Settings,
    email: str,
    name: str,
    topics: TopicChoice | frozenset[str] | None,
    subscriber_id: int = 0,
) -> Recipient:
    """A recipient with real signed tokens (id 0 for test addresses: their links are inert)."""
    signer = Signer(settings.secret_key())
    return Recipient(
        email=email,
        name=name,
        topics=TopicChoice.of(topics),
        unsubscribe_token=signer.make(UNSUBSCRIBE, subscriber_id, email),
        preferences_token=signer.make(PREFERENCES, subscriber_id, email),
    )
