"""Reading the subscriber forms: topic and list choices, with messages a person can act on."""

from __future__ import annotations

from collections.abc import Sequence

from newsletter.config import ListSpec
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import FormProblem
from newsletter.errors import InvalidAddress
from newsletter.errors import SubscriberConflict
from newsletter.errors import SubscriberError
from newsletter.errors import TaxonomyError
from newsletter.store.subscribers import clean_name

MAX_CHOICES = 500


def topic_choice(taxonomy: Taxonomy, mode: str, topics: Sequence[str]) -> frozenset[str] | None:
    """None for "all topics", else the chosen slugs; FormProblem for unknown or no topics."""
    if mode != "some":
        return None
    if len(topics) > MAX_CHOICES:
        raise FormProblem("Too many topics in this form.", "topics")
    chosen: set[str] = set()
    for name in topics:
        term = taxonomy.topics.find(name) if isinstance(name, str) and name.strip() else None
        if term is None:
            raise FormProblem(
                f"Unknown topic {name[:80]!r}: choose topics from the list.", "topics"
            )
        chosen.add(term.slug)
    if not chosen:
        raise FormProblem("Choose at least one topic, or choose “All topics”.", "topics")
    return frozenset(chosen)


def list_choice(
    available: Sequence[ListSpec], default: str, lists: Sequence[str], *, keep: Sequence[str] = ()
) -> list[str]:
    """The chosen list slugs among `available` (plus `keep`: lists they are already on).

    No lists in the form means the default list when the form offered no choice of list.
    """
    allowed = {spec.slug for spec in available} | set(keep)
    chosen = list(dict.fromkeys(slug for slug in lists if isinstance(slug, str)))
    if len(chosen) > MAX_CHOICES:
        raise FormProblem("Too many lists in this form.", "lists")
    for slug in chosen:
        if slug not in allowed:
            raise FormProblem(f"Unknown list {slug[:80]!r}.", "lists")
    if not chosen:
        if len(available) > 1:
            raise FormProblem("Choose at least one list.", "lists")
        chosen = [available[0].slug] if available else [default]
    return chosen


def name_choice(name: str) -> str:
    """The name as the subscriber service stores it; `FormProblem` saying what to fix."""
    try:
        return clean_name(name)
    except SubscriberError as problem:
        raise FormProblem(f"Please check your name: {problem}.", "name") from None


def field_errors(error: Exception, prefix: str = "") -> dict[str, list[str]]:
    """{field: [message]} tying a refused form to the field it is about ({} for none), for the
    admin forms' `aria-describedby` (templates/web/admin/_fields.html). The field is the one a
    `FormProblem` names, else read from the error's kind: an address (invalid, or already
    subscribed or suppressed), a topic, a list or a name. `prefix` is the form's own prefix of
    its field ids (two forms of one page may share a field name)."""
    text = str(error)
    field = ""
    if isinstance(error, FormProblem):
        field = error.field
    elif isinstance(error, InvalidAddress | SubscriberConflict):
        field = "email"
    elif isinstance(error, TaxonomyError):
        field = "topics"
    elif isinstance(error, SubscriberError):
        lowered = text.lower()
        field = "name" if "name" in lowered else "lists" if "list" in lowered else ""
    return {prefix + field: [text]} if field else {}
