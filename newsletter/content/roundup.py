"""Quarterly round-ups: one message with the summaries of a quarter's three months (pure).

A round-up is keyed by its quarter, "YYYY-Qn" (e.g. "2026-Q4" for October–December 2026): the
same seven characters as a month, so it has its own campaign and ledger rows. It is sent in the
first month after the quarter (2026-Q4 in January 2027), on that month's scheduler slot, to the
readers who chose a quarterly round-up (see `newsletter.sending.plan`).

Summaries of different months may share a slug, so a round-up names its summaries by their
`Summary.key` ("2026-10/slug"): that is what its variant keys hold and what `RoundUp.summary`
looks up. Each summary keeps its month and slug, so its archive permalink is unchanged.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from newsletter.content.model import Issue
from newsletter.content.model import Summary
from newsletter.content.model import parse_month
from newsletter.content.reader import list_months
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import ContentError

QUARTER_RE = re.compile(r"(\d{4})-Q([1-4])")


def is_quarter(key: str) -> bool:
    """Whether a campaign key names a quarter's round-up ("2026-Q4") rather than a month."""
    return bool(QUARTER_RE.fullmatch(key))


def parse_quarter(quarter: str) -> tuple[int, int]:
    """'2026-Q4' -> (2026, 4); ContentError unless YYYY-Qn with n in 1..4."""
    match = QUARTER_RE.fullmatch(quarter)
    if not match:
        raise ContentError(quarter, "a round-up is named YYYY-Qn, e.g. 2026-Q4 (n from 1 to 4)")
    return int(match.group(1)), int(match.group(2))


def quarter_months(quarter: str) -> tuple[str, str, str]:
    """'2026-Q4' -> ('2026-10', '2026-11', '2026-12')."""
    year, number = parse_quarter(quarter)
    first = 3 * (number - 1) + 1
    return (f"{year}-{first:02d}", f"{year}-{first + 1:02d}", f"{year}-{first + 2:02d}")


def quarter_of(month: str) -> str:
    """The quarter a month belongs to: '2026-11' -> '2026-Q4'."""
    year, number = parse_month(month)
    return f"{year}-Q{(number - 1) // 3 + 1}"


def round_up_due(month: str) -> str | None:
    """The quarter whose round-up goes out in `month`: the previous quarter when `month` opens
    a quarter ('2027-01' -> '2026-Q4'), else None."""
    year, number = parse_month(month)
    if number not in (1, 4, 7, 10):
        return None
    return f"{year - 1}-Q4" if number == 1 else f"{year}-Q{(number - 1) // 3}"


def quarter_label(quarter: str) -> str:
    """'2026-Q4' -> 'October–December 2026'."""
    months = quarter_months(quarter)
    first, last = (parse_month(m)[1] for m in (months[0], months[-1]))
    year = parse_quarter(quarter)[0]
    return f"{calendar.month_name[first]}–{calendar.month_name[last]} {year}"


@dataclass(frozen=True)
class RoundUp(Issue):
    """A quarter's round-up: an Issue whose summaries come from up to three months.

    `month` holds the quarter ("2026-Q4"); `issues` the months it gathers, oldest first.
    """

    issues: tuple[Issue, ...] = field(default=(), compare=False)

    @property
    def label(self) -> str:
        """'October–December 2026'."""
        return quarter_label(self.month)

    @property
    def archive_path(self) -> str:
        """A round-up has no archive page of its own: it links to the archive's home."""
        return ""

    @property
    def intro_md(self) -> str:
        return self.intro_for(())

    def intro_for(self, slugs: Iterable[str]) -> str:
        """The round-up's own opening line; the months' intros are not repeated."""
        return (
            f"Your quarterly round-up: the summaries of {self.label} in your topics, "
            "each one you have not received yet."
        )

    def summary_name(self, summary: Summary) -> str:
        """Round-up variant keys name a summary by its key: slugs may repeat across months."""
        return summary.key

    def summary(self, slug: str) -> Summary:
        """The summary with this key ('2026-10/slug'), as round-up variant keys name them."""
        for summary in self.summaries:
            if summary.key == slug:
                return summary
        raise KeyError(slug)


def assemble_round_up(quarter: str, issues: Sequence[Issue], newsletter_name: str) -> RoundUp:
    """The round-up of `quarter` from the issues of its months (those that exist).

    `ContentError` if an issue is not of that quarter or none is given.
    """
    months = quarter_months(quarter)
    chosen = sorted(issues, key=lambda issue: issue.month)
    for issue in chosen:
        if issue.month not in months:
            raise ContentError(issue.month, f"is not a month of {quarter} ({', '.join(months)})")
    if not chosen:
        raise ContentError(quarter, f"no issue for any month of {quarter} ({', '.join(months)})")
    label = quarter_label(quarter)
    return RoundUp(
        month=quarter,
        subject=f"{newsletter_name} — quarterly round-up, {label}",
        summaries=tuple(s for issue in chosen for s in issue.summaries),
        preheader=f"The research summaries of {label} in your topics",
        issues=tuple(chosen),
    )


def load_round_up(
    content_dir: Path, quarter: str, taxonomy: Taxonomy, newsletter_name: str
) -> RoundUp:
    """Read the issues of the quarter's months that have a folder and assemble the round-up
    (`ContentError` when a month's content fails to load, or no month has content)."""
    months = quarter_months(quarter)
    present = set(list_months(content_dir))
    issues = [
        load_issue(content_dir, month, taxonomy, newsletter_name)
        for month in months
        if month in present
    ]
    return assemble_round_up(quarter, issues, newsletter_name)


def load_campaign_issue(
    content_dir: Path, key: str, taxonomy: Taxonomy, newsletter_name: str
) -> Issue:
    """The issue a campaign key names: a month's issue ("2026-11") or a round-up ("2026-Q4")."""
    if key[4:6] == "-Q":  # a quarter, or a misspelt one (parse_quarter says what is wrong)
        return load_round_up(content_dir, key, taxonomy, newsletter_name)
    return load_issue(content_dir, key, taxonomy, newsletter_name)
