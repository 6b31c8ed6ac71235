"""`newsletter import feed`: a blog's back catalogue (WordPress WXR, RSS, Atom) as month folders.

The fixtures in tests/fixtures/feeds are written for these tests in the shape of a real
WordPress export (attachments, a page, a draft, Gutenberg and classic-editor posts, comments,
custom taxonomies) and of a blog's RSS and Atom feeds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import frontmatter
import pytest
from click.testing import CliRunner
from conftest import FIXTURES
from conftest import write_config

from newsletter.backfill.convert import RESEARCH_TYPE_ALIASES
from newsletter.backfill.convert import TOPIC_ALIASES
from newsletter.backfill.convert import apa_citation
from newsletter.backfill.convert import convert_post
from newsletter.backfill.feed import Post
from newsletter.backfill.feed import read_feed
from newsletter.backfill.importer import describe
from newsletter.backfill.importer import plan_import
from newsletter.backfill.importer import write_import
from newsletter.cli import main
from newsletter.content.reader import load_issue
from newsletter.content.reader import parse_summary
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import ContentError

FEEDS = FIXTURES / "feeds"
WXR = FEEDS / "wordpress-export.xml"
RSS = FEEDS / "blog-feed.rss"
ATOM = FEEDS / "blog-feed.atom"

WXR_FILES = {
    "2019-03": [
        "issue.md",
        "01-progress-feedback-helps-clients-at-risk.md",
        "02-clients-who-leave-therapy-early.md",
    ],
    "2019-04": [
        "issue.md",
        "01-repairing-alliance-ruptures.md",
        "02-do-therapists-get-better-with-experience.md",
    ],
    "2019-06": [
        "issue.md",
        "01-how-therapists-rate-themselves.md",
        "02-empathy-and-outcome.md",
    ],
}


def post(html: str, terms: tuple[str, ...] = ("Empathy", "Review"), title: str = "T") -> Post:
    return Post(title=title, published=dt.datetime(2019, 5, 1), html=html, terms=terms)


def folder_files(content: Path) -> dict[str, list[str]]:
    """{month: its file names, issue.md first}: what the import made under `content`."""
    return {
        month.name: sorted((p.name for p in month.iterdir()), key=lambda n: (n != "issue.md", n))
        for month in sorted(content.iterdir())
        if month.name.startswith("2019")
    }


# --- reading the file ------------------------------------------------------------------------


def test_a_wordpress_export_gives_its_published_posts_only() -> None:
    feed = read_feed(WXR)
    assert feed.kind == "WordPress export (WXR 1.2)"
    assert [p.title for p in feed.posts] == [
        "Clients Who Leave Therapy Early",
        "Progress Feedback Helps the Clients Most at Risk",
        "Repairing Ruptures in the Alliance",
        "Do Therapists Get Better With Experience?",
        "How Therapists Rate Their Own Effectiveness",
        "Empathy and Outcome",
    ]
    assert [(s.title, s.reason) for s in feed.skipped] == [
        ("clinic-waiting-room", "attachment"),
        ("About the Blog", "page"),
        ("Working Title: Group Therapy for Social Anxiety", "draft"),
    ]
    first = feed.posts[0]
    assert first.name == "clients-who-leave-therapy-early"
    # wp:post_date, the blog's own time: 31 March at 9:30 pm, which is 1 April in UTC.
    assert first.published == dt.datetime(2019, 3, 31, 21, 30)
    assert first.terms == (
        "Attendance, Attrition, and Drop-Out",
        "Dropout",
        "Premature Termination",
        "Meta-analysis",
    )


def test_rss_and_atom_posts_keep_the_date_as_the_blog_wrote_it() -> None:
    rss = read_feed(RSS)
    assert rss.kind == "RSS 2.0"
    assert [p.published.date() for p in rss.posts] == [
        dt.date(2020, 2, 12),
        dt.date(2020, 1, 22),
        dt.date(2020, 1, 8),
    ]
    atom = read_feed(ATOM)
    assert atom.kind == "Atom 1.0"
    (entry,) = atom.posts
    assert entry.published == dt.datetime(2018, 11, 30, 21, 0)  # 1 December in UTC
    assert entry.title == "The Alliance & Outcome in Adult Therapy"  # type="html", unescaped
    assert entry.terms == ("alliance-and-therapeutic-relationship", "Meta-analysis")


@pytest.mark.parametrize(
    "text",
    [
        "Meeting notes: nothing here is a feed.\n",
        "<html><body><p>A web page, not a feed</p></body></html>\n",
        "",
        '<?xml version="1.0"?><note><to>Someone</to></note>\n',
    ],
    ids=["text", "html", "empty", "other-xml"],
)
def test_a_file_that_is_not_a_feed_is_an_error_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContentError, match="not an RSS, Atom or WordPress export") as raised:
        read_feed(path)
    assert raised.value.path == str(path)


def test_a_title_or_body_that_looks_like_an_address_is_just_text(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    # BeautifulSoup warns that such text "looks like a URL"; the suite turns warnings into errors.
    path = tmp_path / "links.rss"
    path.write_text(
        '<?xml version="1.0"?>\n<rss version="2.0"><channel><title>t</title><item>'
        "<title>https://blog.example.org/a-post</title>"
        "<pubDate>Wed, 12 Feb 2020 14:00:00 +0000</pubDate>"
        "<description>notes.txt</description></item></channel></rss>\n",
        encoding="utf-8",
    )
    (found,) = read_feed(path).posts
    assert found.title == "https://blog.example.org/a-post"
    assert convert_post(found, taxonomy).summary_md == "notes.txt"


def test_entities_in_a_feed_are_not_expanded(tmp_path: Path) -> None:
    # An external entity would read a local file into the post; feedparser drops it.
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET", encoding="utf-8")
    path = tmp_path / "evil.rss"
    path.write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>\n'
        '<rss version="2.0"><channel><title>t</title><item><title>P</title>'
        "<pubDate>Wed, 12 Feb 2020 14:00:00 +0000</pubDate>"
        "<description>&x;</description></item></channel></rss>\n",
        encoding="utf-8",
    )
    feed = read_feed(path)
    assert all("TOP SECRET" not in p.html and "TOP SECRET" not in p.title for p in feed.posts)


# --- one post as a summary -------------------------------------------------------------------

CITATION = (
    "Swift, J. K., &amp; Greenberg, R. P. (2012). Premature discontinuation in adult "
    "psychotherapy: A meta-analysis. <em>Journal of Consulting and Clinical Psychology, 80</em>"
    "(4), 547–559."
)
PLAIN_CITATION = (
    "Swift, J. K., & Greenberg, R. P. (2012). Premature discontinuation in adult psychotherapy: "
    "A meta-analysis. Journal of Consulting and Clinical Psychology, 80(4), 547–559."
)


@pytest.mark.parametrize(
    ("html", "doi"),
    [
        (f"<p>{CITATION} https://doi.org/10.1037/a0028226</p>", "10.1037/a0028226"),
        (
            f'<p>{CITATION} <a href="https://doi.org/10.1037/a0028226">doi.org link</a></p>',
            "10.1037/a0028226",
        ),
        (f"<p>{CITATION} doi:10.1037/a0028226.</p>", "10.1037/a0028226"),
        (f"<p>{CITATION} http://dx.doi.org/10.1037/a0028226</p>", "10.1037/a0028226"),
        (f"<p>{CITATION}</p>", ""),
    ],
    ids=["url", "link", "doi-prefix", "dx", "none"],
)
def test_the_apa_line_gives_citation_and_doi(html: str, doi: str) -> None:
    from bs4 import BeautifulSoup

    paragraph = BeautifulSoup(html, "html.parser").p
    assert paragraph is not None
    assert apa_citation(paragraph) == (PLAIN_CITATION, doi)


@pytest.mark.parametrize(
    "first",
    [
        "Swift and Greenberg (2012). pooled studies of dropout.",
        "Therapists tend to be optimistic about their clients.",
        "Swift, J. K. and colleagues pooled studies of dropout in 2012.",
    ],
)
def test_a_post_that_does_not_start_with_a_reference_keeps_its_first_paragraph(
    first: str, taxonomy: Taxonomy
) -> None:
    html = f"<p>{first}</p><p>More.</p><h2>Practice Implications</h2><p>Do it.</p>"
    summary = convert_post(post(html), taxonomy)
    assert (summary.citation, summary.doi) == ("", "")
    assert summary.summary_md.startswith(first)
    assert "does not start with an APA citation line: `citation` is left out" in summary.notes


def test_advance_online_and_organization_references(taxonomy: Taxonomy) -> None:
    advance = (
        "Drinane, J. M., &amp; Wang, Y.-W. (2021, October 14). Sexual orientation and therapist "
        "effects. <em>Journal of Counseling Psychology</em>. Advance online publication."
    )
    summary = convert_post(post(f"<p>{advance}</p><p>Text.</p>"), taxonomy)
    assert summary.citation == (
        "Drinane, J. M., & Wang, Y.-W. (2021, October 14). Sexual orientation and therapist "
        "effects. Journal of Counseling Psychology. Advance online publication."
    )
    assert "the citation line has no DOI" in summary.notes
    organization = (
        "World Health Organization. (2019). <em>A report</em>. https://doi.org/10.1000/who.2019"
    )
    summary = convert_post(post(f"<p>{organization}</p><p>Text.</p>"), taxonomy)
    assert summary.citation == "World Health Organization. (2019). A report."
    assert summary.doi == "10.1000/who.2019"


BODY = "<p>The study found things.</p>"
IMPLICATIONS = "<p>Clinicians can do things.</p>"


@pytest.mark.parametrize(
    "heading",
    [
        "<h2>Practice Implications</h2>",
        "<h3>Practice implications</h3>",
        "<h6>PRACTICE IMPLICATIONS:</h6>",
        "<p><strong>Practice Implications</strong></p>",
        "<p><b>Practice Implications:</b></p>",
        "<p>Practice Implications</p>",
        "<!-- wp:heading --><h4>Practice  Implications</h4><!-- /wp:heading -->",
        "\n\n<strong>Practice Implications</strong>\n\n",
    ],
)
def test_the_body_is_split_at_any_practice_implications_heading(
    heading: str, taxonomy: Taxonomy
) -> None:
    summary = convert_post(post(BODY + heading + IMPLICATIONS), taxonomy)
    assert summary.summary_md == "The study found things."
    assert summary.implications_md == "Clinicians can do things."
    assert summary.ready


@pytest.mark.parametrize(
    "paragraph",
    [
        "<p><strong>Practice Implications:</strong> Clinicians can do things.</p>",
        "<p><strong>Practice Implications</strong>: Clinicians can do things.</p>",
        "<p><b>Practice implications</b> Clinicians can do things.</p>",
    ],
)
def test_a_bold_heading_that_starts_a_paragraph_leaves_the_rest_to_the_section(
    paragraph: str, taxonomy: Taxonomy
) -> None:
    summary = convert_post(post(BODY + paragraph + "<p>And more.</p>"), taxonomy)
    assert summary.summary_md == "The study found things."
    assert summary.implications_md == "Clinicians can do things.\n\nAnd more."


def test_a_phrase_in_the_text_is_not_a_heading(taxonomy: Taxonomy) -> None:
    html = BODY + "<p>The <strong>practice implications</strong> are discussed below.</p>"
    summary = convert_post(post(html), taxonomy)
    assert summary.implications_md == ""
    assert "no 'Practice Implications' heading: the section is left empty" in summary.notes
    assert not summary.ready


def test_wordpress_text_without_paragraph_tags_becomes_paragraphs(taxonomy: Taxonomy) -> None:
    html = (
        "<!-- wp:paragraph -->First line\nof the first paragraph with <em>emphasis</em>.\n\n"
        "Second paragraph.\n\n<ul><li>one</li><li>two</li></ul>\n\n"
        '<figure><img src="https://example.org/a.jpg" alt=""/></figure>\n\n'
        "<h2>Practice Implications</h2>\n\nDo it."
    )
    summary = convert_post(post(html), taxonomy)
    assert summary.summary_md == (
        "First line\nof the first paragraph with *emphasis*.\n\nSecond paragraph.\n\n- one\n- two"
    )
    assert summary.implications_md == "Do it."
    assert "left out of the Markdown (not for email): 1 img" in summary.notes


def test_categories_map_to_the_taxonomy_and_the_rest_is_reported(taxonomy: Taxonomy) -> None:
    terms = (
        "depression-and-depressive-symptoms",  # slug
        "EMPATHY",  # any case
        "CBT",  # the alias table
        "Empathy",  # twice: once
        "Emotion Regulation",  # nothing
        "RCT",  # a type of research, by alias
        "Uncategorized",
    )
    summary = convert_post(
        post(BODY + "<h2>Practice Implications</h2>" + IMPLICATIONS, terms), taxonomy
    )
    assert [t.label for t in summary.topics] == [
        "Depression and Depressive Symptoms",
        "Empathy",
        "Cognitive Therapy (CT) and Cognitive-Behavioural Therapy (CBT)",
    ]
    assert summary.research_type is not None
    assert summary.research_type.label == "Randomized controlled trial"
    assert summary.unmapped == ("Emotion Regulation", "Uncategorized")


def test_every_alias_names_a_term_of_the_default_taxonomy(taxonomy: Taxonomy) -> None:
    assert [a for a, label in TOPIC_ALIASES.items() if label not in taxonomy.topics] == []
    kinds = taxonomy.research_types
    assert [a for a, label in RESEARCH_TYPE_ALIASES.items() if label not in kinds] == []


# --- the plan, the dry run and the files -----------------------------------------------------


def test_the_plan_makes_one_folder_per_month_ordered_by_date(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    plan = plan_import(read_feed(WXR), tmp_path / "content", taxonomy)
    assert {m.month: [f.path.name for f in m.files] for m in plan.months} == WXR_FILES
    march = plan.months[0]
    # The feedback post is older: order 1, although the export lists it second.
    assert [frontmatter.loads(f.text).get("order") for f in march.files] == [None, 1, 2]
    assert not (tmp_path / "content").exists()  # planning writes nothing


def test_the_report_lists_each_post_mapping_and_what_it_lacks(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    lines = describe(plan_import(read_feed(WXR), tmp_path, taxonomy))
    text = "\n".join(lines)
    assert lines[0] == f"{WXR}: WordPress export (WXR 1.2), 6 published posts"
    assert lines[1] == (
        '  left out: 1 attachment, 1 page ("About the Blog"), '
        '1 draft ("Working Title: Group Therapy for Social Anxiety")'
    )
    early = text.index("02-clients-who-leave-therapy-early.md")
    assert text.index('not in the taxonomy: "Premature Termination"', early) < text.index(
        "2019-04:"
    )
    rate = text.index("01-how-therapists-rate-themselves.md")
    block = text[rate : text.index("02-empathy-and-outcome.md")]
    assert "topics: none | research type: Survey/cross-sectional" in block
    assert 'not in the taxonomy: "Uncategorized", "Self-Assessment Bias"' in block
    assert "note: no category is a topic of the taxonomy: `topics` is left empty" in block
    empathy = text[text.index("02-empathy-and-outcome.md") :]
    for note in (
        "no category is a type of research: `research_type` is left empty",
        "does not start with an APA citation line: `citation` is left out",
        "no 'Practice Implications' heading: the section is left empty",
    ):
        assert f"note: {note}" in empathy
    assert lines[-1] == (
        'Not in the taxonomy (left out of `topics`): "Premature Termination" (1 post), '
        '"Ruptures" (1 post), "Deliberate Practice" (1 post), "Uncategorized" (1 post), '
        '"Self-Assessment Bias" (1 post)'
    )


def test_an_imported_summary_reads_back_with_every_field(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    content = tmp_path / "content"
    result = write_import(plan_import(read_feed(WXR), content, taxonomy))
    assert len(result.written) == 9 and result.skipped == ()
    assert folder_files(content) == WXR_FILES
    path = content / "2019-03" / "02-clients-who-leave-therapy-early.md"
    summary = parse_summary(path.read_text(encoding="utf-8"), str(path), "2019-03", taxonomy)
    assert summary.slug == "clients-who-leave-therapy-early"
    assert summary.title == "Clients Who Leave Therapy Early"
    assert [t.label for t in summary.topics] == ["Attendance, Attrition, and Drop-Out"]
    assert summary.research_type.label == "Meta-analysis"
    assert summary.citation == PLAIN_CITATION
    assert summary.doi == "10.1037/a0028226"
    assert summary.order == 2
    assert summary.summary_md.startswith("Ending therapy before the work is done is common")
    assert "Swift, J. K." not in summary.summary_md  # the citation line is not repeated
    assert summary.summary_md.endswith("more likely to stop.")
    assert summary.implications_md.startswith("Roughly one client in five may stop")
    assert summary.implications_md.endswith("someone is about to leave.")
    assert "\n\nAsking regularly" in summary.implications_md
    # The unmapped tag stays in the file, as a comment an editor sees.
    assert '# The blog\'s categories and tags not in the taxonomy: "Premature Termination"' in (
        path.read_text(encoding="utf-8")
    )
    issue = frontmatter.loads((content / "2019-03" / "issue.md").read_text(encoding="utf-8"))
    assert issue.metadata == {"public": True}
    march = load_issue(content, "2019-03", taxonomy, "Digest")
    assert march.public
    assert [s.slug for s in march.summaries] == [
        "progress-feedback-helps-clients-at-risk",
        "clients-who-leave-therapy-early",
    ]
    feedback = march.summaries[0]
    assert feedback.doi == "10.1037/pst0000167"  # from the link
    assert "- the client’s motivation for change," in feedback.summary_md
    assert "*worse*" in feedback.summary_md


def test_rss_and_atom_files_import_too(tmp_path: Path, taxonomy: Taxonomy) -> None:
    content = tmp_path / "content"
    write_import(plan_import(read_feed(RSS), content, taxonomy))
    write_import(plan_import(read_feed(ATOM), content, taxonomy))
    january = load_issue(content, "2020-01", taxonomy, "Digest")
    assert [s.slug for s in january.summaries] == [
        "long-term-psychodynamic-therapy-for-complex-problems",  # from <description>
        "dialectical-behaviour-therapy-for-women-at-high-risk-of",  # cut at a word
    ]
    psychodynamic, dbt = january.summaries
    assert psychodynamic.doi == "10.1001/jama.300.13.1551"
    assert psychodynamic.implications_md.startswith("For clients with complex")
    assert [t.label for t in dbt.topics] == [
        "Suicide and Crisis Intervention",
        "Personality Disorders",
    ]
    assert dbt.research_type.label == "Randomized controlled trial"
    (empathy,) = load_issue(content, "2020-02", taxonomy, "Digest").summaries
    assert empathy.doi == "10.1037/pst0000175"
    assert empathy.research_type.label == "Meta-analysis"
    (alliance,) = load_issue(content, "2018-11", taxonomy, "Digest").summaries
    assert alliance.title == "The Alliance & Outcome in Adult Therapy"
    assert alliance.citation.startswith("Flückiger, C., Del Re, A. C., Wampold, B. E.")


def test_nothing_that_exists_is_overwritten(tmp_path: Path, taxonomy: Taxonomy) -> None:
    content = tmp_path / "content"
    (content / "2019-03").mkdir(parents=True)
    (content / "2019-06").mkdir()
    mine = {
        content / "2019-03" / "issue.md": "---\nsubject: An editor's subject\n---\n",
        content / "2019-06" / "empathy-and-outcome.md": "the same slug, another name\n",
    }
    for path, text in mine.items():
        path.write_text(text, encoding="utf-8")
    plan = plan_import(read_feed(WXR), content, taxonomy)
    lines = describe(plan)
    assert f"  skip  {content}/2019-03/issue.md: exists, not overwritten" in lines
    assert (
        f"  skip  {content}/2019-06/02-empathy-and-outcome.md: its summary exists as "
        f"{content}/2019-06/empathy-and-outcome.md, not overwritten"
    ) in lines
    assert f"2019-03: {content}/2019-03/ (exists)" in lines
    # A file that appears after the plan was made is not overwritten either.
    late = content / "2019-04" / "01-repairing-alliance-ruptures.md"
    late.parent.mkdir()
    late.write_text("written meanwhile\n", encoding="utf-8")
    result = write_import(plan)
    same_slug = content / "2019-06" / "02-empathy-and-outcome.md"
    assert set(result.skipped) == {content / "2019-03" / "issue.md", same_slug, late}
    assert not same_slug.exists()
    assert len(result.written) == 9 - 3
    for path, text in mine.items():
        assert path.read_text(encoding="utf-8") == text
    assert late.read_text(encoding="utf-8") == "written meanwhile\n"
    again = write_import(plan_import(read_feed(WXR), content, taxonomy))
    assert again.written == ()


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def run(runner: CliRunner, config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(main, ["--config", str(config), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_the_command_is_a_dry_run_by_default(runner: CliRunner, site: Path) -> None:
    content = site.parent / "content"
    before = sorted(p.relative_to(content) for p in content.rglob("*"))
    code, output = run(runner, site, "import", "feed", str(WXR))
    assert code == 0, output
    assert sorted(p.relative_to(content) for p in content.rglob("*")) == before
    assert "  new   " in output
    assert "Dry run, nothing written: --write writes 9 files in 3 months." in output
    assert output.rstrip().endswith(
        "2 summaries lack what `newsletter issues check` requires (see the notes above): "
        f"{content}/2019-06/01-how-therapists-rate-themselves.md, "
        f"{content}/2019-06/02-empathy-and-outcome.md"
    )


def test_written_months_pass_issues_check_or_fail_on_what_the_report_said(
    runner: CliRunner, site: Path
) -> None:
    content = site.parent / "content"
    code, output = run(runner, site, "import", "feed", str(WXR), "--write")
    assert code == 0, output
    assert "Wrote 9 files in 3 months." in output
    assert folder_files(content) == WXR_FILES
    for month in ("2019-03", "2019-04"):
        code, output = run(runner, site, "issues", "check", month)
        assert code == 0, output
        assert "warning" not in output, output
    code, output = run(runner, site, "issues", "check", "2019-06")
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("error")]
    assert errors == [
        f"error   {content}/2019-06/01-how-therapists-rate-themselves.md: topics: "
        "at least one topic is required",
        f"error   {content}/2019-06/02-empathy-and-outcome.md: research_type: is required",
        f"error   {content}/2019-06/02-empathy-and-outcome.md: Practice Implications: "
        "the section is empty",
    ]
    code, output = run(runner, site, "import", "feed", str(WXR), "--write")
    assert code == 0
    assert "Wrote 0 files in 0 months; 9 files left alone: they exist." in output


def test_the_archive_publishes_the_ready_months_and_waits_for_the_rest(
    runner: CliRunner, site: Path
) -> None:
    content = site.parent / "content"
    code, output = run(runner, site, "import", "feed", str(WXR), "--write")
    assert code == 0, output
    assert "2019-06/issue.md (public: false until `issues check` passes)" in output
    june = frontmatter.loads((content / "2019-06" / "issue.md").read_text(encoding="utf-8"))
    assert june.metadata == {"public": False}
    out = site.parent / "site"
    code, output = run(runner, site, "archive", "build", "--no-search", str(out))
    assert code == 0, output
    assert (out / "2019-03" / "clients-who-leave-therapy-early" / "index.html").exists()
    assert (out / "2019-04" / "repairing-alliance-ruptures" / "index.html").exists()
    assert not (out / "2019-06").exists()


def test_rss_months_pass_issues_check(runner: CliRunner, site: Path) -> None:
    code, output = run(runner, site, "import", "feed", str(RSS), "--write")
    assert code == 0, output
    assert "lack what" not in output
    for month in ("2020-01", "2020-02"):
        code, output = run(runner, site, "issues", "check", month)
        assert code == 0, output


@pytest.mark.parametrize("write", [[], ["--write"]])
def test_a_file_that_is_not_a_feed_is_one_error_line(
    runner: CliRunner, site: Path, write: list[str]
) -> None:
    notes = site.parent / "notes.txt"
    notes.write_text("Meeting notes.\n", encoding="utf-8")
    code, output = run(runner, site, "import", "feed", str(notes), *write)
    assert code == 1
    assert output.splitlines() == [
        f"Error: {notes}: not an RSS, Atom or WordPress export (WXR) file (XML: syntax error)"
    ]
