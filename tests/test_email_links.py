"""The digest's table of contents, its links to the archive, the byline, and the text part
keeping every link of the HTML part (real rendering: Jinja2 → MJML → premailer)."""

from __future__ import annotations

import dataclasses
import itertools
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from newsletter.content.reader import load_issue
from newsletter.errors import ContentError
from newsletter.render.email import Renderer

LINKED = """---
title: "Links: every kind"
topics: [Empathy]
research_type: Review
author: Dr. Ada Example
doi: 10.1000/xyz(1)
---
See [the trial](https://example.org/trials?id=1&arm=b "The trial"), the
[registry](https://example.org/café/entry) and <https://example.org/auto>, a page
with [parentheses](https://en.example.org/wiki/Alliance_(therapy)) and [a reference][ref].
Write to <editor@example.org>.

- a list item with a [very long link](https://example.org/a/very/long/path/that/does/not/fit/on/one/line/of/the/text/part)
- and `code`, *emphasis*

[ref]: https://example.org/reference

## Practice Implications

Read [the guideline](https://example.org/guideline#section-2).
"""

PLAIN = """---
title: A Second Summary Without Links
topics: [Empathy]
research_type: Review
---
Nothing to click here.

## Practice Implications

Nor here.
"""

INTRO = """---
subject: Links everywhere
---
This month, a [note from the editor](https://example.org/editor?from=intro).
"""


class Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])


def hrefs(html: str) -> list[str]:
    parser = Hrefs()
    parser.feed(html)
    return parser.hrefs


@pytest.fixture
def issue(settings, taxonomy):
    return load_issue(settings.content.dir, "2025-01", taxonomy, "Test Digest")


@pytest.fixture
def renderer(settings):
    return Renderer(settings)


@pytest.fixture
def linked_issue(settings, taxonomy):
    month = Path(settings.content.dir) / "2030-01"
    month.mkdir(parents=True)
    (month / "issue.md").write_text(INTRO, encoding="utf-8")
    (month / "01-links.md").write_text(LINKED, encoding="utf-8")
    (month / "02-plain.md").write_text(PLAIN, encoding="utf-8")
    return load_issue(settings.content.dir, "2030-01", taxonomy, "Test Digest")


def every_variant(issue):
    """Every non-empty set of the issue's summaries, personal and not."""
    summaries = issue.summaries
    for size in range(1, len(summaries) + 1):
        for chosen in itertools.combinations(summaries, size):
            for personal in (False, True):
                yield chosen, personal


def in_text(href: str, text: str) -> bool:
    """Whether the text holds the whole address (not as the start of a longer one)."""
    pattern = r"(?:^|[\s<(])" + re.escape(href) + r"(?:$|[\s>),;]|\.(?:\s|$))"
    return re.search(pattern, text, re.MULTILINE) is not None


def assert_text_keeps_every_link(rendered) -> None:
    links = hrefs(rendered.html)
    assert links, "the HTML part has no link at all"
    missing = [href for href in links if not in_text(href, rendered.text)]
    assert missing == [], f"links of the HTML part missing from the text part: {missing}"


def test_text_part_keeps_every_link_of_the_fixture_issue(issue, renderer) -> None:
    for chosen, personal in every_variant(issue):
        assert_text_keeps_every_link(renderer.render(issue, chosen, personal=personal))


def test_text_part_keeps_every_kind_of_markdown_link(linked_issue, renderer) -> None:
    for chosen, personal in every_variant(linked_issue):
        rendered = renderer.render(linked_issue, chosen, personal=personal)
        assert_text_keeps_every_link(rendered)
    full = renderer.render(linked_issue, linked_issue.summaries, personal=False)
    links = hrefs(full.html)
    # The HTML's own forms of the addresses: percent-encoded, parentheses kept, no title.
    assert "https://example.org/caf%C3%A9/entry" in links
    assert "https://en.example.org/wiki/Alliance_(therapy)" in links
    assert "https://example.org/reference" in links
    assert "mailto:editor@example.org" in links
    text = full.text
    assert "the trial <https://example.org/trials?id=1&arm=b>" in text
    assert "<https://example.org/auto>" in text and "https://example.org/auto <" not in text
    assert "[ref]:" not in text  # the definition's address is shown where it is used
    long_link = (
        "https://example.org/a/very/long/path/that/does/not/fit/on/one/line/of/the/text/part"
    )
    assert f"<{long_link}>" in text  # not broken across lines
    assert "*emphasis*" not in text and "`code`" not in text


def test_a_digest_of_several_summaries_opens_with_a_table_of_contents(issue, renderer) -> None:
    rendered = renderer.render(issue, issue.summaries, personal=False)
    html = rendered.html
    toc = html[html.index("In this issue") : html.index("</ol>", html.index("In this issue"))]
    permalinks = [f"https://news.example.org/2025-01/{s.slug}/" for s in issue.summaries]
    assert hrefs(toc) == permalinks  # in reading order, each to its archive page
    for summary, url in zip(issue.summaries, permalinks, strict=True):
        assert f">{summary.title}</a>" in toc
        assert html.count(f'href="{url}"') == 2  # the contents and the summary's title
    assert html.index("In this issue") < html.index("<h2")  # before the first summary
    text = rendered.text
    contents = text[text.index("IN THIS ISSUE") : text.index("-" * 70)]
    for number, (summary, url) in enumerate(zip(issue.summaries, permalinks, strict=True), 1):
        entry = contents[contents.index(f"{number:2d}. ") : contents.index(url)]
        assert " ".join(entry.split()) == f"{number}. {summary.title}", number
        assert f"\n    {url}\n" in contents  # the address on a line of its own


def test_the_text_contents_stay_within_72_columns(issue, renderer) -> None:
    """Long titles wrap under their number; an address too long for the column is alone on
    its line, unbroken (a broken link cannot be clicked)."""
    long_title = (
        "A Very Long Title About the Therapeutic Alliance, Its Ruptures and Repairs, and What "
        "Clinicians Can Learn From Them in Everyday Practice"
    )
    long_slug = "a-slug-so-long-that-its-archive-address-cannot-fit-on-one-line-of-the-text"
    summaries = (
        dataclasses.replace(issue.summaries[0], title=long_title),
        dataclasses.replace(issue.summaries[1], slug=long_slug),
        *issue.summaries[2:],
    )
    # No intro: the digest then says what it brings, one summary on a bulleted line.
    long_issue = dataclasses.replace(issue, summaries=summaries, intro=type(issue.intro)())
    for chosen in (summaries, summaries[:1]):  # the contents, and the one-summary line
        text = renderer.render(long_issue, chosen, personal=False).text
        start = text.index("IN THIS ISSUE") if len(chosen) > 1 else text.index("brings you")
        contents = text[start : text.index("-" * 70)]
        for line in contents.splitlines():
            lone_url = line.strip().startswith("https://") and " " not in line.strip()
            assert len(line) <= 72 or lone_url, line
        words = " ".join(contents.split())
        assert long_title in words  # every word kept, in order
    contents = renderer.render(long_issue, summaries, personal=False).text
    contents = contents[contents.index("IN THIS ISSUE") : contents.index("-" * 70)]
    long_url = f"https://news.example.org/2025-01/{long_slug}/"
    assert f"\n{long_url}\n" in contents  # alone on its line, not indented past 72
    first, second, third = contents.split("\n")[2:5]
    assert first.startswith(" 1. A Very Long Title") and second.startswith("    ")
    assert third.startswith("    ") and not third.startswith("     ")  # under the title


def test_a_single_summary_has_no_table_of_contents(issue, renderer) -> None:
    rendered = renderer.render(issue, issue.summaries[:1], personal=True)
    assert "In this issue" not in rendered.html
    assert "IN THIS ISSUE" not in rendered.text


def test_without_an_intro_the_digest_says_how_many_summaries(issue, renderer) -> None:
    bare = dataclasses.replace(issue, intro=type(issue.intro)())
    several = renderer.render(bare, bare.summaries, personal=False)
    assert "brings you 3 summaries." in several.text
    assert "brings you 3 summaries." in several.html
    one = renderer.render(bare, bare.summaries[:1], personal=False)
    line = one.text[one.text.index("brings you 1 summary:") :].split("\n\n")[0]
    assert line.startswith("brings you 1 summary:\n  * ")
    assert " ".join(line.split()) == f"brings you 1 summary: * {bare.summaries[0].title}"
    assert all(len(part) <= 72 for part in line.splitlines())


def test_byline_from_front_matter_or_the_configured_default(
    settings, linked_issue, renderer
) -> None:
    rendered = renderer.render(linked_issue, linked_issue.summaries, personal=False)
    assert rendered.html.count("By Dr. Ada Example") == 1
    assert "\nBy Dr. Ada Example\n" in rendered.text
    assert rendered.text.count("\nBy ") == 1  # the second summary has none
    settings.content.default_author = "The Editors"
    with_default = Renderer(settings).render(linked_issue, linked_issue.summaries, personal=False)
    assert "By Dr. Ada Example" in with_default.html  # its own wins
    assert with_default.html.count("By The Editors") == 1  # the one without `author:`
    assert "\nBy The Editors\n" in with_default.text


def test_a_byline_is_one_line_of_text(settings, taxonomy, renderer) -> None:
    month = Path(settings.content.dir) / "2030-02"
    month.mkdir(parents=True)
    (month / "01-x.md").write_text(
        PLAIN.replace("research_type: Review", "research_type: Review\nauthor: <b>Tom</b> & Co"),
        encoding="utf-8",
    )
    issue = load_issue(settings.content.dir, "2030-02", taxonomy, "Test Digest")
    html = renderer.render(issue, issue.summaries, personal=False).html
    assert "By &lt;b&gt;Tom&lt;/b&gt; &amp; Co" in html
    with pytest.raises(ValueError, match="line breaks"):
        settings.content.default_author = "Two\nlines"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("author: [Ada, Bob]", "author: must be text, not a list or mapping"),
        ("author: " + "x" * 201, "author: at most 200 characters"),
    ],
)
def test_a_bad_byline_is_an_error_naming_the_file_and_field(settings, taxonomy, line, message):
    month = Path(settings.content.dir) / "2030-03"
    month.mkdir(parents=True)
    (month / "01-x.md").write_text(
        PLAIN.replace("research_type: Review", f"research_type: Review\n{line}"), encoding="utf-8"
    )
    with pytest.raises(ContentError) as problems:
        load_issue(settings.content.dir, "2030-03", taxonomy, "Test Digest")
    assert f"01-x.md: {message}" in str(problems.value)
