"""One blog post as a summary file (pure): its HTML as Markdown, split at "Practice
Implications", the APA citation line it starts with, its categories as topics.

The HTML is read with BeautifulSoup and turned into Markdown by markdownify (MIT, built on
BeautifulSoup, ATX headings; html2text would do as well but is GPL-3.0). The citation line and
the heading are found in the HTML, where a paragraph is still a paragraph, before conversion.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import yaml
from bs4 import BeautifulSoup
from bs4 import Comment
from bs4 import NavigableString
from bs4 import Tag
from markdownify import markdownify

from newsletter.backfill.feed import Post
from newsletter.backfill.feed import html_soup
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import Term
from newsletter.content.taxonomy import Vocabulary
from newsletter.content.taxonomy import slugify

IMPLICATIONS = "practice implications"

# The blog's other spellings of the taxonomy's labels (its tags were free text). The exact
# label, the slug and any case already match; an alias whose label is not in the configured
# taxonomy maps to nothing and is reported like any other unmapped category.
_CBT = "Cognitive Therapy (CT) and Cognitive-Behavioural Therapy (CBT)"
TOPIC_ALIASES = {
    "cbt": _CBT,
    "cognitive-behavioral-therapy": _CBT,
    "cognitive-behavioural-therapy": _CBT,
    "alliance": "Alliance and Therapeutic Relationship",
    "therapeutic-alliance": "Alliance and Therapeutic Relationship",
    "dropout": "Attendance, Attrition, and Drop-Out",
    "drop-out": "Attendance, Attrition, and Drop-Out",
    "depression": "Depression and Depressive Symptoms",
    "ptsd": "Trauma and/or PTSD",
    "trauma": "Trauma and/or PTSD",
    "psychodynamic-therapy": "Psychodynamic Therapy (PDT)",
    "interpersonal-psychotherapy": "Interpersonal Psychotherapy (IPT)",
    "routine-outcome-monitoring": "Feedback and Progress Monitoring",
    "medication": "Medications/Pharmacotherapy",
}
RESEARCH_TYPE_ALIASES = {
    "rct": "Randomized controlled trial",
    "randomised-controlled-trial": "Randomized controlled trial",
    "meta-analyses": "Meta-analysis",
    "qualitative": "Qualitative study",
    "qualitative-research": "Qualitative study",
    "practice-based-study": "Naturalistic/practice-based study",
    "naturalistic-study": "Naturalistic/practice-based study",
    "survey": "Survey/cross-sectional",
    "cross-sectional-study": "Survey/cross-sectional",
    "systematic-review": "Review",
}

# An APA reference: authors (with an initial, or an organization ending in '.'), the date in
# parentheses ('(2012)', '(2021, October 14)', '(n.d.)', '(in press)'), then title and source.
_APA = re.compile(
    r"^(?P<authors>[^()]{2,600}?)\s*"
    r"\((?P<date>\d{4}[a-z]?(?:,\s*[^()]{1,30})?|n\.\s?d\.|in press)\)\.\s+\S"
)
_INITIAL = re.compile(r"[A-Z][\w'’-]+,\s+(?:[A-Z]\.|[A-Z][a-z]+)")
_DOI = re.compile(r"(?:https?://(?:dx\.)?doi\.org/|\bdoi:\s*)(10\.\d{4,9}/\S+)", re.I)
_BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "table", "pre"}
_BLOCKS |= {"figure", "hr", "dl"}
_HEADINGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6"}  # a paragraph that says only the heading
_WRAPPERS = {"div", "section", "article", "main"}  # flattened: their blocks are the post's
_LEFT_OUT = ("img", "iframe", "script", "style", "form", "video", "audio", "object", "embed")


@dataclass(frozen=True)
class Converted:
    """A post as a summary: its fields, its two sections and what needs an editor's look."""

    title: str
    topics: tuple[Term, ...]
    research_type: Term | None
    unmapped: tuple[str, ...]  # the post's categories and tags that name no topic or type
    citation: str
    doi: str
    summary_md: str
    implications_md: str
    notes: tuple[str, ...]  # one line each: what the file lacks, and what was left out

    @property
    def ready(self) -> bool:
        """Whether `issues check` will accept the file as written."""
        fields = (self.title, self.topics, self.research_type)
        return all(fields) and bool(self.summary_md and self.implications_md)


def map_terms(
    terms: tuple[str, ...], taxonomy: Taxonomy
) -> tuple[tuple[Term, ...], list[Term], tuple[str, ...]]:
    """(topics, research types, unmapped) for a post's categories and tags."""
    topics: list[Term] = []
    types: list[Term] = []
    unmapped: list[str] = []
    for name in terms:
        topic = _find(taxonomy.topics, TOPIC_ALIASES, name)
        kind = None if topic else _find(taxonomy.research_types, RESEARCH_TYPE_ALIASES, name)
        if topic is not None:
            topics += [] if topic in topics else [topic]
        elif kind is not None:
            types += [] if kind in types else [kind]
        else:
            unmapped.append(name)
    return tuple(topics), types, tuple(unmapped)


def _find(vocabulary: Vocabulary, aliases: dict[str, str], name: str) -> Term | None:
    return vocabulary.find(name) or vocabulary.find(aliases.get(slugify(name), ""))


def convert_post(post: Post, taxonomy: Taxonomy) -> Converted:
    """The summary a post makes, with a note for each thing `issues check` will want fixed."""
    notes: list[str] = []
    topics, types, unmapped = map_terms(post.terms, taxonomy)
    if not post.title:
        notes.append("no title: `title` is left empty")
    if not topics:
        notes.append("no category is a topic of the taxonomy: `topics` is left empty")
    if not types:
        notes.append("no category is a type of research: `research_type` is left empty")
    elif len(types) > 1:
        others = ", ".join(t.label for t in types[1:])
        notes.append(f"several types of research: {types[0].label} is used, not {others}")
    blocks = _blocks(html_soup(post.html))
    left_out = [tag.name for block in blocks for tag in block.find_all(_LEFT_OUT)]
    left_out += [block.name for block in blocks if block.name in _LEFT_OUT]
    if left_out:
        counts = {name: left_out.count(name) for name in dict.fromkeys(left_out)}
        listed = ", ".join(f"{n} {name}" for name, n in counts.items())
        notes.append(f"left out of the Markdown (not for email): {listed}")
    citation, doi = "", ""
    if blocks:
        citation, doi = apa_citation(blocks[0])
    if citation:
        blocks = blocks[1:]
        if not doi:
            notes.append("the citation line has no DOI")
    else:
        notes.append("does not start with an APA citation line: `citation` is left out")
    summary, implications = _split(blocks)
    if implications is None:
        notes.append("no 'Practice Implications' heading: the section is left empty")
    summary_md = _markdown(summary)
    implications_md = _markdown(implications or [])
    if not summary_md:
        notes.append("no text before the Practice Implications: the summary is empty")
    elif implications is not None and not implications_md:
        notes.append("nothing under the Practice Implications heading")
    return Converted(
        title=post.title,
        topics=topics,
        research_type=types[0] if types else None,
        unmapped=unmapped,
        citation=citation,
        doi=doi,
        summary_md=summary_md,
        implications_md=implications_md,
        notes=tuple(notes),
    )


def _blocks(root: Tag) -> list[Tag]:
    """The post's paragraphs, headings and lists, in order.

    WordPress stores a post as typed, with blank lines for paragraphs, and adds the `<p>`s
    only when it shows it (its `wpautop`, which has no Python port): loose text and inline
    tags between blocks are cut at blank lines into paragraphs here. Gutenberg's `<!-- wp:
    -->` comments go; `<div>` wrappers are opened.
    """
    blocks: list[Tag] = []
    loose: list[str] = []

    def close_paragraphs() -> None:
        text = "".join(loose)
        loose.clear()
        for chunk in re.split(r"\n[ \t]*\n", text):
            if chunk.strip():
                paragraph = BeautifulSoup(f"<p>{chunk.strip()}</p>", "html.parser").p
                if paragraph is not None and paragraph.get_text(strip=True):
                    blocks.append(paragraph)

    for node in list(root.children):
        if isinstance(node, Comment):
            continue
        if isinstance(node, Tag) and node.name in _WRAPPERS:
            close_paragraphs()
            blocks += _blocks(node)
        elif isinstance(node, Tag) and (node.name in _BLOCKS or node.name in _LEFT_OUT):
            close_paragraphs()
            if node.get_text(strip=True) or node.name in _LEFT_OUT or node.find(_LEFT_OUT):
                blocks.append(node)
        elif isinstance(node, NavigableString | Tag):
            loose.append(str(node))
    close_paragraphs()
    for block in blocks:
        for comment in block.find_all(string=lambda s: isinstance(s, Comment)):
            comment.extract()
    return blocks


def apa_citation(block: Tag) -> tuple[str, str]:
    """(citation without its DOI, bare DOI) when the paragraph is an APA reference, else
    ('', ''). The DOI is read from the text or from a link's address."""
    if block.name != "p":
        return "", ""
    block = copy.copy(block)
    doi_links = [a for a in block.find_all("a") if _DOI.search(str(a.get("href", "")))]
    hrefs = " ".join(str(link.extract().get("href", "")) for link in doi_links)
    text = " ".join(block.get_text().split())
    match = _APA.match(text)
    if match is None or len(text) > 1000:
        return "", ""
    authors = match.group("authors")
    if not (_INITIAL.search(authors) or authors.endswith(".")):
        return "", ""
    found = _DOI.search(text) or _DOI.search(hrefs)
    doi = found.group(1).rstrip(".,;") if found else ""
    citation = _DOI.sub("", text)
    citation = re.sub(r"\s*\b(?:Retrieved from|Available at)\s*$", "", citation.strip())
    citation = re.sub(r"\s+([.,])", r"\1", citation).strip()
    return citation, doi


def _heading_text(tag: Tag) -> str:
    return " ".join(tag.get_text(" ").split()).rstrip(":").strip().casefold()


def _split(blocks: list[Tag]) -> tuple[list[Tag], list[Tag] | None]:
    """(summary blocks, Practice Implications blocks or None when there is no such heading).

    The heading is any `<h1>`-`<h6>`, or a paragraph that says only "Practice Implications"
    (bold or not, with or without a colon), or a bold "Practice Implications:" that starts a
    paragraph, whose rest is then the section's first paragraph.
    """
    for index, block in enumerate(blocks):
        if block.name in _HEADINGS and _heading_text(block) == IMPLICATIONS:
            return blocks[:index], blocks[index + 1 :]
        rest = _after_bold_heading(block) if block.name == "p" else None
        if rest is not None:
            tail = [rest] if rest.get_text(strip=True) else []
            return blocks[:index], tail + blocks[index + 1 :]
    return blocks, None


def _after_bold_heading(paragraph: Tag) -> Tag | None:
    """The rest of a paragraph that starts with a bold "Practice Implications:", or None."""
    lead = next((c for c in paragraph.children if not _blank(c)), None)
    if not isinstance(lead, Tag) or lead.name not in {"strong", "b"}:
        return None
    if _heading_text(lead) != IMPLICATIONS:
        return None
    rest = BeautifulSoup(str(paragraph), "html.parser").p
    assert rest is not None
    next(c for c in rest.children if not _blank(c)).extract()  # the bold heading
    first = rest.contents[0] if rest.contents else None
    if isinstance(first, NavigableString):
        first.replace_with(re.sub(r"^\s*:?\s*", "", str(first)))  # its colon, if outside it
    return rest


def _blank(node: object) -> bool:
    return isinstance(node, NavigableString) and not node.strip()


def _markdown(blocks: list[Tag]) -> str:
    """Markdown of the blocks: one paragraph a line, `-` bullets, `#` headings."""
    html = "\n".join(str(block) for block in blocks)
    text: str = markdownify(html, heading_style="ATX", bullets="-", strip=list(_LEFT_OUT))
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _quoted(value: str) -> str:
    """A YAML scalar in double quotes, as the hand-written summaries have their titles."""
    dumped = yaml.safe_dump(value, default_style='"', allow_unicode=True, width=1_000_000)
    return dumped.strip().removesuffix("...").strip()


def _plain_scalar(value: str) -> str:
    dumped = yaml.safe_dump(value, allow_unicode=True, width=1_000_000)
    return dumped.strip().removesuffix("...").strip()


def summary_text(summary: Converted, order: int, research_types: Vocabulary) -> str:
    """The summary file: front matter in the project's format, the summary, the heading and
    the Practice Implications. A field the post did not give is left empty with a `# to do`
    comment, so `issues check` names it until an editor fills it in."""
    lines = ["---", f"title: {_quoted(summary.title)}"]
    if summary.unmapped:
        listed = ", ".join(_quoted(name) for name in summary.unmapped)
        lines.append(f"# The blog's categories and tags not in the taxonomy: {listed}")
    if summary.topics:
        lines.append("topics:")
        lines += [f"  - {_plain_scalar(term.label)}" for term in summary.topics]
    else:
        lines.append("topics: []  # to do: at least one topic of the taxonomy")
    if summary.research_type is not None:
        lines.append(f"research_type: {_plain_scalar(summary.research_type.label)}")
    else:
        choices = ", ".join(term.label for term in research_types)
        lines.append(f'research_type: ""  # to do: one of {choices}')
    if summary.citation:
        lines.append(f"citation: {_quoted(summary.citation)}")
    if summary.doi:
        lines.append(f"doi: {_plain_scalar(summary.doi)}")
    lines += [f"order: {order}", "---"]
    body = [summary.summary_md, "## Practice Implications", summary.implications_md]
    return "\n".join(lines) + "\n" + "\n\n".join(part for part in body if part) + "\n"


def issue_text(month: str, ready: bool) -> str:
    """The month's `issue.md`: `public: true` (published long ago, so the web archive shows
    it), or, while one of its summaries lacks a field, `public: false` with a `# to do`: the
    archive refuses to build with a public month that fails `issues check`."""
    if ready:
        return "---\npublic: true\n---\n"
    todo = f"# to do: true once `newsletter issues check {month}` passes"
    return f"---\npublic: false  {todo}\n---\n"
