"""Reading content/YYYY-MM/*.md: the fixture months, and errors that name the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES
from conftest import REPO

from newsletter.config import load_settings
from newsletter.content.model import Issue
from newsletter.content.model import month_label
from newsletter.content.reader import latest_month
from newsletter.content.reader import list_months
from newsletter.content.reader import load_issue
from newsletter.content.reader import misnamed_months
from newsletter.content.reader import normalize_doi
from newsletter.content.reader import parse_summary
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import taxonomy_from_settings
from newsletter.errors import ContentError
from newsletter.errors import ContentProblems

CONTENT = FIXTURES / "content"
NAME = "Test Digest"

FRONT = "title: Empathy Predicts Outcome\ntopics: [Empathy]\nresearch_type: Meta-analysis\n"
BODY = "Clients of empathic therapists do better.\n\n## Practice Implications\n\nListen well.\n"


def write_summary(
    folder: Path, name: str = "01-empathy.md", front: str = FRONT, body: str = BODY
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"---\n{front}---\n{body}", encoding="utf-8")
    return path


def load(content: Path, taxonomy: Taxonomy, month: str = "2025-03") -> Issue:
    return load_issue(content, month, taxonomy, NAME)


def load_error(content: Path, taxonomy: Taxonomy, month: str = "2025-03") -> ContentError:
    with pytest.raises(ContentError) as caught:
        load(content, taxonomy, month)
    return caught.value


# --- the fixture months -------------------------------------------------------------------------


@pytest.fixture
def january(taxonomy: Taxonomy) -> Issue:
    return load_issue(CONTENT, "2025-01", taxonomy, NAME)


@pytest.fixture
def february(taxonomy: Taxonomy) -> Issue:
    return load_issue(CONTENT, "2025-02", taxonomy, NAME)


def test_summaries_in_order_with_slugs_from_file_names(january: Issue) -> None:
    assert [s.slug for s in january.summaries] == [
        "alliance-in-depression",
        "cbt-for-anxiety",
        "therapist-alliance-variability",
    ]
    assert [s.order for s in january.summaries] == [1, 2, 3]
    assert january.summaries[1].key == "2025-01/cbt-for-anxiety"
    assert january.summaries[1].month == "2025-01"
    assert Path(january.summaries[1].source).name == "02-cbt-for-anxiety.md"


def test_summary_fields(january: Issue) -> None:
    summary = january.summary("alliance-in-depression")
    assert summary.title == "Client Contribution to the Alliance Predicts Recovery From Depression"
    assert summary.research_type.label == "Randomized controlled trial"
    # Its article is structured data (`article:`); the other fixture summaries are free text.
    assert summary.citation == ""
    assert summary.article is not None
    assert [a.family for a in summary.article.authors][:2] == ["Krupnick", "Sotsky"]
    assert (summary.article.year, summary.article.pages) == (1996, ("532", "539"))
    assert summary.doi == summary.article.doi == "10.1037/0022-006X.64.3.532"
    cbt = january.summary("cbt-for-anxiety")
    assert cbt.article is None
    assert cbt.citation.startswith("Hofmann, S. G., & Smits, J. A. J. (2008).")
    assert summary.summary_md.startswith("Using recordings from a large depression trial")
    assert summary.implications_md.startswith("The alliance matters even when")
    assert "Practice Implications" not in summary.summary_md
    assert summary.summary_html.startswith("<p>Using recordings")


def test_topics_resolve_from_labels_slugs_and_odd_case(january: Issue) -> None:
    cbt = january.summary("cbt-for-anxiety")  # "anxiety-disorders" is written as a slug
    assert [t.label for t in cbt.topics] == [
        "Anxiety Disorders",
        "Cognitive Therapy (CT) and Cognitive-Behavioural Therapy (CBT)",
    ]
    variability = january.summary("therapist-alliance-variability")  # written in lower case
    assert [t.label for t in variability.topics] == [
        "Alliance and Therapeutic Relationship",
        "Therapist Factors",
    ]
    assert variability.topic_slugs == {"alliance-and-therapeutic-relationship", "therapist-factors"}


def test_doi_and_its_url(january: Issue) -> None:
    summary = january.summary("alliance-in-depression")
    assert summary.doi == "10.1037/0022-006X.64.3.532"
    assert summary.doi_url == "https://doi.org/10.1037/0022-006X.64.3.532"
    assert january.summary("cbt-for-anxiety").doi == ""
    assert january.summary("cbt-for-anxiety").doi_url == ""


def test_unknown_summary_slug(january: Issue) -> None:
    with pytest.raises(KeyError):
        january.summary("no-such-summary")


def test_subject_and_intro_from_issue_md(january: Issue) -> None:
    assert january.subject == "Fixture issue: alliance and anxiety"
    assert january.has_custom_subject
    assert january.intro_md.startswith("A small test issue about the therapeutic alliance")
    assert january.intro_html.startswith("<p>A small test issue")
    assert january.intro.slugs == {s.slug for s in january.summaries}  # a part for each
    assert january.label == "January 2025"


def test_default_subject_without_issue_md(february: Issue) -> None:
    assert february.subject == "Test Digest — February 2025"
    assert not february.has_custom_subject
    assert february.intro_md == ""
    assert february.intro_html == ""
    assert [s.slug for s in february.summaries] == ["feedback-not-on-track", "dropout-rates"]


@pytest.mark.parametrize(
    ("month", "label"), [("2025-01", "January 2025"), ("2026-11", "November 2026")]
)
def test_month_label(month: str, label: str) -> None:
    assert month_label(month) == label


def test_the_repository_content_loads() -> None:
    settings = load_settings(REPO / "config.toml")
    taxonomy = taxonomy_from_settings(settings)
    months = list_months(settings.content.dir)
    assert len(months) >= 3
    for month in months:
        issue = load_issue(settings.content.dir, month, taxonomy, settings.newsletter.name)
        assert 2 <= len(issue.summaries) <= 3, month


# --- ordering, slugs and DOIs -------------------------------------------------------------------


def test_order_field_then_file_name(tmp_path: Path, taxonomy: Taxonomy) -> None:
    month = tmp_path / "2025-03"
    write_summary(month, "a-first.md", FRONT + "order: 2\n")
    write_summary(month, "b-second.md", FRONT)
    write_summary(month, "c-third.md", FRONT + "order: 1\n")
    write_summary(month, "d-fourth.md", FRONT)
    issue = load(tmp_path, taxonomy)
    assert [s.slug for s in issue.summaries] == ["c-third", "a-first", "b-second", "d-fourth"]


def test_slug_field_overrides_the_file_name(tmp_path: Path, taxonomy: Taxonomy) -> None:
    write_summary(tmp_path / "2025-03", "01-x.md", FRONT + "slug: empathy-matters\n")
    assert load(tmp_path, taxonomy).summaries[0].slug == "empathy-matters"


@pytest.mark.parametrize(
    "value",
    [
        "10.1037/a0019247",
        "doi:10.1037/a0019247",
        "DOI: 10.1037/a0019247",
        "https://doi.org/10.1037/a0019247",
        "http://dx.doi.org/10.1037/a0019247",
        "  10.1037/a0019247  ",
    ],
)
def test_normalize_doi(value: str) -> None:
    assert normalize_doi(value, "x.md") == "10.1037/a0019247"


def test_doi_from_a_url_in_a_file(tmp_path: Path, taxonomy: Taxonomy) -> None:
    write_summary(tmp_path / "2025-03", front=FRONT + 'doi: "https://doi.org/10.1037/a0019247"\n')
    summary = load(tmp_path, taxonomy).summaries[0]
    assert summary.doi == "10.1037/a0019247"
    assert summary.doi_url == "https://doi.org/10.1037/a0019247"


def test_doi_url_escapes_unsafe_characters(taxonomy: Taxonomy) -> None:
    doi = "10.1002/(SICI)1097-4679(199812)54:8<1051::AID-JCLP5>3.0.CO;2-1"
    text = f"---\n{FRONT}doi: '{doi}'\n---\n{BODY}"
    summary = parse_summary(text, "x.md", "2025-03", taxonomy)
    assert summary.doi == doi
    assert summary.doi_url == (
        "https://doi.org/10.1002/(SICI)1097-4679(199812)54:8%3C1051::AID-JCLP5%3E3.0.CO;2-1"
    )


# --- errors name the file and the field ---------------------------------------------------------


@pytest.mark.parametrize(
    ("front", "field", "fragment"),
    [
        ("topics: [Empathy]\nresearch_type: Review\n", "title", "is required"),
        ('title: " "\n' + FRONT.split("\n", 1)[1], "title", "is required"),
        ("title: [a, b]\ntopics: [Empathy]\nresearch_type: Review\n", "title", "must be text"),
        ("title: T\ntopics: []\nresearch_type: Review\n", "topics", "at least one topic"),
        ("title: T\nresearch_type: Review\n", "topics", "at least one topic"),
        ("title: T\ntopics: {a: 1}\nresearch_type: Review\n", "topics", "must be a list"),
        (
            "title: T\ntopics: [Empathy, Depresion]\nresearch_type: Review\n",
            "topics",
            "unknown topic 'Depresion'; did you mean 'Depression and Depressive Symptoms'",
        ),
        ("title: T\ntopics: [Empathy]\n", "research_type", "is required"),
        (
            "title: T\ntopics: [Empathy]\nresearch_type: Case study\n",
            "research_type",
            "unknown research type 'Case study'",
        ),
        (
            FRONT + "authors: Someone\n",  # `author:` is the byline; the article's go under it
            "authors",
            "unknown field; the article's own fields go under `article:` (allowed: article, ",
        ),
        (FRONT + "order: first\n", "order", "must be a whole number"),
        (FRONT + "order: 1.5\n", "order", "must be a whole number"),
        (FRONT + "order: true\n", "order", "must be a whole number"),
        (FRONT + "doi: 10.1037\n", "doi", "'10.1037' is not a DOI"),
        (FRONT + "doi: doi.org/abc\n", "doi", "is not a DOI"),
        (FRONT + "slug: Empathy Matters\n", "slug", "use lowercase letters"),
    ],
)
def test_front_matter_errors(
    tmp_path: Path, taxonomy: Taxonomy, front: str, field: str, fragment: str
) -> None:
    path = write_summary(tmp_path / "2025-03", front=front)
    error = load_error(tmp_path, taxonomy)
    assert error.path == str(path)
    assert error.field == field
    assert fragment in error.detail
    assert str(error).startswith(f"{path}: {field}: ")


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ("Summary only, no heading.\n", "Practice Implications", "missing the '## Practice"),
        ("Summary.\n\n## Implications\n\nText.\n", "Practice Implications", "missing"),
        ("Summary.\n\n## Practice Implications\n\n   \n", "Practice Implications", "empty"),
        ("## Practice Implications\n\nText.\n", "body", "summary text before the heading"),
    ],
)
def test_body_errors(
    tmp_path: Path, taxonomy: Taxonomy, body: str, field: str, fragment: str
) -> None:
    path = write_summary(tmp_path / "2025-03", body=body)
    error = load_error(tmp_path, taxonomy)
    assert error.path == str(path)
    assert error.field == field
    assert fragment in error.detail


@pytest.mark.parametrize(
    "heading",
    ["## Practice Implications", "### practice implications", "# PRACTICE IMPLICATIONS #"],
)
def test_implications_heading_any_level_and_case(taxonomy: Taxonomy, heading: str) -> None:
    text = f"---\n{FRONT}---\nSummary.\n\n{heading}\n\nDo this.\n"
    summary = parse_summary(text, "x.md", "2025-03", taxonomy)
    assert summary.summary_md == "Summary."
    assert summary.implications_md == "Do this."


def test_bad_yaml_reports_the_line_of_the_file(tmp_path: Path, taxonomy: Taxonomy) -> None:
    # line 1 is the fence; the bracket opened on line 3 is never closed.
    front = "title: T\ntopics: [Empathy, Training\nresearch_type: Review\n"
    path = write_summary(tmp_path / "2025-03", front=front)
    error = load_error(tmp_path, taxonomy)
    assert error.path == str(path)
    assert "invalid YAML front matter" in error.detail
    assert "line 3" in error.detail


def test_bad_yaml_line_is_not_shifted(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = write_summary(tmp_path / "2025-03", front=FRONT + "citation: a: b\n")  # line 5
    error = load_error(tmp_path, taxonomy)
    assert str(error).startswith(f"{path}: line 5: invalid YAML front matter")


def test_bad_yaml_line_counts_blank_lines_after_the_fence(taxonomy: Taxonomy) -> None:
    text = f"---\n\n\n{FRONT}citation: a: b\n---\n{BODY}"  # the bad line is line 7
    with pytest.raises(ContentError, match=r"x\.md: line 7: invalid YAML"):
        parse_summary(text, "x.md", "2025-03", taxonomy)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Just a summary.\n\n## Practice Implications\n\nText.\n", "must start with YAML front"),
        ("\n---\n" + FRONT + "---\n" + BODY, "must start with YAML front"),
        ("---\n" + FRONT + BODY, "no closing '---' line"),
        ("---\n- Empathy\n- Training\n---\n" + BODY, "must be a mapping"),
    ],
)
def test_front_matter_shape_errors(
    tmp_path: Path, taxonomy: Taxonomy, text: str, fragment: str
) -> None:
    path = tmp_path / "2025-03" / "01-x.md"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    error = load_error(tmp_path, taxonomy)
    assert error.path == str(path)
    assert fragment in error.detail


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_byte_order_mark_and_crlf_are_accepted(
    tmp_path: Path, taxonomy: Taxonomy, newline: str
) -> None:
    path = tmp_path / "2025-03" / "01-x.md"
    path.parent.mkdir()
    text = f"---\n{FRONT}---\n{BODY}".replace("\n", newline)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    summary = load(tmp_path, taxonomy).summaries[0]
    assert summary.title == "Empathy Predicts Outcome"
    assert summary.implications_md == "Listen well."


def test_non_utf8_file(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = write_summary(tmp_path / "2025-03")
    path.write_bytes(f"---\n{FRONT}---\nCafé au lait.\n".encode("latin-1"))
    error = load_error(tmp_path, taxonomy)
    assert error.path == str(path)
    assert "not UTF-8" in error.detail


def test_duplicate_slugs_in_one_month(tmp_path: Path, taxonomy: Taxonomy) -> None:
    first = write_summary(tmp_path / "2025-03", "01-empathy.md")
    second = write_summary(tmp_path / "2025-03", "02-empathy.md")
    error = load_error(tmp_path, taxonomy)
    assert error.field == "slug"
    assert error.path == str(second)
    assert "same slug 'empathy'" in error.detail
    assert str(first) in error.detail


def test_month_without_summaries(tmp_path: Path, taxonomy: Taxonomy) -> None:
    folder = tmp_path / "2025-03"
    folder.mkdir()
    (folder / "issue.md").write_text("---\nsubject: Hello\n---\nIntro.\n", encoding="utf-8")
    assert "no summaries" in str(load_error(tmp_path, taxonomy))


@pytest.mark.parametrize(
    ("front", "field"),
    [("subject: Hi\nauthor: Me\n", "author"), ("subject: Hi\npublic: maybe\n", "public")],
)
def test_issue_md_errors(tmp_path: Path, taxonomy: Taxonomy, front: str, field: str) -> None:
    write_summary(tmp_path / "2025-03")
    issue_md = tmp_path / "2025-03" / "issue.md"
    issue_md.write_text(f"---\n{front}---\nIntro.\n", encoding="utf-8")
    error = load_error(tmp_path, taxonomy)
    assert error.path == str(issue_md)
    assert error.field == field


@pytest.mark.parametrize("month", ["2025-13", "2025-00", "2025-3", "25-03", "march", "2025_03"])
def test_month_must_be_yyyy_mm(tmp_path: Path, taxonomy: Taxonomy, month: str) -> None:
    write_summary(tmp_path / month)
    error = load_error(tmp_path, taxonomy, month)
    assert error.path == month
    assert "YYYY-MM" in error.detail


def test_missing_month_folder(tmp_path: Path, taxonomy: Taxonomy) -> None:
    error = load_error(tmp_path, taxonomy, "2099-01")
    assert error.path == str(tmp_path / "2099-01")
    assert "no such month folder" in error.detail


def test_every_problem_of_every_file_at_once(tmp_path: Path, taxonomy: Taxonomy) -> None:
    """`load_issue` (what send and preview use) lists every problem, each file named once."""
    first = write_summary(tmp_path / "2025-03", "01-a.md", front="topics: [Empaty]\n", body="x\n")
    second = write_summary(tmp_path / "2025-03", "02-b.md", front=FRONT + "order: first\n")
    error = load_error(tmp_path, taxonomy)
    assert isinstance(error, ContentProblems)
    assert [(Path(p.path).name, p.field) for p in error.problems] == [
        ("01-a.md", "title"),
        ("01-a.md", "topics"),
        ("01-a.md", "research_type"),
        ("01-a.md", "Practice Implications"),
        ("02-b.md", "order"),
    ]
    assert error.path == str(tmp_path / "2025-03")
    assert str(error) == (
        f"{first}: title: is required; topics: unknown topic 'Empaty'; did you mean 'Empathy'?; "
        "research_type: is required; Practice Implications: missing the '## Practice "
        f"Implications' heading; {second}: order: must be a whole number (5 problems in 2 files)"
    )


def test_an_intro_part_for_a_broken_summary_is_not_refused_too(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    write_summary(tmp_path / "2025-03", "01-empathy.md")
    write_summary(tmp_path / "2025-03", "02-broken.md", front="title: T\n")
    (tmp_path / "2025-03" / "issue.md").write_text(
        "---\nsubject: S\n---\n{summary=broken} About the broken one.\n", encoding="utf-8"
    )
    error = load_error(tmp_path, taxonomy)
    assert isinstance(error, ContentProblems)
    assert all(Path(p.path).name == "02-broken.md" for p in error.problems)


def test_raw_html_is_noted_with_its_line(taxonomy: Taxonomy) -> None:
    body = "Text.\n\nA <b>b</b>\nthen <i>i</i>.\n\n## Practice Implications\n\n<p>x</p>\n"
    summary = parse_summary(f"---\n{FRONT}---\n\n{body}", "x.md", "2025-03", taxonomy)
    assert [note.split(" is shown")[0] for note in summary.notes] == [
        "x.md: line 9: raw HTML “<b>”, “</b>”",
        "x.md: line 10: raw HTML “<i>”, “</i>”",
        "x.md: line 14: raw HTML “<p>x</p>”",
    ]


# --- Markdown -----------------------------------------------------------------------------------


def test_raw_html_is_escaped(taxonomy: Taxonomy) -> None:
    body = (
        "Text with <script>alert('x')</script> and <b onclick=\"x()\">bold</b> *emphasis*.\n\n"
        '## Practice Implications\n\n<iframe src="https://evil.example"></iframe>\n'
    )
    summary = parse_summary(f"---\n{FRONT}---\n{body}", "x.md", "2025-03", taxonomy)
    assert "<script" not in summary.summary_html
    assert "&lt;script&gt;" in summary.summary_html
    assert "<b " not in summary.summary_html
    assert "<em>emphasis</em>" in summary.summary_html
    assert "<iframe" not in summary.implications_html
    assert "&lt;iframe" in summary.implications_html


def test_markdown_is_rendered(taxonomy: Taxonomy) -> None:
    body = (
        "First paragraph with a [link](https://example.org).\n\nSecond **strong**.\n\n"
        "## Practice Implications\n\n- one\n- two\n"
    )
    summary = parse_summary(f"---\n{FRONT}---\n{body}", "x.md", "2025-03", taxonomy)
    assert summary.summary_html == (
        '<p>First paragraph with a <a href="https://example.org">link</a>.</p>\n'
        "<p>Second <strong>strong</strong>.</p>"
    )
    assert summary.implications_html == "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"


# --- months -------------------------------------------------------------------------------------


def test_list_months_ignores_other_folders_and_files(tmp_path: Path) -> None:
    for name in ["2025-01", "2024-12", "drafts", "2025-13", "2025-1", "2025-02.old"]:
        (tmp_path / name).mkdir()
    (tmp_path / "2025-03").write_text("a file, not a folder", encoding="utf-8")
    assert list_months(tmp_path) == ["2024-12", "2025-01"]
    assert latest_month(tmp_path) == "2025-01"


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("2022-9", "2022-09"),
        ("2022_09", "2022-09"),
        ("202209", "2022-09"),
        ("9-2022", "2022-09"),
        ("Sept-2022", "2022-09"),
        ("september 2022", "2022-09"),
        ("2022-Sep", "2022-09"),
        ("2022-13", None),
        ("2022-0", None),
    ],
)
def test_misnamed_month_folders(tmp_path: Path, name: str, meant: str | None) -> None:
    for other in (name, "2022-10", "drafts", "2025-02.old", "maybe-2022"):
        (tmp_path / other).mkdir()
    assert misnamed_months(tmp_path) == [(name, meant)]
    assert list_months(tmp_path) == ["2022-10"]


def test_list_months_of_the_fixtures() -> None:
    assert list_months(CONTENT) == ["2025-01", "2025-02"]
    assert latest_month(CONTENT) == "2025-02"


def test_latest_month_without_months(tmp_path: Path) -> None:
    (tmp_path / "drafts").mkdir()
    with pytest.raises(ContentError, match="no YYYY-MM month folders"):
        latest_month(tmp_path)


def test_missing_content_folder(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="content folder not found"):
        list_months(tmp_path / "nope")
