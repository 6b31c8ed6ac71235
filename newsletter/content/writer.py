"""Write summary files and `issue.md` in the format `newsletter.content.reader` reads (pure).

The web editor and the API write through here, so a file saved in the browser is the same kind
of file an editor writes by hand. What the form does not edit (`article:`, `reference:`,
`slug:`, comments aside) is kept from the file as read; keys keep their order. Re-saving
without a change keeps the file byte for byte (`unchanged`); a real change re-dumps the front
matter with PyYAML, which normalizes its layout (quotes, flow lists, comments dropped), as
docs/web.md says.

`version_of` is the optimistic-concurrency token: a hash of the file's bytes as read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import yaml

from newsletter.content.front_matter import split_front_matter
from newsletter.content.reader import IMPLICATIONS_RE
from newsletter.content.reader import ISSUE_STATUSES

IMPLICATIONS_HEADING = "## Practice Implications"
# One line of text: the reader folds whitespace, but a CR/LF typed into a subject is refused
# rather than folded, so that what the editor sees is what goes into a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


@dataclass(frozen=True)
class SummaryDraft:
    """What the editor edits of a summary file (the rest of its front matter is kept)."""

    title: str
    topics: tuple[str, ...]
    research_type: str
    citation: str = ""
    doi: str = ""
    order: int | None = None
    summary_md: str = ""
    implications_md: str = ""
    corrected: dt.date | None = None
    author: str = ""  # the byline; '' = `[content] default_author` (no `author:` key)


@dataclass(frozen=True)
class IssueDraft:
    """What the editor edits of `issue.md`."""

    subject: str = ""
    preheader: str = ""
    intro_md: str = ""
    public: bool = False
    status: str = "draft"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def version_of(text: str | None) -> str:
    """The version of a file's text ('' for no file): what a save must name to replace it."""
    if text is None:
        return ""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def one_line_problem(value: str) -> str:
    """'' when `value` is one line of text, else why not (CR, LF or another control)."""
    if _CONTROL.search(value):
        return "must be one line (no line breaks or control characters)"
    return ""


def multiline(text: str) -> str:
    """Text from a form or JSON: CRLF and CR to LF (browsers send CRLF), trailing space cut."""
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()


# --- summaries -----------------------------------------------------------------------------


def summary_draft(text: str, source: str) -> tuple[SummaryDraft, dict[str, Any]]:
    """(the editable fields, the whole front matter) of a summary file's text.
    `ContentError` when the front matter cannot be read at all."""
    meta, body, _ = split_front_matter(text, source)
    parts = IMPLICATIONS_RE.split(body, maxsplit=1)
    summary_md, implications_md = (parts[0], parts[1]) if len(parts) == 2 else (body, "")
    topics = meta.get("topics") or []
    topics = [topics] if isinstance(topics, str) else topics
    order = meta.get("order")
    corrected = meta.get("corrected")
    draft = SummaryDraft(
        title=_text(meta.get("title")),
        topics=tuple(str(t) for t in topics) if isinstance(topics, list) else (),
        research_type=_text(meta.get("research_type")),
        citation=_text(meta.get("citation")),
        doi=_text(meta.get("doi")),
        order=order if isinstance(order, int) and not isinstance(order, bool) else None,
        summary_md=summary_md.strip(),
        implications_md=implications_md.strip(),
        corrected=corrected if isinstance(corrected, dt.date) else None,
        author=_text(meta.get("author")),
    )
    return draft, meta


def _text(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split())


def summary_text(draft: SummaryDraft, base: dict[str, Any] | None = None) -> str:
    """The file text of `draft`, keeping `base`'s other keys (and their order)."""
    meta = dict(base or {})
    values: dict[str, Any] = {
        "title": draft.title,
        "topics": list(draft.topics),
        "research_type": draft.research_type,
        "author": " ".join(draft.author.split()) or None,
        "citation": draft.citation or None,
        "doi": draft.doi or None,
        "order": draft.order,
        "corrected": draft.corrected,
    }
    for key, value in values.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    body = f"{multiline(draft.summary_md)}\n\n{IMPLICATIONS_HEADING}\n\n"
    body += f"{multiline(draft.implications_md)}\n"
    return _front_matter(meta) + body


# --- issue.md ------------------------------------------------------------------------------


def issue_draft(text: str, source: str) -> IssueDraft:
    """The editable fields of `issue.md`'s text (`ContentError` if its front matter is bad)."""
    meta, body, _ = split_front_matter(text, source)
    status = meta.get("status")
    return IssueDraft(
        subject=_text(meta.get("subject")),
        preheader=_text(meta.get("preheader")),
        intro_md=body.strip(),
        public=meta.get("public") is True,
        status=status if status in ISSUE_STATUSES else "draft",
        extra=meta,
    )


def issue_text(draft: IssueDraft) -> str:
    """The text of `issue.md` for `draft` (keys of `draft.extra` kept in their order)."""
    meta = dict(draft.extra)
    values: dict[str, Any] = {
        "subject": draft.subject or None,
        "preheader": draft.preheader or None,
        "public": True if draft.public else None,
        "status": "ready" if draft.status == "ready" else None,
    }
    for key, value in values.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    intro = multiline(draft.intro_md)
    return _front_matter(meta) + (f"{intro}\n" if intro else "")


def _front_matter(meta: dict[str, Any]) -> str:
    if not meta:
        return "---\n---\n"
    dumped = yaml.safe_dump(
        meta, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
    return f"---\n{dumped}---\n"
