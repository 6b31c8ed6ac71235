"""Topics and types of research: the default lists, lookups, suggestions and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config import DEFAULT_RESEARCH_TYPES
from newsletter.config import settings_from_dict
from newsletter.content.taxonomy import DEFAULT_TOPICS
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import Term
from newsletter.content.taxonomy import Vocabulary
from newsletter.content.taxonomy import slugify
from newsletter.content.taxonomy import taxonomy_from_settings
from newsletter.errors import TaxonomyError


def test_default_topics_are_the_36_of_the_seed(taxonomy: Taxonomy) -> None:
    labels = [t.label for t in taxonomy.topics]
    assert len(labels) == 36
    assert labels == DEFAULT_TOPICS
    assert labels[0] == "Adherence"  # the seed's typo "Adherance" is fixed
    assert labels[-1] == "Treatment Length and Frequency"
    assert not any("all topics" in label.casefold() for label in labels)


def test_default_topic_slugs_are_unique_and_url_safe(taxonomy: Taxonomy) -> None:
    slugs = [t.slug for t in taxonomy.topics]
    assert len(set(slugs)) == len(slugs)
    assert all(slug == slugify(slug) for slug in slugs)


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Trauma and/or PTSD", "trauma-and-or-ptsd"),
        (
            "Cognitive Therapy (CT) and Cognitive-Behavioural Therapy (CBT)",
            "cognitive-therapy-ct-and-cognitive-behavioural-therapy-cbt",
        ),
        ("Attendance, Attrition, and Drop-Out", "attendance-attrition-and-drop-out"),
        ("Medications/Pharmacotherapy", "medications-pharmacotherapy"),
        ("  Long-term Outcomes  ", "long-term-outcomes"),
        ("Émotions", "emotions"),
        ("Thérapie de groupe", "therapie-de-groupe"),
        ("Über Straße", "uber-strasse"),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug


@pytest.mark.parametrize(
    "name",
    [
        "Anxiety Disorders",
        "anxiety disorders",
        "ANXIETY DISORDERS",
        "anxiety-disorders",
        "Anxiety-Disorders",
        "  anxiety disorders ",
    ],
)
def test_lookup_by_label_or_slug_in_any_case(taxonomy: Taxonomy, name: str) -> None:
    assert taxonomy.topics.get(name) == Term("anxiety-disorders", "Anxiety Disorders")


@pytest.mark.parametrize(
    "name", ["Trauma and/or PTSD", "trauma-and-or-ptsd", "trauma and or ptsd", "TRAUMA AND/OR PTSD"]
)
def test_lookup_of_a_label_with_punctuation(taxonomy: Taxonomy, name: str) -> None:
    assert taxonomy.topics.get(name).label == "Trauma and/or PTSD"


@pytest.mark.parametrize("name", ["Adherance", "adherance", "ADHERANCE", "Adherence", "adherence"])
def test_adherance_typo_is_accepted_as_adherence(taxonomy: Taxonomy, name: str) -> None:
    assert taxonomy.topics.get(name) == Term("adherence", "Adherence")


def test_contains_and_find(taxonomy: Taxonomy) -> None:
    assert "empathy" in taxonomy.topics
    assert "Empathie" not in taxonomy.topics
    assert 3 not in taxonomy.topics
    assert taxonomy.topics.find("Empathie") is None


def test_by_slug(taxonomy: Taxonomy) -> None:
    assert taxonomy.topics.by_slug("client-factors").label == "Client Factors"
    with pytest.raises(KeyError):
        taxonomy.topics.by_slug("client-factor")


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("Depresion", "Depression and Depressive Symptoms"),
        ("ptsd", "Trauma and/or PTSD"),
        ("Anxiety", "Anxiety Disorders"),
        ("Empathie", "Empathy"),
        ("Group Therapy", "Group Psychotherapy"),
    ],
)
def test_unknown_topic_suggests_close_ones(taxonomy: Taxonomy, name: str, suggestion: str) -> None:
    with pytest.raises(TaxonomyError) as caught:
        taxonomy.topics.get(name)
    message = str(caught.value)
    assert message.startswith(f"unknown topic {name!r}")
    assert repr(suggestion) in message
    assert taxonomy.topics.suggestions(name)[0] == suggestion


def test_unknown_topic_with_nothing_close(taxonomy: Taxonomy) -> None:
    with pytest.raises(TaxonomyError) as caught:
        taxonomy.topics.get("xyzzy")
    assert str(caught.value) == "unknown topic 'xyzzy'"


def test_suggestions_are_limited(taxonomy: Taxonomy) -> None:
    assert len(taxonomy.topics.suggestions("therapy", limit=2)) == 2


def test_default_research_types(taxonomy: Taxonomy) -> None:
    assert [t.label for t in taxonomy.research_types] == DEFAULT_RESEARCH_TYPES
    assert taxonomy.research_types.get("META-ANALYSIS").label == "Meta-analysis"
    assert taxonomy.research_types.get("randomized-controlled-trial").label == (
        "Randomized controlled trial"
    )
    assert taxonomy.research_types.get("Naturalistic/Practice-Based Study").slug == (
        "naturalistic-practice-based-study"
    )


def test_unknown_research_type_suggests_close_ones(taxonomy: Taxonomy) -> None:
    with pytest.raises(TaxonomyError, match="unknown research type 'Qualitative'") as caught:
        taxonomy.research_types.get("Qualitative")
    assert "'Qualitative study'" in str(caught.value)


def test_taxonomy_from_settings_defaults(tmp_path: Path) -> None:
    taxonomy = taxonomy_from_settings(settings_from_dict({}, tmp_path))
    assert [t.label for t in taxonomy.topics] == DEFAULT_TOPICS
    assert [t.label for t in taxonomy.research_types] == DEFAULT_RESEARCH_TYPES


def test_taxonomy_from_settings_overrides(tmp_path: Path) -> None:
    data = {
        "taxonomy": {
            "topics": ["Sleep", "Couples Therapy", "Adherence"],
            "research_types": ["Case study", "Meta-analysis"],
        }
    }
    taxonomy = taxonomy_from_settings(settings_from_dict(data, tmp_path))
    assert [t.slug for t in taxonomy.topics] == ["sleep", "couples-therapy", "adherence"]
    assert "Anxiety Disorders" not in taxonomy.topics
    assert taxonomy.topics.get("adherance").label == "Adherence"
    assert [t.label for t in taxonomy.research_types] == ["Case study", "Meta-analysis"]
    assert "Randomized controlled trial" not in taxonomy.research_types


def test_alias_without_its_target_is_ignored() -> None:
    topics = Vocabulary("topic", ["Sleep"], {"Adherance": "Adherence"})
    assert "Adherance" not in topics


@pytest.mark.parametrize(
    "labels",
    [
        ["Sleep", "Empathy", "Sleep"],
        ["Sleep", "sleep"],
        ["Drop-Out", "Drop Out"],
    ],
)
def test_duplicate_label_is_rejected(labels: list[str]) -> None:
    with pytest.raises(TaxonomyError, match="listed twice"):
        Vocabulary("topic", labels)


def test_duplicate_label_in_config_is_rejected(tmp_path: Path) -> None:
    settings = settings_from_dict({"taxonomy": {"research_types": ["Review", "review"]}}, tmp_path)
    with pytest.raises(TaxonomyError, match="research type 'review' is listed twice"):
        taxonomy_from_settings(settings)


def test_label_without_letters_is_rejected() -> None:
    with pytest.raises(TaxonomyError, match="no letters or digits"):
        Vocabulary("topic", ["Sleep", "---"])
