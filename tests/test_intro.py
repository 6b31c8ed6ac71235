"""The intro written once with parts tied to summaries: parsing, errors, and what each variant
shows (defect: one-summary readers got an intro describing two summaries)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES
from conftest import REPO

from newsletter.config import load_settings
from newsletter.content.intro import parse_intro
from newsletter.content.reader import list_months
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import taxonomy_from_settings
from newsletter.errors import ContentError
from newsletter.personalize import choose_variant
from newsletter.personalize import variant_summaries
from newsletter.render.checks import WARNING
from newsletter.render.checks import can_be_cut
from newsletter.render.checks import intro_findings
from newsletter.render.checks import variant_dependent_words
from newsletter.render.email import Renderer

NAME = "Test Digest"
SUMMARY = (
    "---\ntitle: {title}\ntopics: [{topic}]\nresearch_type: Review\n---\n"
    "Body of {title}.\n\n## Practice Implications\n\nDo well.\n"
)
INTRO = """\
Common opening.

{summary=harm} The part about harm
runs over two lines.

- {summary=combined} An item about combined treatment.
- A common item.
"""


def write_month(root: Path, intro: str, month: str = "2030-01") -> Path:
    folder = root / month
    folder.mkdir(parents=True)
    for number, (slug, topic) in enumerate((("harm", "Empathy"), ("combined", "Training")), 1):
        text = SUMMARY.format(title=slug.capitalize(), topic=topic)
        (folder / f"0{number}-{slug}.md").write_text(text, encoding="utf-8")
    (folder / "issue.md").write_text(f"---\nsubject: S\n---\n{intro}", encoding="utf-8")
    return folder / "issue.md"


def load_error(root: Path, taxonomy: Taxonomy) -> ContentError:
    with pytest.raises(ContentError) as caught:
        load_issue(root, "2030-01", taxonomy, NAME)
    return caught.value


# --- parsing --------------------------------------------------------------------------------


def test_parts_are_found_with_their_lines() -> None:
    intro = parse_intro(INTRO, "issue.md", first_line=4)
    assert [(p.slug, p.line) for p in intro.parts] == [("harm", 6), ("combined", 9)]
    assert intro.slugs == {"harm", "combined"}


def test_each_set_of_summaries_gets_the_common_part_and_its_own_parts() -> None:
    intro = parse_intro(INTRO)
    assert intro.markdown(["harm"]) == (
        "Common opening.\n\nThe part about harm\nruns over two lines.\n\n- A common item."
    )
    assert intro.markdown(["combined"]) == (
        "Common opening.\n\n- An item about combined treatment.\n- A common item."
    )
    assert intro.common == "Common opening.\n\n- A common item."
    assert "{summary=" not in intro.markdown()
    assert intro.markdown() == intro.markdown(["harm", "combined"])


def test_a_marker_alone_on_its_line_ties_the_paragraph_below_it() -> None:
    intro = parse_intro("Common.\n\n{summary=harm}\nHarm text.\n\nEnd.\n")
    assert intro.markdown(["harm"]) == "Common.\n\nHarm text.\n\nEnd."
    assert intro.markdown([]) == "Common.\n\nEnd."


def test_dropping_a_part_never_joins_the_paragraphs_around_it() -> None:
    intro = parse_intro("Before:\n- {summary=harm} harm item\n\nAfter.\n")
    assert intro.markdown([]) == "Before:\n\nAfter."


def test_a_part_inside_another_goes_with_it() -> None:
    intro = parse_intro("Common.\n\n- {summary=a} outer\n  - {summary=b} inner\n- plain\n")
    assert intro.markdown([]) == intro.markdown(["b"]) == "Common.\n\n- plain"
    assert intro.markdown(["a"]) == "Common.\n\n- outer\n- plain"
    assert intro.markdown(["a", "b"]) == "Common.\n\n- outer\n  - inner\n- plain"


def test_an_intro_without_markers_is_all_common() -> None:
    intro = parse_intro("Just one paragraph.\n")
    assert intro.parts == () and intro.markdown(["x"]) == "Just one paragraph."


def test_markers_in_code_are_text() -> None:
    intro = parse_intro("Use `{summary=slug}` like this.\n")
    assert intro.parts == ()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("Intro.\n\nText {summary=harm} in the middle.\n", 3, "must start its paragraph"),
        ("Intro.\n\n{summary=harm}\n", 3, "needs the text"),
        ("1. {summary=harm} first\n2. {summary=combined} second\n", 1, "numbered list"),
        ("## {summary=harm} A heading\n", 1, "not a heading"),
        ("{summary: harm} Misspelt.\n", 1, "write the marker as {summary=<slug>}"),
        ("{Summary=harm} Capital.\n", 1, "write the marker as {summary=<slug>}"),
        ("Ok.\n\n- item\n  {summary=harm} in a continuation line\n", 4, "must start its"),
    ],
)
def test_misplaced_or_misspelt_markers_name_file_and_line(
    tmp_path: Path, taxonomy: Taxonomy, text: str, line: int, words: str
) -> None:
    issue_md = write_month(tmp_path, text)
    error = load_error(tmp_path, taxonomy)
    assert error.path == str(issue_md)
    assert f"line {line + 3}:" in str(error)  # three lines of front matter come first
    assert words in str(error)


def test_an_unknown_slug_names_file_line_and_slug(tmp_path: Path, taxonomy: Taxonomy) -> None:
    issue_md = write_month(tmp_path, "Common.\n\n\n{summary=harms} Typo in the slug.\n")
    error = load_error(tmp_path, taxonomy)
    assert error.path == str(issue_md)
    assert str(error).startswith(f"{issue_md}: line 7: {{summary=harms}} names no summary")
    assert "harm, combined" in str(error)


def test_the_whole_intro_is_the_full_issue_and_the_archive(tmp_path, taxonomy) -> None:
    write_month(tmp_path, INTRO)
    issue = load_issue(tmp_path, "2030-01", taxonomy, NAME)
    assert "{summary=" not in issue.intro_md and "{summary=" not in issue.intro_html
    assert "The part about harm" in issue.intro_html
    assert "combined treatment" in issue.intro_html


# --- rendering: each variant says only what it holds ---------------------------------------


@pytest.fixture
def january(settings, taxonomy):
    return load_issue(FIXTURES / "content", "2025-01", taxonomy, NAME)


def test_a_one_summary_reader_sees_the_common_part_and_their_summarys_part(
    settings, january
) -> None:
    key = choose_variant(january, frozenset({"anxiety-disorders"}))
    assert key is not None and key.slugs == ("cbt-for-anxiety",)
    rendered = Renderer(settings).render(january, variant_summaries(january, key), personal=True)
    for part in (rendered.html, rendered.text):
        assert "A small test issue about the therapeutic alliance" in part
        assert "CBT did better than placebo" in part
        assert "depression trial" not in part and "many therapists" not in part
        assert "{summary=" not in part


def test_the_full_issue_shows_every_part(settings, january) -> None:
    rendered = Renderer(settings).render(january, january.summaries, personal=False)
    for words in ("depression trial", "CBT did better", "many therapists"):
        assert words in rendered.html and words in " ".join(rendered.text.split())


def test_an_intro_tied_wholly_to_other_summaries_falls_back_to_the_title_list(
    settings, taxonomy, tmp_path
) -> None:
    write_month(tmp_path, "{summary=harm} Only about harm.\n")
    settings.content.dir = tmp_path
    issue = load_issue(tmp_path, "2030-01", taxonomy, NAME)
    rendered = Renderer(settings).render(issue, (issue.summary("combined"),), personal=True)
    assert "Only about harm" not in rendered.text
    assert "This month's digest brings you 1 summary:" in rendered.text


# --- the check: counts and ordinals in the common part ------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "This month brings two summaries. The first is a review; the second, a meta-analysis.",
            ["two summaries", "The first", "the second"],
        ),
        (
            "Three new studies, and 2 trials. The latter is small.",
            ["Three new studies", "2 trials", "The latter"],
        ),
        (
            "Both papers agree. Two of them disagree. Firstly, a note.",
            ["Both papers", "Two of them", "Firstly"],
        ),
        ("For the first time, both clinicians and clients in 2026 agree.", []),
        ("A review of harmful therapies.", []),
    ],
)
def test_counts_and_ordinals_are_found(text: str, words: list[str]) -> None:
    assert variant_dependent_words(text) == words


def test_only_an_issue_that_readers_can_get_in_part_is_checked(tmp_path, taxonomy) -> None:
    write_month(tmp_path, "Two summaries: the first on harm, the second on combining.\n")
    issue = load_issue(tmp_path, "2030-01", taxonomy, NAME)
    assert can_be_cut(issue)
    [finding] = intro_findings(issue)
    assert finding.level == WARNING
    assert finding.message.startswith(f"{tmp_path / '2030-01' / 'issue.md'}: ")
    assert "“Two summaries”, “the first”, “the second”" in finding.message
    one = load_issue(tmp_path, "2030-01", taxonomy, NAME)
    only_harm = type(one)(one.month, one.subject, one.summaries[:1], one.intro)
    assert not can_be_cut(only_harm) and intro_findings(only_harm) == []


def test_the_subject_and_preheader_are_checked_too(tmp_path, taxonomy) -> None:
    folder = write_month(tmp_path, "Common.\n")
    (folder).write_text(
        '---\nsubject: "Two studies on care"\npreheader: "The first on harm"\n---\nHi.\n',
        encoding="utf-8",
    )
    issue = load_issue(tmp_path, "2030-01", taxonomy, NAME)
    messages = [f.message for f in intro_findings(issue)]
    assert [m.split(" says ")[0] for m in messages] == [
        f"{folder}: the subject",
        f"{folder}: the preheader",
    ]
    assert "“Two studies”" in messages[0] and "“The first”" in messages[1]


def test_the_repository_intros_suit_every_reader() -> None:
    """The demo months: no count or ordinal in a common part, a part for each summary."""
    settings = load_settings(REPO / "config.toml")
    taxonomy = taxonomy_from_settings(settings)
    for month in list_months(settings.content.dir):
        issue = load_issue(settings.content.dir, month, taxonomy, settings.newsletter.name)
        assert intro_findings(issue) == [], month
        if issue.intro and can_be_cut(issue):
            assert issue.intro.slugs == {s.slug for s in issue.summaries}, month
