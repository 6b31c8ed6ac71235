"""Planning a campaign: one ledger row per audience member, with its variant fixed.

Planning is idempotent (a unique constraint on campaign and subscriber) and streams the audience
chunk by chunk, so it runs in flat memory for any number of subscribers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import Engine

from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.errors import SendError
from newsletter.personalize import choose_variant
from newsletter.store import ledger
from newsletter.store.engine import session_factory
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


def plan_campaign(
    engine: Engine,
    settings: Settings,
    issue: Issue,
    lists: Sequence[str] | None = None,
    *,
    dry_run: bool = False,
    chunk: int = 1000,
) -> PlanReport:
    """Create one ledger row per audience member not yet planned (idempotent).

    Each subscriber's variant is fixed now. Subscribers none of whose topics is in the issue
    get a `skipped` row (or the full issue with `on_no_match = "full"`). With `dry_run`,
    nothing is written. Rows are inserted chunk by chunk, so memory stays flat.
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
        if campaign_id is not None:
            report.existing = ledger.status_counts(session, campaign_id)
        pending: list[dict] = []
        for member in ledger.iter_audience(
            session, chosen_lists, campaign_id=campaign_id, chunk=chunk
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
                report.variants[key.encode()] += 1
            else:
                report.skipped_no_match += 1
            report.new_rows += 1
            pending.append(row)
            if len(pending) >= chunk and not dry_run:
                _flush(session, pending)
        if not dry_run:
            _flush(session, pending)
    return report


def _flush(session, rows: list[dict]) -> None:
    ledger.insert_deliveries(session.connection(), rows)
    session.commit()
    rows.clear()
