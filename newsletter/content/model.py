"""The data that flows down the pipeline: a month's `Issue` and its `Summary` items (pure)."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from newsletter.content.article import Article
from newsletter.content.article import doi_url
from newsletter.content.intro import Intro
from newsletter.content.taxonomy import Term
from newsletter.errors import ContentError

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


# CommonMark without raw HTML: content is written by editors, but the email must stay valid.
_markdown = MarkdownIt("commonmark", {"html": False, "typographer": False})


@dataclass(frozen=True)
class Summary:
    """One article summary: metadata plus the two Markdown sections, already rendered to HTML."""

    month: str
    slug: str
    title: str
    topics: tuple[Term, ...]
    research_type: Term
    citation: str
    doi: str
    order: int | None
    summary_md: str
    implications_md: str
    source: str = ""
    notes: tuple[str, ...] = field(default=(), compare=False)  # warnings (raw HTML)
    article: Article | None = None  # the summarized article as structured data (CSL-JSON)
    corrected: dt.date | None = None  # when a sent summary was corrected (the archive says so)
    author: str = ""  # `author:` of the front matter; '' = `[content] default_author`

    @property
    def key(self) -> str:
        """Unique across months: 'YYYY-MM/slug'."""
        return f"{self.month}/{self.slug}"

    @property
    def doi_url(self) -> str:
        """https://doi.org/<doi>, or '' when there is no DOI."""
        return doi_url(self.doi)

    @property
    def summary_html(self) -> str:
        return markdown_to_html(self.summary_md)

    @property
    def implications_html(self) -> str:
        return markdown_to_html(self.implications_md)

    @property
    def topic_slugs(self) -> frozenset[str]:
        return frozenset(t.slug for t in self.topics)


@dataclass(frozen=True)
class Issue:
    """A month's issue: its summaries in reading order plus subject and intro.

    The intro may have parts tied to summaries (`newsletter.content.intro`): a variant shows
    `intro.markdown(<its slugs>)`, the archive the whole of it (`intro_md`).
    """

    month: str
    subject: str
    summaries: tuple[Summary, ...]
    intro: Intro = field(default_factory=Intro)
    preheader: str = ""
    public: bool = False
    has_custom_subject: bool = field(default=False, compare=False)

    @property
    def label(self) -> str:
        """'November 2026'."""
        return month_label(self.month)

    @property
    def archive_path(self) -> str:
        """Its page under the archive's URL: 'YYYY-MM/' (a round-up has none: '')."""
        return f"{self.month}/"

    @property
    def intro_md(self) -> str:
        """The whole intro (every part), markers removed: what the full issue shows."""
        return self.intro.markdown()

    @property
    def intro_html(self) -> str:
        intro = self.intro_md
        return markdown_to_html(intro) if intro else ""

    @property
    def notes(self) -> tuple[str, ...]:
        """The warnings of its files (raw HTML, which readers would see as text)."""
        return tuple(n for s in self.summaries for n in s.notes) + self.intro.notes

    def intro_for(self, slugs: Iterable[str]) -> str:
        """The intro Markdown of a variant: the common part plus the parts of `slugs`."""
        return self.intro.markdown(slugs)

    def summary_name(self, summary: Summary) -> str:
        """How variant keys name a summary of this issue: its slug (a round-up: its key)."""
        return summary.slug

    def summary(self, slug: str) -> Summary:
        """The summary with this slug."""
        for summary in self.summaries:
            if summary.slug == slug:
                return summary
        raise KeyError(slug)


def markdown_to_html(text: str, href: Callable[[str], str] | None = None) -> str:
    """CommonMark to HTML with raw HTML disabled.

    `href(url)` gives the address each link goes to instead of its own (the click redirect,
    `[tracking] clicks`); the link's text is left as written.
    """
    if href is None:
        html: str = _markdown.render(text)
        return html.strip()
    env: dict[str, Any] = {}
    tokens = _markdown.parse(text, env)
    rewrite_links(tokens, href)
    html = _markdown.renderer.render(tokens, _markdown.options, env)
    return html.strip()


def rewrite_links(tokens: Iterable[Token], href: Callable[[str], str]) -> None:
    """Point every link of parsed Markdown (`link_open`, autolinks included) at `href(url)`.
    On tokens, after markdown-it normalized the address: the HTML and the text part
    (`render.text`) then carry the very same rewritten address."""
    for token in tokens:
        if token.children:
            rewrite_links(token.children, href)
        if token.type == "link_open":
            url = str(token.attrs.get("href", ""))
            if url:
                token.attrs["href"] = href(url)


def month_label(month: str) -> str:
    """'2026-11' -> 'November 2026'."""
    year, number = parse_month(month)
    return f"{calendar.month_name[number]} {year}"


def parse_month(month: str) -> tuple[int, int]:
    """'2026-11' -> (2026, 11); ContentError unless YYYY-MM with a real month."""
    match = MONTH_RE.match(month)
    if not match:
        meant = meant_month(month)
        hint = f": did you mean {meant}?" if meant else ""
        raise ContentError(month, f"a month folder must be named YYYY-MM (e.g. 2026-11){hint}")
    return int(match.group(1)), int(match.group(2))


# Names that look like a month written another way: 2022-9, 2022_09, 202209, 9-2022,
# Sept-2022, 2022-September. Each gives a year and a month (a number, or a name to look up).
_LOOKS_LIKE_A_MONTH = [
    re.compile(r"^(?P<year>\d{4})[-_. ]?(?P<month>\d{1,2})$"),
    re.compile(r"^(?P<month>\d{1,2})[-_. ](?P<year>\d{4})$"),
    re.compile(r"^(?P<name>[a-z]{3,9})[-_. ]?(?P<year>\d{4})$", re.I),
    re.compile(r"^(?P<year>\d{4})[-_. ]?(?P<name>[a-z]{3,9})$", re.I),
]


def _month_number(name: str) -> int | None:
    """1-12 for an English month name or its start ('sep', 'Sept', 'september')."""
    wanted = name.casefold()
    for number in range(1, 13):
        full = calendar.month_name[number].casefold()
        if len(wanted) >= 3 and full.startswith(wanted):
            return number
    return None


def looks_like_a_month(name: str) -> bool:
    """Whether a folder name looks like a month not written YYYY-MM ('2022-9', '2022-13',
    'Sept-2022'), so it is worth a warning rather than silently ignored."""
    if MONTH_RE.match(name):
        return False
    for pattern in _LOOKS_LIKE_A_MONTH:
        match = pattern.match(name)
        if match and ("name" not in match.groupdict() or _month_number(match["name"])):
            return True
    return False


def meant_month(name: str) -> str | None:
    """The YYYY-MM a month-like name stands for ('Sept-2022' -> '2022-09'), or None when it
    is no month ('2022-13') or not month-like at all."""
    if not looks_like_a_month(name):
        return None
    for pattern in _LOOKS_LIKE_A_MONTH:
        match = pattern.match(name)
        if match is None:
            continue
        groups = match.groupdict()
        number = _month_number(groups["name"]) if "name" in groups else int(groups["month"])
        if number and 1 <= number <= 12:
            return f"{groups['year']}-{number:02d}"
    return None
