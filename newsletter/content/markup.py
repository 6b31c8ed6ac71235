"""Raw HTML in an editor's Markdown (pure): where it is, so `issues check` can warn about it.

Content is rendered with raw HTML disabled (`newsletter.content.model.markdown_to_html`), so a
`<b>` or a `<!-- note -->` typed into a summary reaches readers as literal text, tags and all.
Here the same text is parsed once more with HTML enabled, and markdown-it's own HTML tokens say
where the tags are (text in `code` is left alone: it is shown as typed on purpose).
"""

from __future__ import annotations

from markdown_it import MarkdownIt

_with_html = MarkdownIt("commonmark", {"html": True})
_SNIPPET = 40


def raw_html_lines(text: str, first_line: int = 1) -> list[tuple[int, str]]:
    """(file line, the tag as written) for each piece of raw HTML in Markdown `text`.

    `first_line` is the file line of the text's first line.
    """
    if "<" not in text:  # no tag without one; most summaries have none (skip a second parse)
        return []
    found: list[tuple[int, str]] = []
    for token in _with_html.parse(text):
        if token.map is None:
            continue
        if token.type == "html_block":
            found.append((first_line + token.map[0], token.content))
        elif token.type == "inline":
            line = first_line + token.map[0]
            for child in token.children or ():
                if child.type in ("softbreak", "hardbreak"):
                    line += 1
                elif child.type == "html_inline":
                    found.append((line, child.content))
    return [(line, _snippet(tag)) for line, tag in found]


def raw_html_notes(text: str, path: str, first_line: int = 1) -> list[str]:
    """One warning per line with raw HTML, naming the file, the line and the tags."""
    by_line: dict[int, list[str]] = {}
    for line, tag in raw_html_lines(text, first_line):
        by_line.setdefault(line, []).append(tag)
    return [
        f"{path}: line {line}: raw HTML {', '.join(tags)} is shown to readers as text, tags "
        "and all (only Markdown is rendered): remove it or write it in Markdown"
        for line, tags in by_line.items()
    ]


def _snippet(tag: str) -> str:
    first = " ".join(tag.strip().split("\n", 1)[0].split())
    if len(first) > _SNIPPET:
        first = first[: _SNIPPET - 1] + "…"
    return f"“{first}”"
