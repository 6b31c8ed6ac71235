"""Checks of a month's issue before it is sent: content errors and Gmail's clipping size."""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import ContentError
from newsletter.render.email import Renderer
from newsletter.render.size import GMAIL_CLIP_BYTES
from newsletter.render.size import GMAIL_WARN_BYTES
from newsletter.render.size import encoded_html_size

OK = "ok"
WARNING = "warning"
ERROR = "error"


@dataclass(frozen=True)
class Finding:
    """One line of a check report."""

    level: str
    message: str


def check_issue(
    settings: Settings, taxonomy: Taxonomy, month: str
) -> tuple[Issue | None, list[Finding]]:
    """(the issue or None, findings). Errors mean the issue must not be sent."""
    try:
        issue = load_issue(settings.content.dir, month, taxonomy, settings.newsletter.name)
    except ContentError as error:
        return None, [Finding(ERROR, str(error))]
    findings = [
        Finding(OK, f"{len(issue.summaries)} summaries; subject: {issue.subject}"),
    ]
    if not issue.has_custom_subject:
        findings.append(Finding(OK, "no issue.md subject: using the default subject"))
    # The full issue is the largest variant: if it fits, every variant fits.
    renderer = Renderer(settings)
    for personal in (False, True):
        rendered = renderer.render(issue, issue.summaries, personal=personal)
        size = encoded_html_size(rendered.html)
        findings.append(size_finding(size, "with topic lines" if personal else "full issue"))
    return issue, findings


def size_finding(size: int, what: str) -> Finding:
    """Compare an encoded HTML size with Gmail's ~102 KB clip."""
    kb = size / 1024
    if size > GMAIL_CLIP_BYTES:
        return Finding(ERROR, f"HTML {what}: {kb:.1f} KB — Gmail clips messages over 102 KB")
    if size > GMAIL_WARN_BYTES:
        return Finding(WARNING, f"HTML {what}: {kb:.1f} KB — close to Gmail's 102 KB clip")
    return Finding(OK, f"HTML {what}: {kb:.1f} KB (Gmail clips at 102 KB)")
