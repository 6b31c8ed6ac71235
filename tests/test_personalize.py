"""Personalization (pure): what a reader receives (`TopicChoice`), their variant, and the per-reader
slots — why they got each summary and "stop sending me <topic>" links, in both parts, for every
reader (defect: readers of all topics, the default, got neither, and the text part never had
the links)."""

from __future__ import annotations

import pytest
from conftest import FIXTURES
from test_render import assert_golden
from test_render import outline

from newsletter.content.choice import TopicChoice
from newsletter.content.reader import load_issue
from newsletter.personalize import DROP
from newsletter.personalize import MATCH
from newsletter.personalize import Recipient
from newsletter.personalize import SlotTemplate
from newsletter.personalize import choose_variant
from newsletter.personalize import slot_values
from newsletter.personalize import variant_summaries
from newsletter.personalize import why_line
from newsletter.render.email import Renderer

BASE = "https://news.example.org"
ANXIETY = "anxiety-disorders"
CBT = "cognitive-therapy-ct-and-cognitive-behavioural-therapy-cbt"
ALL_SLUGS = ("alliance-in-depression", "cbt-for-anxiety", "therapist-alliance-variability")


@pytest.fixture
def issue(taxonomy):
    return load_issue(FIXTURES / "content", "2025-01", taxonomy, "Test Digest")


def reader(topics: TopicChoice) -> Recipient:
    return Recipient("ana@example.net", "Ana", topics, "UNSUBTOKEN", "PREFSTOKEN")


def filled(settings, issue, topics: TopicChoice) -> tuple[str, str]:
    """(html, text) of the issue as a reader of `topics` gets it."""
    key = choose_variant(issue, topics)
    assert key is not None
    summaries = variant_summaries(issue, key)
    rendered = Renderer(settings).render(issue, summaries, personal=key.personal)
    recipient = reader(topics)
    html = SlotTemplate(rendered.html).fill(
        slot_values(recipient, summaries, for_html=True, base_url=BASE)
    )
    text = SlotTemplate(rendered.text).fill(
        slot_values(recipient, summaries, for_html=False, base_url=BASE)
    )
    return html, text


# --- TopicChoice ----------------------------------------------------------------------------


def test_topic_choice() -> None:
    every, only = TopicChoice.every(), TopicChoice.only({"empathy"})
    assert TopicChoice.of(None) == every and TopicChoice.of(frozenset({"empathy"})) == only
    assert every.receives("anything-added-later") and not only.receives("training")
    but = every.without("empathy")
    assert but == TopicChoice.every({"empathy"}) and but.all_topics
    assert not but.receives("empathy") and but.receives("added-later")
    assert but.matching(["training", "empathy", "group"]) == ("training", "group")
    assert only.without("empathy") == TopicChoice.only(())
    assert but.effective(["empathy", "training"]) == {"training"}
    with pytest.raises(ValueError):
        TopicChoice(frozenset({"a"}), frozenset({"b"}))


# --- variants ---------------------------------------------------------------------------------


def test_every_reader_gets_the_why_lines_and_stop_links(issue) -> None:
    for topics in (None, TopicChoice.every(), TopicChoice.every({ANXIETY})):
        key = choose_variant(issue, topics)
        assert key is not None and key.personal and key.slugs == ALL_SLUGS


def test_a_summary_about_a_stopped_topic_and_another_still_comes(issue) -> None:
    """cbt-for-anxiety is about anxiety and CBT."""
    key = choose_variant(issue, TopicChoice.every({ANXIETY}))
    assert key is not None and "cbt-for-anxiety" in key.slugs
    key = choose_variant(issue, TopicChoice.every({ANXIETY, CBT}))
    assert key is not None
    assert key.slugs == ("alliance-in-depression", "therapist-alliance-variability")


def test_a_reader_who_stopped_every_topic_of_the_issue_gets_nothing(issue) -> None:
    stopped = {t.slug for s in issue.summaries for t in s.topics}
    assert choose_variant(issue, TopicChoice.every(stopped)) is None
    full = choose_variant(issue, TopicChoice.every(stopped), on_no_match="full")
    assert full is not None and not full.personal and full.slugs == ALL_SLUGS


# --- why lines and stop links -----------------------------------------------------------------


def test_why_lines(issue) -> None:
    cbt = issue.summary("cbt-for-anxiety")
    assert why_line(cbt, TopicChoice.only({ANXIETY})) == "Matches your topics: Anxiety Disorders"
    assert why_line(cbt, TopicChoice.every()) == "You receive all topics"
    assert why_line(cbt, TopicChoice.every({ANXIETY})) == (
        "Matches your topics: Cognitive Therapy (CT) and Cognitive-Behavioural Therapy (CBT)"
        " (you stopped Anxiety Disorders)"
    )
    alliance = issue.summary("alliance-in-depression")
    assert why_line(alliance, TopicChoice.every({ANXIETY})) == (
        "Matches your topics: Depression and Depressive Symptoms, "
        "Alliance and Therapeutic Relationship"
    )
    assert why_line(alliance, TopicChoice.only({ANXIETY})) == ""


def test_a_long_why_line_is_wrapped_in_the_text_part_only(issue) -> None:
    summaries = [issue.summary("cbt-for-anxiety")]
    choice = TopicChoice.every({ANXIETY})
    line = why_line(summaries[0], choice)
    assert len(line) > 72
    text = slot_values(reader(choice), summaries, for_html=False, base_url=BASE)[f"{MATCH}1"]
    html = slot_values(reader(choice), summaries, for_html=True, base_url=BASE)[f"{MATCH}1"]
    assert " ".join(text.split()) == line and "\n" in text
    assert all(len(row) <= 72 for row in text.splitlines())
    assert html == line.replace("&", "&amp;")  # the HTML part flows: one line


def test_an_all_topics_reader_gets_a_stop_link_per_topic_in_both_parts(issue) -> None:
    summaries = issue.summaries
    html = slot_values(reader(TopicChoice.every()), summaries, for_html=True, base_url=BASE)
    text = slot_values(reader(TopicChoice.every()), summaries, for_html=False, base_url=BASE)
    for index, summary in enumerate(summaries, start=1):
        assert html[f"{MATCH}{index}"] == text[f"{MATCH}{index}"] == "You receive all topics"
        for topic in summary.topics:
            url = f"{BASE}/preferences/PREFSTOKEN?drop={topic.slug}"
            assert f'href="{url}"' in html[f"{DROP}{index}"]
            assert f"Stop sending me {topic.label}:\n{url}" in text[f"{DROP}{index}"]
        assert html[f"{DROP}{index}"].startswith("Not for you? ")
        assert text[f"{DROP}{index}"].startswith("Not for you? Stop sending me ")
        assert text[f"{DROP}{index}"].count("Stop sending me") == len(summary.topics)


def test_a_stopped_topic_is_not_offered_again(issue) -> None:
    cbt = (issue.summary("cbt-for-anxiety"),)
    values = slot_values(reader(TopicChoice.every({ANXIETY})), cbt, for_html=False, base_url=BASE)
    assert f"?drop={CBT}" in values["DROP1"] and "?drop=anxiety" not in values["DROP1"]


def test_labels_are_escaped_in_html_only(issue) -> None:
    cbt = (issue.summary("cbt-for-anxiety"),)
    html = slot_values(reader(TopicChoice.every()), cbt, for_html=True, base_url=BASE)
    assert "Stop sending me Cognitive Therapy (CT) and Cognitive-Behavioural" in html["DROP1"]


# --- the filled messages, as golden files ---------------------------------------------------


def test_an_all_topics_reader_as_they_get_it(settings, issue) -> None:
    html, text = filled(settings, issue, TopicChoice.every())
    assert "XNL" not in html and "XNL" not in text
    assert_golden("2025-01-all-topics-reader.txt", text)
    assert_golden("2025-01-all-topics-reader.outline", outline(html))


def test_an_all_but_anxiety_reader_as_they_get_it(settings, issue) -> None:
    html, text = filled(settings, issue, TopicChoice.every({ANXIETY}))
    assert_golden("2025-01-all-but-anxiety-reader.txt", text)
    assert "?drop=anxiety-disorders" not in html
