"""The plain-text part: Markdown is already readable as text, so it is unwrapped, cleaned of
emphasis markers and re-wrapped.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from typing import Any

from markdown_it import MarkdownIt

from newsletter.content.model import rewrite_links

# The same CommonMark as the HTML part (content.model), so a link's address in the text part
# is the very `href` of the HTML part: percent-encoded, balanced parentheses, no title.
_markdown = MarkdownIt("commonmark", {"html": False, "typographer": False})

TEXT_WIDTH = 72


def wrap_text(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap one paragraph to `width` columns. A word longer than a line (a URL) is not broken:
    a broken link cannot be clicked."""
    return textwrap.fill(
        " ".join(text.split()), width=width, break_on_hyphens=False, break_long_words=False
    )


def hanging(text: str, prefix: str, width: int = TEXT_WIDTH) -> str:
    """`prefix` + `text` wrapped to `width`, the next lines indented under the text: a
    numbered or bulleted line ("  3. A long title…") that stays inside the column."""
    return textwrap.fill(
        " ".join(text.split()),
        width=width,
        initial_indent=prefix,
        subsequent_indent=" " * len(prefix),
        break_on_hyphens=False,
        break_long_words=False,  # a broken link cannot be clicked
    )


def url_line(url: str, indent: int = 4, width: int = TEXT_WIDTH) -> str:
    """A URL on a line of its own, indented when it fits within `width`; a longer one starts
    at the margin (it cannot be broken: a broken link cannot be clicked)."""
    return " " * indent + url if indent + len(url) <= width else url


_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S")
_LIST_ITEM = re.compile(r"^(\s*)([-*+]|\d+[.)])\s+")


def markdown_to_text(
    markdown: str, width: int = TEXT_WIDTH, href: Callable[[str], str] | None = None
) -> str:
    """Markdown is already readable as text: unwrap, drop emphasis markers, re-wrap paragraphs.

    `href(url)` is the address a link is shown with instead of its own (the click redirect,
    as in the HTML part: `content.model.markdown_to_html`)."""
    env: dict[str, Any] = {"href": href} if href is not None else {}
    _markdown.parse(markdown, env)  # collects reference definitions: [label][1] … [1]: url
    blocks = re.split(r"\n\s*\n", markdown.strip())
    out = []
    for block in blocks:
        lines = block.splitlines()
        if all(_DEFINITION.match(line) for line in lines):
            continue  # `[1]: url`: its links already show their address where they are used
        if any(_LIST_ITEM.match(line) for line in lines):
            items: list[str] = []
            for line in lines:
                match = _LIST_ITEM.match(line)
                if match or not items:
                    items.append(line.strip())
                else:
                    items[-1] += " " + line.strip()
            out.append("\n".join(_wrap_item(_plain_item(item, env), width) for item in items))
        elif block.lstrip().startswith("#"):
            out.append(_plain(block.lstrip("# ").strip(), env).upper())
        else:
            out.append(wrap_text(_plain(block, env), width))
    return "\n\n".join(out)


def _wrap_item(item: str, width: int) -> str:
    match = _LIST_ITEM.match(item)
    bullet = (match.group(2) if match else "-") + " "
    body = item[match.end() :] if match else item
    bullet = "  * " if bullet.strip() in "-*+" else "  " + bullet
    return hanging(body, bullet, width)


def _plain_item(item: str, env: dict[str, Any]) -> str:
    """A list item's text as plain text, its bullet or number kept."""
    match = _LIST_ITEM.match(item)
    if not match:
        return _plain(item, env)
    return item[: match.end()] + _plain(item[match.end() :], env)


def _plain(text: str, env: dict[str, Any] | None = None) -> str:
    """Inline Markdown as text: emphasis and code markers dropped, `[label](url)` as
    `label <url>` with the URL exactly as the HTML part's `href`, an autolink as `<url>`."""
    env = env if env is not None else {}
    tokens = _markdown.parseInline(" ".join(text.split()), env)
    rewrite = env.get("href")
    if tokens and callable(rewrite):
        rewrite_links(tokens, rewrite)
    out: list[str] = []
    href = ""
    auto = False  # inside an autolink: its text is its address, shown once
    children = (tokens[0].children or []) if tokens else []
    for token in children:
        if token.type == "link_open":
            href = str(token.attrs.get("href", ""))
            if token.markup == "autolink":
                out.append(f"<{href}>")
                href, auto = "", True
        elif token.type == "link_close":
            if href:
                out.append(f" <{href}>")
            href, auto = "", False
        elif (token.type == "text" and not auto) or token.type in ("code_inline", "image"):
            out.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            out.append(" ")
    return "".join(out)


def tidy_text(text: str) -> str:
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"
