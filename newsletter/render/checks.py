"""Checks of a month's issue before it is sent: content errors, an intro whose common part is
not true for every reader, and Gmail's clipping size."""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.content.model import Summary
from newsletter.content.reader import default_subject
from newsletter.content.reader import read_month
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import ContentError
from newsletter.render.email import Renderer
from newsletter.render.environment import plural
from newsletter.render.size import GMAIL_CLIP_BYTES
from newsletter.render.size import GMAIL_WARN_BYTES
from newsletter.render.size import encoded_html_size
from newsletter.render.text import markdown_to_text

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
    """(the issue or None, findings). Errors mean the issue must not be sent.

    Every problem of every file is an error of its own; the files that read well are still
    checked for raw HTML and, together, against Gmail's clip (more summaries only add to it).
    """
    try:
        reading = read_month(settings.content.dir, month, taxonomy, settings.newsletter.name)
    except ContentError as error:
        return None, [Finding(ERROR, str(error))]
    if reading.issue is not None:
        return reading.issue, check_loaded_issue(settings, reading.issue)
    findings = [Finding(ERROR, str(problem)) for problem in reading.problems]
    findings += [Finding(WARNING, note) for note in reading.notes]
    findings += citation_notes(reading.summaries)
    if reading.summaries:
        partial = Issue(
            month=month,
            subject=default_subject(settings.newsletter.name, month),
            summaries=reading.summaries,
        )
        sizes = _size_findings(settings, partial)
        over = [f for f in sizes if f.level == ERROR]
        what = f"without the {plural(len(reading.problems), 'problem')} above"
        findings += [Finding(ERROR, f"{f.message} ({what})") for f in over]
    return None, findings


def check_loaded_issue(settings: Settings, issue: Issue) -> list[Finding]:
    """The findings for an issue already read: what `issues check` reports and what every
    send path refuses on (errors) or shows (warnings) before it plans."""
    findings = [
        Finding(
            OK, f"{plural(len(issue.summaries), 'summary', 'summaries')}; subject: {issue.subject}"
        ),
    ]
    if not issue.has_custom_subject:
        findings.append(Finding(OK, "no issue.md subject: using the default subject"))
    findings += [Finding(WARNING, note) for note in issue.notes]
    findings += citation_notes(issue.summaries)
    findings += intro_findings(issue)
    return findings + _size_findings(settings, issue)


def citation_notes(summaries: tuple[Summary, ...]) -> list[Finding]:
    """A note (not a warning) per summary whose citation is free text: structured data gives
    the APA citation, the archive's meta tags and the citation downloads."""
    return [
        Finding(
            OK,
            f"{summary.source}: citation: free text; note that `article:` or `reference:` "
            "(structured data) gives an APA citation, reference-manager meta tags and downloads",
        )
        for summary in summaries
        if summary.article is None and summary.citation
    ]


def _size_findings(settings: Settings, issue: Issue) -> list[Finding]:
    # The full issue is the largest variant: if it fits, every variant fits.
    renderer = Renderer(settings)
    findings = []
    for personal in (False, True):
        rendered = renderer.render(issue, issue.summaries, personal=personal)
        size = encoded_html_size(rendered.html)
        findings.append(size_finding(size, "with topic lines" if personal else "full issue"))
    return findings


def size_finding(size: int, what: str) -> Finding:
    """Compare an encoded HTML size with Gmail's ~102 KB clip."""
    kb = size / 1024
    if size > GMAIL_CLIP_BYTES:
        return Finding(ERROR, f"HTML {what}: {kb:.1f} KB — Gmail clips messages over 102 KB")
    if size > GMAIL_WARN_BYTES:
        return Finding(WARNING, f"HTML {what}: {kb:.1f} KB — close to Gmail's 102 KB clip")
    return Finding(OK, f"HTML {what}: {kb:.1f} KB (Gmail clips at 102 KB)")


# A count of the summaries ("two summaries", "3 new studies", "both papers", "two of them") or an
# ordinal that points at one of them ("the first", "the latter"): true only for the full issue.
_NUMBER = r"two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|both|\d+"
_NOUN = (
    r"summar(?:y|ies)|stud(?:y|ies)|articles?|papers?|reviews?|trials?|reports?|pieces?|items?"
    r"|findings?|(?:meta-)?analys[ie]s"
)
_COUNT_RE = re.compile(
    rf"\b(?:{_NUMBER})(?:\s+[\w’'-]+){{0,2}}?\s+(?:{_NOUN})\b"
    rf"|\b(?:{_NUMBER})\s+of\s+(?:them|these|those)\b",
    re.I,
)
_ORDINAL_RE = re.compile(
    r"\bthe\s+(?:first|second|third|fourth|fifth|sixth|former|latter)\b(?!\s+(?:time|place)\b)"
    r"|\b(?:firstly|secondly|thirdly)\b",
    re.I,
)


def variant_dependent_words(text: str) -> list[str]:
    """The counts and ordinals in `text` that only hold for a reader of every summary."""
    found = [m for pattern in (_COUNT_RE, _ORDINAL_RE) for m in pattern.finditer(text)]
    return [" ".join(m.group(0).split()) for m in sorted(found, key=lambda m: m.start())]


def can_be_cut(issue: Issue) -> bool:
    """Whether some reader may get fewer than all the summaries: there are several and their
    topics differ (with the same topics everywhere, a reader gets all of them or none)."""
    topic_sets = {summary.topic_slugs for summary in issue.summaries}
    return len(issue.summaries) > 1 and len(topic_sets) > 1


def intro_findings(issue: Issue) -> list[Finding]:
    """Warnings when the intro's common part, the subject or the preheader (which every reader
    gets) count or order summaries some readers lack."""
    if not can_be_cut(issue):
        return []
    where = issue.intro.path or f"{issue.month}/issue.md"
    fewer = f"not true for readers who get fewer than the {len(issue.summaries)} summaries"
    findings = []
    texts = [
        (
            "the common part of the intro",
            markdown_to_text(issue.intro.common),
            " Tie it to a summary with {summary=<slug>} or reword it.",
        ),
        ("the subject", issue.subject if issue.has_custom_subject else "", " Reword it."),
        ("the preheader", issue.preheader, " Reword it."),
    ]
    for what, text, advice in texts:
        words = variant_dependent_words(text)
        if words:
            quoted = ", ".join(f"“{w}”" for w in dict.fromkeys(words))
            findings.append(Finding(WARNING, f"{where}: {what} says {quoted}: {fewer}.{advice}"))
    return findings
