"""The plain-text part: Markdown is already readable as text, so it is unwrapped, cleaned of
emphasis markers and re-wrapped.
"""

from __future__ import annotations

import re
import textwrap

TEXT_WIDTH = 72


def wrap_text(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap one paragraph to `width` columns. A word longer than a line (a URL) is not broken:
    a broken link cannot be clicked."""
    return textwrap.fill(
        " ".join(text.split()), width=width, break_on_hyphens=False, break_long_words=False
    )


_LIST_ITEM = re.compile(r"^(\s*)([-*+]|\d+[.)])\s+")


def markdown_to_text(markdown: str, width: int = TEXT_WIDTH) -> str:
    """Markdown is already readable as text: unwrap, drop emphasis markers, re-wrap paragraphs."""
    blocks = re.split(r"\n\s*\n", markdown.strip())
    out = []
    for block in blocks:
        lines = block.splitlines()
        if any(_LIST_ITEM.match(line) for line in lines):
            items: list[str] = []
            for line in lines:
                match = _LIST_ITEM.match(line)
                if match or not items:
                    items.append(line.strip())
                else:
                    items[-1] += " " + line.strip()
            out.append("\n".join(_wrap_item(_plain(item), width) for item in items))
        elif block.lstrip().startswith("#"):
            out.append(_plain(block.lstrip("# ").strip()).upper())
        else:
            out.append(wrap_text(_plain(block), width))
    return "\n\n".join(out)


def _wrap_item(item: str, width: int) -> str:
    match = _LIST_ITEM.match(item)
    bullet = (match.group(2) if match else "-") + " "
    body = item[match.end() :] if match else item
    bullet = "  * " if bullet.strip() in "-*+" else "  " + bullet
    return textwrap.fill(
        " ".join(body.split()),
        width=width,
        initial_indent=bullet,
        subsequent_indent=" " * len(bullet),
        break_on_hyphens=False,
    )


def _plain(text: str) -> str:
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 <\2>", text)  # [label](url) -> label <url>
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])([*_])(?!\s)(.+?)(?<!\s)\1(?![\w*])", r"\2", text)
    return text.replace("`", "")


def tidy_text(text: str) -> str:
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"
