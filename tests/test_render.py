"""Rendering: golden outline of the HTML, golden text part, accessibility basics, slots."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import make_config
from outside_tools import update_golden

from newsletter.archive.generator import site_info
from newsletter.config import settings_from_dict
from newsletter.content.choice import TopicChoice
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.personalize import SLOT_RE
from newsletter.personalize import choose_variant
from newsletter.personalize import variant_summaries
from newsletter.render.checks import check_loaded_issue
from newsletter.render.email import Renderer
from newsletter.render.text import markdown_to_text

GOLDEN = Path(__file__).parent / "fixtures" / "golden"


class Outline(HTMLParser):
    """A readable outline of an email: headings, links, pills, match lines, meta tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._capture: str | None = None
        self._text: list[str] = []
        self.tables = 0
        self.presentation_tables = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "html":
            self.lines.append(f"html lang={attributes.get('lang')}")
        elif tag == "meta" and attributes.get("name") in ("color-scheme", "viewport"):
            self.lines.append(f"meta {attributes['name']}={attributes.get('content')}")
        elif tag == "table":
            self.tables += 1
            self.presentation_tables += attributes.get("role") == "presentation"
        elif tag == "a":
            self.lines.append(f"a href={attributes.get('href')}")
        elif tag in ("h1", "h2", "h3", "li") or "pill" in classes or "match" in classes:
            self._capture = "pill" if "pill" in classes else "match" if "match" in classes else tag
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._capture:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._capture and tag in ("h1", "h2", "h3", "li", "span", "td"):
            text = " ".join("".join(self._text).split())
            self.lines.append(f"{self._capture}: {text}")
            self._capture = None


VOID = {"area", "base", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"}


class InlineColour(HTMLParser):
    """The text colour inline styles give to the text `needle`: the nearest `color:` declared
    on it or an ancestor (what a mail client without the <style> block shows)."""

    def __init__(self, needle: str) -> None:
        super().__init__(convert_charrefs=True)
        self.needle = needle
        self.stack: list[tuple[str, str | None]] = []
        self.found: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in VOID:
            return
        style = dict(attrs).get("style") or ""
        colours = re.findall(r"(?:^|;)\s*color\s*:\s*([^;!]+)", style)
        self.stack.append((tag, colours[-1].strip().lower() if colours else None))

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self.needle in data:
            self.found.append(next((c for _, c in reversed(self.stack) if c), None))


def inline_colours(html: str, needle: str) -> list[str | None]:
    parser = InlineColour(needle)
    parser.feed(html)
    return parser.found


def outline(html: str) -> str:
    parser = Outline()
    parser.feed(html)
    return "\n".join(parser.lines) + "\n"


def assert_golden(name: str, actual: str) -> None:
    """Compare with tests/fixtures/golden/NAME; UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if update_golden():  # refused under CI
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}: run with UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8")


@pytest.fixture
def issue(settings, taxonomy):
    return load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)


@pytest.fixture
def renderer(settings):
    return Renderer(settings)


def test_full_issue_html_outline_matches_golden(issue, renderer) -> None:
    rendered = renderer.render(issue, issue.summaries, personal=False)
    assert_golden("2025-01-full.outline", outline(rendered.html))


def test_topic_variant_html_outline_matches_golden(issue, renderer) -> None:
    key = choose_variant(issue, frozenset({"alliance-and-therapeutic-relationship"}))
    rendered = renderer.render(issue, variant_summaries(issue, key), personal=key.personal)
    assert_golden("2025-01-alliance.outline", outline(rendered.html))


def test_text_parts_match_golden(issue, renderer) -> None:
    full = renderer.render(issue, issue.summaries, personal=False)
    assert_golden("2025-01-full.txt", full.text)
    key = choose_variant(issue, frozenset({"anxiety-disorders"}))
    one = renderer.render(issue, variant_summaries(issue, key), personal=True)
    assert_golden("2025-01-anxiety.txt", one.text)


def test_html_is_accessible_email_markup(issue, renderer) -> None:
    html = renderer.render(issue, issue.summaries, personal=True).html
    parser = Outline()
    parser.feed(html)
    assert 'lang="en"' in html
    assert parser.tables > 0 and parser.tables == parser.presentation_tables
    assert 'name="color-scheme"' in html
    assert "fonts.googleapis" not in html  # no third-party fonts
    assert "<img" not in html or re.search(r"<img(?![^>]*\balt=)", html) is None
    # premailer inlined the mj-style inline="inline" rules:
    assert re.search(r'class="pill"[^>]*style="[^"]*border-radius', html)
    # and kept the media queries for phones:
    assert "@media only screen and (max-width: 480px)" in html
    # and the dark mode that backs the color-scheme declaration (tests/test_email_browser.py):
    dark = html.index("@media (prefers-color-scheme: dark)")
    assert html.index(".card > table { background-color:", dark) < html.index("@media only", dark)


def test_preheader_is_hidden_without_text_coloured_like_its_background(issue, renderer) -> None:
    """mj-preview hides the preheader as white text: SpamAssassin's HTML_FONT_LOW_CONTRAST."""
    html = renderer.render(issue, issue.summaries, personal=False).html
    body = html[html.index("<body") :]
    found = re.search(r'<div class="preheader" style="([^"]*)">([^<]*)</div>', body)
    assert found, "no preheader"
    style = found.group(1).replace(" ", "")
    titles = "; ".join(s.title for s in issue.summaries)
    assert found.group(2) == titles.replace("&", "&amp;")
    for hidden in ("display:none", "mso-hide:all", "max-height:0", "overflow:hidden", "opacity:0"):
        assert hidden in style
    assert "color:" not in style  # the inherited text colour, never the background's
    assert re.sub(r"<[^>]+>|<!--.*?-->", "", body[: found.start()], flags=re.S).strip() == ""
    assert html.count(titles.replace("&", "&amp;")) == 1  # mj-preview's white copy is gone


def test_match_line_is_amber_in_the_inlined_html(issue, renderer) -> None:
    """The "Matches your topics" line: the mj-class's grey must not win over its amber."""
    html = renderer.render(issue, issue.summaries, personal=True).html
    assert inline_colours(html, "XNLMATCH1X") == ["#7b5e00"]
    # The meta lines stay grey: an APA citation (structured article) and a free-text one.
    assert inline_colours(html, "Krupnick, J. L., Sotsky, S. M.") == ["#52606d"]
    assert inline_colours(html, issue.summaries[1].citation[:30]) == ["#52606d"]


def test_the_newsletter_name_is_the_one_h1(issue, renderer) -> None:
    html = renderer.render(issue, issue.summaries, personal=True).html
    headings = re.findall(r"<h1\b[^>]*>(.*?)</h1>", html, re.S)
    assert [h.strip() for h in headings] == ["Test Digest"]
    h1 = re.search(r"<h1\b[^>]*>", html)
    assert h1 and re.search(r"font-size:\s*26px", h1.group(0))  # the masthead's size, as before
    assert html.index("<h1") < html.index("<h2")


def test_transactional_email_has_the_name_as_its_one_h1(settings, taxonomy, engine) -> None:
    import email
    import email.policy

    from newsletter.content.choice import TopicChoice
    from newsletter.tokens import Signer
    from newsletter.web.mail import Mailer
    from newsletter.web.mail import Person

    mailer = Mailer(settings, taxonomy, Signer(settings.secret_key()), engine)
    raw = mailer.confirmation(Person(1, "ada@example.net", "Ada", TopicChoice.every()))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert [h.strip() for h in re.findall(r"<h1\b[^>]*>(.*?)</h1>", html, re.S)] == ["Test Digest"]


def test_slots_survive_mjml_and_premailer(issue, renderer) -> None:
    rendered = renderer.render(issue, issue.summaries, personal=True)
    html_slots = {m.group(1) for m in SLOT_RE.finditer(rendered.html)}
    text_slots = {m.group(1) for m in SLOT_RE.finditer(rendered.text)}
    expected = {"GREETING", "EMAIL", "UNSUB", "PREFS", "MATCH1", "MATCH2", "MATCH3"}
    assert html_slots == expected | {"DROP1", "DROP2", "DROP3"}
    assert text_slots == expected | {"DROP1", "DROP2", "DROP3"}  # the text part has them too
    assert 'href="https://news.example.org/u/XNLUNSUBX"' in rendered.html


def test_stop_links_name_only_the_topics_the_reader_follows(issue, renderer) -> None:
    from newsletter.personalize import Recipient
    from newsletter.personalize import slot_values

    topics = frozenset({"alliance-and-therapeutic-relationship", "therapist-factors"})
    key = choose_variant(issue, topics)
    summaries = variant_summaries(issue, key)
    reader = Recipient("a@example.net", "A", TopicChoice.only(topics), "unsub-token", "prefs-token")
    values = slot_values(reader, summaries, for_html=True, base_url="https://n.example.org")
    first, second = values["DROP1"], values["DROP2"]  # alliance-in-depression, therapist-...
    assert "?drop=alliance-and-therapeutic-relationship" in first
    assert "depression" not in first  # a topic of the summary the reader does not follow
    assert first.count("<a ") == 1 and second.count("<a ") == 2
    assert 'href="https://n.example.org/preferences/prefs-token?drop=therapist-factors"' in second


def test_summary_content_is_escaped_and_markdown_rendered(settings, taxonomy, tmp_path) -> None:
    month = tmp_path / "content" / "2030-01"
    month.mkdir(parents=True)
    (month / "01-x.md").write_text(
        "---\ntitle: Tom & Jerry <b>bold</b>\ntopics: [Empathy]\nresearch_type: Review\n---\n"
        "Body with *emphasis* and <script>alert(1)</script>.\n\n## Practice Implications\nDo.\n",
        encoding="utf-8",
    )
    issue = load_issue(settings.content.dir, "2030-01", taxonomy, "X")
    html = Renderer(settings).render(issue, issue.summaries, personal=False).html
    assert "Tom &amp; Jerry &lt;b&gt;bold&lt;/b&gt;" in html
    assert "<em>emphasis</em>" in html
    assert "<script>" not in html


def test_template_override_folder_wins_and_can_extend_default(settings, issue, tmp_path) -> None:
    override = tmp_path / "my-templates" / "email"
    override.mkdir(parents=True)
    (override / "digest.txt.j2").write_text(
        '{% extends "default/email/digest.txt.j2" %}', encoding="utf-8"
    )
    settings.templates.dir = tmp_path / "my-templates"
    base = Renderer(settings).render(issue, issue.summaries, personal=False).text
    (override / "digest.txt.j2").write_text("Only {{ issue_label }}\n", encoding="utf-8")
    custom = Renderer(settings).render(issue, issue.summaries, personal=False).text
    assert "Practice Implications".upper() in base
    assert custom == "Only January 2025\n"


def test_markdown_to_text_keeps_lists_and_drops_emphasis() -> None:
    text = markdown_to_text("A *very* **bold** claim.\n\n- one\n- two [link](https://x.org)\n")
    assert text == "A very bold claim.\n\n  * one\n  * two link <https://x.org>"


def test_digest_links_to_the_archive_where_the_archive_is_built(tmp_path: Path) -> None:
    """The shipped config.toml sets only base_path: the digest and the archive agree on the URL."""
    settings = settings_from_dict(
        make_config(tmp_path, archive={"base_path": "/archive/"}), tmp_path
    )
    issue = load_issue(settings.content.dir, "2025-01", default_taxonomy(), "Test Digest")
    rendered = Renderer(settings).render(issue, issue.summaries, personal=False)
    assert settings.archive_url() == "https://news.example.org/archive/"
    assert site_info(settings).site_url == settings.archive_url()
    first = issue.summaries[0]
    assert f'href="https://news.example.org/archive/2025-01/{first.slug}/"' in rendered.html
    assert "https://news.example.org/archive/2025-01/" in rendered.text


def test_issues_check_says_1_summary_not_1_summaries(settings) -> None:
    issue = load_issue(settings.content.dir, "2025-01", default_taxonomy(), "Test Digest")
    one = dataclasses.replace(issue, summaries=issue.summaries[:1])
    assert check_loaded_issue(settings, one)[0].message.startswith("1 summary; subject:")
