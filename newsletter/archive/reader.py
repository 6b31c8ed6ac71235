"""Read side of the archive: every month's Issue, and which months count as published.

A month is published when it was actually sent — a `campaigns` row with status `done`, or any
delivery with status `sent` — or when its `issue.md` says `public: true`. The database question is
asked here, by the caller (the CLI), and handed to the pure generator as a set of months.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy import inspect
from sqlalchemy import select

from newsletter.content.model import Issue
from newsletter.content.reader import list_months
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import Taxonomy
from newsletter.store import models


def read_issues(content_dir: Path, taxonomy: Taxonomy, newsletter_name: str) -> list[Issue]:
    """Every month folder under `content_dir` as an Issue, newest first."""
    months = list_months(content_dir)
    issues = [load_issue(content_dir, month, taxonomy, newsletter_name) for month in months]
    return sorted(issues, key=lambda issue: issue.month, reverse=True)


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
