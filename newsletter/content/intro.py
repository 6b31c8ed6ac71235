"""An issue's intro, written once with parts tied to summaries (pure, no I/O).

In `issue.md`, a paragraph or a bullet-list item that starts with `{summary=<slug>}` belongs to
that summary: a reader sees it only when their variant holds that summary. Everything else is
the common part, which every reader sees. The Markdown stays plain: an editor sees the marker as
text, and `Intro.markdown` gives the Markdown for any set of summaries with the markers removed.

    This month: two questions about choosing treatments well.

    - {summary=potentially-harmful-therapies} A review of therapies that can do harm.
    - {summary=adding-psychotherapy-to-medication} What psychotherapy adds to antidepressants.

`parse_intro` finds the parts and refuses what would otherwise reach readers as stray markers
(a marker in the middle of a paragraph, with no text after it, in a heading or a numbered list);
`newsletter.content.reader` checks the slugs against the month's summaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field

from markdown_it import MarkdownIt
from markdown_it.token import Token

from newsletter.content.markup import raw_html_notes
from newsletter.errors import ContentError
from newsletter.errors import raise_content_problems

# The one spelling: `{summary=slug}`, at the start of a paragraph or list item.
MARKER_RE = re.compile(r"\{summary=([a-z0-9][a-z0-9-]*)\}")
# Anything that looks like an attempt at a marker ({summary: x}, {Summaries=x}, { summary = x }):
# refused with the right spelling rather than mailed to readers as literal text.
_LOOSE_MARKER_RE = re.compile(r"\{\s*summar(?:y|ies)\s*[=:]", re.I)

_markdown = MarkdownIt("commonmark", {"html": False, "typographer": False})


@dataclass(frozen=True)
class IntroPart:
    """One block of the intro tied to one summary.

    `start`..`end` are the 0-based source lines the block covers (trailing blank lines left
    out); `marker_line` is the source line holding the marker; `line` is its line in the file.
    """

    slug: str
    start: int
    end: int
    marker_line: int
    line: int


@dataclass(frozen=True)
class Intro:
    """The intro's Markdown source (markers included) and the parts tied to summaries."""

    source: str = ""
    parts: tuple[IntroPart, ...] = ()
    path: str = ""  # the issue.md it came from, for messages
    notes: tuple[str, ...] = field(default=(), compare=False)  # warnings (raw HTML)

    def __bool__(self) -> bool:
        return bool(self.source.strip())

    @property
    def slugs(self) -> frozenset[str]:
        """The summaries that have a part of their own."""
        return frozenset(part.slug for part in self.parts)

    def markdown(self, slugs: Iterable[str] | None = None) -> str:
        """The common part plus the parts of `slugs` (None: every part), markers removed."""
        wanted = None if slugs is None else frozenset(slugs)
        lines: list[str | None] = list(self.source.split("\n"))
        for part in self.parts:
            if wanted is not None and part.slug not in wanted:
                lines[part.start : part.end] = [None] * (part.end - part.start)
            elif (line := lines[part.marker_line]) is not None:  # None: inside a dropped part
                lines[part.marker_line] = _without_marker(line)
        text = "\n".join(line for line in lines if line is not None)
        return re.sub(r"\n[ \t]*(\n[ \t]*)+\n", "\n\n", text).strip()

    @property
    def common(self) -> str:
        """The Markdown every reader sees, whatever summaries they get."""
        return self.markdown(())


def _without_marker(line: str) -> str | None:
    """The line without its marker; None when the marker was all it held (the paragraph then
    starts on the next line)."""
    match = MARKER_RE.search(line)
    if match is None:
        return line
    before, after = line[: match.start()], line[match.end() :].lstrip(" \t")
    if not after and not before.strip():
        return None
    return before + after


def parse_intro(text: str, path: str = "", first_line: int = 1) -> Intro:
    """Find the parts of an intro. `first_line` is the file line of the text's first line.

    `ContentError` naming `path` and the line for a marker that is not at the start of a
    paragraph or bullet-list item, has no text after it, or is misspelt (`ContentProblems`
    listing each when there are several).
    """
    problems: list[ContentError] = []
    intro = read_intro(text, path, first_line, problems)
    raise_content_problems(path, problems)
    return intro


def read_intro(text: str, path: str, first_line: int, problems: list[ContentError]) -> Intro:
    """`parse_intro` that adds every problem to `problems` instead of stopping at the first;
    the parts found are those without a problem. Raw HTML is noted in `Intro.notes`."""
    if not text.strip():
        return Intro(text, (), path)
    tokens = _markdown.parse(text)
    lines = text.split("\n")
    parts: list[IntroPart] = []
    for index, token in enumerate(tokens):
        if token.type != "inline" or token.map is None:
            continue
        opener = tokens[index - 1] if index else None
        problems += _stray_markers(token, path, first_line)
        match = MARKER_RE.match(token.content)
        if match is None:
            continue
        where = first_line + token.map[0]
        if opener is None or opener.type != "paragraph_open":
            problem = "must start a paragraph or a list item, not a heading"
        elif not token.content[match.end() :].strip():
            problem = "needs the text it stands for after it, in the same paragraph"
        else:
            block = _tied_block(tokens, index - 1)
            if block.type == "list_item_open" and block.markup in (".", ")"):
                problem = (
                    "in a numbered list: readers who do not get every summary would see the "
                    "numbers skip; use a bullet list ('- ')"
                )
            else:
                assert block.map is not None
                start, end = block.map
                while end > start + 1 and not lines[end - 1].strip():
                    end -= 1  # keep the blank line that separates this block from the next
                parts.append(IntroPart(match.group(1), start, end, token.map[0], where))
                continue
        problems.append(ContentError(path, f"line {where}: {match.group(0)} {problem}"))
    notes = tuple(raw_html_notes(text, path, first_line))
    return Intro(text, tuple(parts), path, notes)


def _stray_markers(token: Token, path: str, first_line: int) -> list[ContentError]:
    """Marker-like text anywhere but at the very start of a paragraph is an error (text in
    `code` is left alone: it is shown as typed)."""
    assert token.map is not None
    line = first_line + token.map[0]
    problems = []
    for position, child in enumerate(token.children or ()):
        if child.type in ("softbreak", "hardbreak"):
            line += 1
            continue
        if child.type != "text":
            continue
        for found in _LOOSE_MARKER_RE.finditer(child.content):
            snippet = child.content[found.start() :].split("}", 1)[0] + "}"
            if MARKER_RE.match(child.content, found.start()) is None:
                problems.append(
                    ContentError(
                        path, f"line {line}: {snippet!r}: write the marker as {{summary=<slug>}}"
                    )
                )
            elif position != 0 or found.start() != 0:
                problems.append(
                    ContentError(
                        path,
                        f"line {line}: {snippet} must start its paragraph or list item "
                        "(it would otherwise be shown to readers as text)",
                    )
                )
    return problems


def _tied_block(tokens: list[Token], paragraph: int) -> Token:
    """The block a marked paragraph stands for: its list item when it opens one, else itself."""
    before = tokens[paragraph - 1] if paragraph else None
    if before is not None and before.type == "list_item_open":
        return before
    return tokens[paragraph]
