"""Read side of the archive: which months count as published, and their Issues.

A month is published when it was actually sent — a `campaigns` row with status `done`, or any
delivery with status `sent` — or when its `issue.md` says `public: true`. The database question is
asked here, by the caller (the CLI), and handed to the pure generator as a set of months.

Only published months are read in full (`read_published`): a draft being written, broken or
not, never stops the archive of what readers already got; a published month with an error does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy import inspect
from sqlalchemy import select

from newsletter.content.model import Issue
from newsletter.content.reader import is_public
from newsletter.content.reader import list_months
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import ContentError
from newsletter.store import models


def read_issues(content_dir: Path, taxonomy: Taxonomy, newsletter_name: str) -> list[Issue]:
    """Every month folder under `content_dir` as an Issue, newest first."""
    months = list_months(content_dir)
    issues = [load_issue(content_dir, month, taxonomy, newsletter_name) for month in months]
    return sorted(issues, key=lambda issue: issue.month, reverse=True)


@dataclass(frozen=True)
class Unpublished:
    """A month left out of the site without being read; `problem` is set when even its
    issue.md (which may say `public: true`) could not be read."""

    month: str
    problem: str = ""


def read_published(
    content_dir: Path,
    taxonomy: Taxonomy,
    newsletter_name: str,
    sent: Iterable[str],
    *,
    include_unsent: bool = False,
) -> tuple[list[Issue], list[Unpublished]]:
    """(the published months' Issues newest first, the months left out oldest first).

    Sent months (and with `include_unsent`, every month) are read in full, so any error in
    them stops the build; of the others only issue.md's front matter is read, for `public`.
    """
    sent_set = set(sent)
    issues: list[Issue] = []
    left_out: list[Unpublished] = []
    for month in list_months(content_dir):
        if not include_unsent and month not in sent_set:
            try:
                public = is_public(content_dir, month)
            except ContentError as error:
                left_out.append(Unpublished(month, str(error)))
                continue
            if not public:
                left_out.append(Unpublished(month))
                continue
        issues.append(load_issue(content_dir, month, taxonomy, newsletter_name))
    return sorted(issues, key=lambda issue: issue.month, reverse=True), left_out


def sent_months(engine: Engine) -> set[str]:
    """Months with a finished campaign or at least one sent delivery.

    An empty set when the database has no schema yet (nothing was ever sent from it).
    """
    if not inspect(engine).has_table("campaigns"):
        return set()
    done = select(models.Campaign.month).where(models.Campaign.status == models.DONE)
    delivered = (
        select(models.Campaign.month)
        .join(models.Delivery, models.Delivery.campaign_id == models.Campaign.id)
        .where(models.Delivery.status == models.SENT)
        .distinct()
    )
    with engine.connect() as connection:
        months = set(connection.scalars(done))
        months.update(connection.scalars(delivered))
    return months


def select_published(
    issues: Iterable[Issue], sent: Iterable[str], *, include_unsent: bool = False
) -> list[Issue]:
    """The issues to publish, in the given order: sent ones, public ones, or all of them."""
    sent_set = set(sent)
    return [issue for issue in issues if include_unsent or issue.public or issue.month in sent_set]
