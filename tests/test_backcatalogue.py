"""`newsletter import feed`: a blog's back catalogue (WordPress WXR, RSS, Atom) as month folders.

The fixtures in tests/fixtures/feeds are written for these tests in the shape of a real
WordPress export (attachments, a page, a draft, Gutenberg and classic-editor posts, comments,
custom taxonomies) and of a blog's RSS and Atom feeds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import FIXTURES

from newsletter.backfill.convert import RESEARCH_TYPE_ALIASES
from newsletter.backfill.convert import TOPIC_ALIASES
from newsletter.backfill.convert import apa_citation
from newsletter.backfill.convert import convert_post
from newsletter.backfill.feed import Post
from newsletter.backfill.feed import read_feed
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
