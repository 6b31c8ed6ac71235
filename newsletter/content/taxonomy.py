"""Topics and types of research: a slug and a label each, looked up by either.

Lookups are case-insensitive and accept the slug or the label. The default topic list is the
network's own taxonomy (37 topics); the label typo "Adherance" is fixed but still accepted.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass

from slugify import slugify as python_slugify

from newsletter.config import DEFAULT_RESEARCH_TYPES
from newsletter.config import Settings
from newsletter.errors import TaxonomyError

DEFAULT_TOPICS = [
    "Adherence",
    "Alliance and Therapeutic Relationship",
    "Anxiety Disorders",
    "Attachment",
    "Attendance, Attrition, and Drop-Out",
    "Client Factors",
    "Client Preferences",
    "Cognitive Therapy (CT) and Cognitive-Behavioural Therapy (CBT)",
    "Combination Therapy",
    "Common Factors",
    "Cost-effectiveness",
    "Depression and Depressive Symptoms",
    "Efficacy of Treatments",
    "Empathy",
    "Feedback and Progress Monitoring",
    "Group Psychotherapy",
    "Illness and Medical Comorbidities",
    "Interpersonal Psychotherapy (IPT)",
    "Long-term Outcomes",
    "Medications/Pharmacotherapy",
    "Miscellaneous",
    "Neuroscience and Brain",
    "Outcomes and Deterioration",
    "Personality Disorders",
    "Placebo Effect",
    "Practice-Based Research and Practice Research Networks",
    "Psychodynamic Therapy (PDT)",
    "Resistance and Reactance",
    "Self-Reflection and Awareness",
    "Suicide and Crisis Intervention",
    "Termination",
    "Therapist Factors",
    "Training",
    "Transference and Countertransference",
    "Trauma and/or PTSD",
    "Treatment Length and Frequency",
]

# Old spellings still accepted on input, mapped to the current label.
DEFAULT_ALIASES = {"Adherance": "Adherence"}


def slugify(text: str) -> str:
    """Lowercase ASCII words joined by '-': 'Trauma and/or PTSD' -> 'trauma-and-or-ptsd'.

    The one slug function (topics, research types, file names, list names). python-slugify
    transliterates instead of dropping letters: 'Émotions' -> 'emotions', 'Straße' -> 'strasse'.
    """
    return python_slugify(text)


@dataclass(frozen=True, order=True)
class Term:
    """One topic or type of research."""

    slug: str
    label: str


class Vocabulary:
    """An ordered set of terms with case-insensitive lookup by slug, label or alias."""

    def __init__(self, kind: str, labels: Iterable[str], aliases: dict[str, str] | None = None):
        self.kind = kind
        self.terms: list[Term] = []
        self._index: dict[str, Term] = {}
        for label in labels:
            term = Term(slugify(label), label.strip())
            if not term.slug:
                raise TaxonomyError(f"{kind} {label!r} has no letters or digits")
            if term.slug in self._index:
                raise TaxonomyError(f"{kind} {label!r} is listed twice")
            self.terms.append(term)
            self._index[term.slug] = term
            self._index[term.label.casefold()] = term
        for alias, label in (aliases or {}).items():
            target = self._index.get(label.casefold())
            if target is not None:
                self._index.setdefault(alias.casefold(), target)
                self._index.setdefault(slugify(alias), target)

    def __iter__(self) -> Iterator[Term]:
        return iter(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def find(self, name: str) -> Term | None:
        """The term named by slug, label or alias (any case), or None."""
        key = name.strip().casefold()
        return self._index.get(key) or self._index.get(slugify(key))

    def get(self, name: str) -> Term:
        """The term named by slug, label or alias; `TaxonomyError` with close matches if not."""
        term = self.find(name)
        if term is None:
            raise TaxonomyError(self.unknown_message(name))
        return term

    def by_slug(self, slug: str) -> Term:
        """The term with exactly this slug."""
        return self._index[slug]

    def suggestions(self, name: str, limit: int = 3) -> list[str]:
        """Labels close to an unknown name, best first (whole label, or one of its words)."""
        wanted = name.strip().casefold()

        def score(term: Term) -> float:
            label = term.label.casefold()
            whole = difflib.SequenceMatcher(None, wanted, label).ratio()
            words = [w for w in re.split(r"[^a-z0-9]+", label) if len(w) > 2]
            best_word = max(
                (difflib.SequenceMatcher(None, wanted, w).ratio() for w in words), default=0.0
            )
            contained = 0.9 if wanted and wanted in label else 0.0
            return max(whole, best_word * 0.95, contained)

        ranked = sorted(((score(t), t.label) for t in self.terms), key=lambda p: -p[0])
        return [label for value, label in ranked if value >= 0.6][:limit]

    def unknown_message(self, name: str) -> str:
        """'unknown topic 'x'; did you mean ...?'."""
        hints = self.suggestions(name)
        hint = f"; did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
        return f"unknown {self.kind} {name!r}{hint}"


@dataclass(frozen=True)
class Taxonomy:
    """The topics and types of research in force."""

    topics: Vocabulary
    research_types: Vocabulary


def default_taxonomy() -> Taxonomy:
    """The built-in taxonomy: the network's 36 topics and the default research types."""
    return Taxonomy(
        Vocabulary("topic", DEFAULT_TOPICS, DEFAULT_ALIASES),
        Vocabulary("research type", DEFAULT_RESEARCH_TYPES),
    )


def taxonomy_from_settings(settings: Settings) -> Taxonomy:
    """The taxonomy of `config.toml` ([taxonomy] topics / research_types), else the default."""
    topics = settings.taxonomy.topics or DEFAULT_TOPICS
    return Taxonomy(
        Vocabulary("topic", topics, DEFAULT_ALIASES),
        Vocabulary("research type", settings.taxonomy.research_types),
    )


# The default taxonomy in a few groups, so the picker is not one long list of 36 boxes; the
# subscribe page and the archive's topics index share them.
# Topics added in config.toml that are not named here appear under "More topics".
TOPIC_GROUPS: dict[str, tuple[str, ...]] = {
    "Conditions": (
        "anxiety-disorders",
        "depression-and-depressive-symptoms",
        "personality-disorders",
        "trauma-and-or-ptsd",
        "suicide-and-crisis-intervention",
        "illness-and-medical-comorbidities",
    ),
    "Treatments": (
        "cognitive-therapy-ct-and-cognitive-behavioural-therapy-cbt",
        "interpersonal-psychotherapy-ipt",
        "psychodynamic-therapy-pdt",
        "group-psychotherapy",
        "combination-therapy",
        "medications-pharmacotherapy",
        "efficacy-of-treatments",
        "treatment-length-and-frequency",
        "cost-effectiveness",
        "placebo-effect",
    ),
    "The therapeutic relationship": (
        "alliance-and-therapeutic-relationship",
        "empathy",
        "attachment",
        "transference-and-countertransference",
        "resistance-and-reactance",
        "common-factors",
        "termination",
    ),
    "Clients and therapists": (
        "client-factors",
        "client-preferences",
        "therapist-factors",
        "self-reflection-and-awareness",
        "training",
        "adherence",
        "attendance-attrition-and-drop-out",
    ),
    "Outcomes and research": (
        "outcomes-and-deterioration",
        "long-term-outcomes",
        "feedback-and-progress-monitoring",
        "practice-based-research-and-practice-research-networks",
        "neuroscience-and-brain",
        "miscellaneous",
    ),
}


@dataclass(frozen=True)
class TopicGroup:
    """A labelled group of topics (the picker's fieldsets, the archive's topics index)."""

    label: str
    terms: tuple[Term, ...]


def topic_groups(taxonomy: Taxonomy) -> list[TopicGroup]:
    """The taxonomy's topics in groups, in taxonomy order within each group."""
    by_slug = {term.slug: term for term in taxonomy.topics}
    groups: list[TopicGroup] = []
    placed: set[str] = set()
    for label, slugs in TOPIC_GROUPS.items():
        terms = tuple(by_slug[s] for s in slugs if s in by_slug)
        if terms:
            groups.append(TopicGroup(label, tuple(sorted(terms, key=lambda t: t.label))))
            placed.update(t.slug for t in terms)
    rest = tuple(t for t in taxonomy.topics if t.slug not in placed)
    if rest:
        groups.append(TopicGroup("More topics" if groups else "Topics", rest))
    return groups
