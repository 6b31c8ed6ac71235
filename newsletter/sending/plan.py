"""Planning a campaign: one ledger row per audience member, with its variant fixed.

Planning is idempotent (a unique constraint on campaign and subscriber) and streams the audience
chunk by chunk, so it runs in flat memory for any number of subscribers.

The late-joiner rule lives here, so every path that plans (`newsletter send`, `plan`, `demo`,
the web admin's send, the scheduler's jobs, `--resume`) follows it: a subscriber who joined
after a month was first planned (created, confirmed or added to the list after the campaign
was created) is not planned for that month on a later run, unless the caller asks
(`include_late_joiners`, the CLI's `--include-late-joiners`). The welcome email gives a new
subscriber the latest sent issue instead.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import Engine

from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.errors import SendError
from newsletter.personalize import VariantKey
from newsletter.personalize import choose_variant
from newsletter.store import ledger
from newsletter.store.engine import session_factory
from newsletter.store.models import DONE
from newsletter.store.models import PLANNED
from newsletter.store.models import QUEUED
from newsletter.store.models import SKIPPED

NO_MATCH = "none of their topics is in this issue"


@dataclass
class PlanReport:
    """What planning found: new rows by variant, skips, and what was already planned."""

    month: str
    audience: int = 0
    new_rows: int = 0
    skipped_no_match: int = 0
    variants: Counter = field(default_factory=Counter)
    existing: dict[str, int] = field(default_factory=dict)
    # Left out by the late-joiner rule: they joined after `first_planned` (see the module doc).
    late_joiners: int = 0
    first_planned: dt.datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)  # variant key -> readable label

    def label(self, variant: str) -> str:
        """The variant's summary titles, e.g. 'A + B; with topic notes'."""
        return self.labels.get(variant, variant or "(whole issue)")

    @property
    def to_send(self) -> int:
        """Rows that a run would still try to send (new and already open)."""
        open_rows = sum(self.existing.get(s, 0) for s in ledger.OPEN_STATUSES)
        return self.new_rows - self.skipped_no_match + open_rows


def default_lists(settings: Settings, lists: Sequence[str] | None) -> list[str]:
    """The lists to send to: those given, else the default list; unknown ones are an error."""
    known = {spec.slug for spec in settings.list_specs()}
    chosen = list(lists) if lists else [settings.delivery.default_list]
    unknown = [slug for slug in chosen if slug not in known]
    if unknown:
        raise SendError(f"unknown list {unknown[0]!r} (configured: {', '.join(sorted(known))})")
    return chosen


def variant_label(issue: Issue, encoded: str) -> str:
    """A variant key as the operator reads it: its summaries' titles joined with ' + ', then
    '; with topic notes' (why each summary came, "stop sending me" links) or, for the whole
    issue sent to a reader none of whose topics is in it, '; whole issue, no topic notes'."""
    key = VariantKey.decode(encoded)
    titles = {s.slug: s.title for s in issue.summaries}
    names = " + ".join(_short(titles.get(slug, slug)) for slug in key.slugs)
    notes = "with topic notes" if key.personal else "whole issue, no topic notes"
    return f"{names or '(no summaries)'}; {notes}"


def _short(title: str, limit: int = 70) -> str:
    """A title cut at a word boundary to about `limit` characters, so a plan line stays
    readable with three long titles."""
    if len(title) <= limit:
        return title
    return title[:limit].rsplit(" ", 1)[0].rstrip(",;:—-") + "…"


def plan_campaign(
    engine: Engine,
    settings: Settings,
    issue: Issue,
    lists: Sequence[str] | None = None,
    *,
    dry_run: bool = False,
    include_late_joiners: bool = False,
    chunk: int = 1000,
) -> PlanReport:
    """Create one ledger row per audience member not yet planned (idempotent).

    Each subscriber's variant is fixed now. Subscribers none of whose topics is in the issue
    get a `skipped` row (or the full issue with `on_no_match = "full"`). Once the campaign
    exists, subscribers who joined after it was created are left out (counted in
    `late_joiners`) unless `include_late_joiners`. With `dry_run`, nothing is written. Rows
    are inserted chunk by chunk, so memory stays flat.
    """
    chosen_lists = default_lists(settings, lists)
    report = PlanReport(issue.month)
    on_no_match = settings.delivery.on_no_match
    with session_factory(engine)() as session:
        campaign = ledger.find_campaign(session, issue.month)
        if campaign is None and not dry_run:
            campaign = ledger.get_or_create_campaign(
                session, issue.month, issue.subject, chosen_lists
            )
            session.commit()
        campaign_id = campaign.id if campaign else None
        cutoff = None
        if campaign is not None:
            report.existing = ledger.status_counts(session, campaign.id)
            report.first_planned = campaign.created_at
            if not include_late_joiners:
                cutoff = campaign.created_at
                report.late_joiners = ledger.count_late_joiners(
                    session, chosen_lists, campaign.id, cutoff
                )
        pending: list[dict] = []
        for member in ledger.iter_audience(
            session, chosen_lists, campaign_id=campaign_id, joined_by=cutoff, chunk=chunk
        ):
            report.audience += 1
            key = choose_variant(issue, member.topics, on_no_match)
            row = {
                "campaign_id": campaign_id,
                "subscriber_id": member.id,
                "email": member.email,
                "variant": key.encode() if key else "",
                "status": QUEUED if key else SKIPPED,
                "last_error": "" if key else NO_MATCH,
            }
            if key:
                encoded = key.encode()
                report.variants[encoded] += 1
                if encoded not in report.labels:
                    report.labels[encoded] = variant_label(issue, encoded)
            else:
                report.skipped_no_match += 1
            report.new_rows += 1
            pending.append(row)
            if len(pending) >= chunk and not dry_run:
                _flush(session, pending)
        if not dry_run:
            _flush(session, pending)
            if campaign is not None and campaign.status == DONE and report.to_send:
                # New rows in a finished month (`--include-late-joiners`, a new list): open
                # it again, so that workers and `send` take them.
                campaign.status = PLANNED
                campaign.finished_at = None
                session.commit()
    return report


def _flush(session, rows: list[dict]) -> None:
    ledger.insert_deliveries(session.connection(), rows)
    session.commit()
    rows.clear()
