"""Planning a campaign: one ledger row per audience member, with its variant fixed.

Planning is idempotent (a unique constraint on campaign and subscriber) and set-based: the
database writes every row with one INSERT … SELECT (`store.planning`), so it runs in flat memory
for any number of subscribers. Paused subscribers and, for a month, quarterly readers are left
out; a quarter's round-up (`content.roundup.RoundUp`, campaign "YYYY-Qn") plans them.

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
from dataclasses import replace

from sqlalchemy import Engine

from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.content.roundup import RoundUp
from newsletter.errors import SendError
from newsletter.personalize import VariantKey
from newsletter.store import ledger
from newsletter.store import planning
from newsletter.store.engine import session_factory
from newsletter.store.models import DONE
from newsletter.store.models import PLANNED
from newsletter.store.models import PLANNING
from newsletter.store.models import SKIPPED
from newsletter.store.models import utcnow

NO_MATCH = "none of their topics is in this issue"
NOTHING_NEW = "no summary of the quarter in their topics that they have not received"


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
    titles = {issue.summary_name(s): s.title for s in issue.summaries}
    names = " + ".join(_short(titles.get(slug, slug)) for slug in key.slugs)
    notes = "with topic notes" if key.personal else "whole issue, no topic notes"
    return f"{names or '(no summaries)'}; {notes}"


def _short(title: str, limit: int = 70) -> str:
    """A title cut at a word boundary to about `limit` characters, so a plan line stays
    readable with three long titles."""
    if len(title) <= limit:
        return title
    return title[:limit].rsplit(" ", 1)[0].rstrip(",;:—-") + "…"


def planning_rules(settings: Settings, issue: Issue) -> planning.Rules:
    """The candidates of `issue` for the set-based planner: its summaries by slug, or for a
    round-up by key ('YYYY-MM/slug'), with what to do for a reader none of them reaches."""
    if isinstance(issue, RoundUp):
        candidates = tuple(
            planning.Candidate(issue.summary_name(s), s.topic_slugs, s.month, s.slug)
            for s in issue.summaries
        )
        return planning.Rules(candidates, "", NOTHING_NEW, round_up=True)
    candidates = tuple(planning.Candidate(s.slug, s.topic_slugs) for s in issue.summaries)
    full = ""
    if settings.delivery.on_no_match == "full":
        full = VariantKey(tuple(issue.summary_name(s) for s in issue.summaries), False).encode()
    return planning.Rules(candidates, full, NO_MATCH)


def plan_campaign(
    engine: Engine,
    settings: Settings,
    issue: Issue,
    lists: Sequence[str] | None = None,
    *,
    dry_run: bool = False,
    include_late_joiners: bool = False,
    now: dt.datetime | None = None,
) -> PlanReport:
    """Create one ledger row per audience member not yet planned (idempotent).

    Each subscriber's variant is fixed now, by the database (`store.planning`: one INSERT …
    SELECT, so memory stays flat whatever the audience). Subscribers none of whose topics is
    in the issue get a `skipped` row (or the full issue with `on_no_match = "full"`).
    Subscribers paused at `now` are left out (a later run, after the pause, plans them), and
    so are quarterly readers from a month (a round-up, `RoundUp`, plans them). Once the
    campaign exists, subscribers who joined after it was created are left out (counted in
    `late_joiners`) unless `include_late_joiners`. With `dry_run`, nothing is written.
    """
    chosen_lists = default_lists(settings, lists)
    report = PlanReport(issue.month)
    now = now or utcnow()
    rules = planning_rules(settings, issue)
    with session_factory(engine)() as session:
        if rules.round_up:
            assert isinstance(issue, RoundUp)
            months = [i.month for i in issue.issues]
            rules = replace(rules, months=planning.month_campaigns(session.connection(), months))
        campaign = ledger.find_campaign(session, issue.month)
        created = campaign is None and not dry_run
        if created:
            # PLANNING until its rows are written: on PostgreSQL they may come from several
            # connections committing apart (`store.planning.insert_plan`), and no worker
            # may take, or finish, a month half planned.
            campaign = ledger.get_or_create_campaign(
                session, issue.month, issue.subject, chosen_lists, PLANNING
            )
            session.commit()
        campaign_id = campaign.id if campaign else None
        cutoff = None
        if campaign is not None and created:
            report.first_planned = campaign.created_at
            # This run plans the month first: everyone in the audience now is planned, so
            # nobody is a late joiner yet (and counting them would be one more full pass
            # over the subscribers, seconds at a million).
        elif campaign is not None:
            report.existing = ledger.status_counts(session, campaign.id)
            report.first_planned = campaign.created_at
            if not include_late_joiners:
                cutoff = campaign.created_at
                report.late_joiners = planning.count_late_joiners(
                    session.connection(), chosen_lists, rules, campaign.id, cutoff, now
                )
        if dry_run or campaign is None:
            counts = planning.count_variants(
                session.connection(), chosen_lists, rules, campaign_id, cutoff, now
            )
        else:
            # In parts only while nobody may send the month (see `store.planning`): a plan
            # adding rows to a month being sent writes them in one statement, as one commit.
            counts = planning.insert_plan(
                session.connection(),
                campaign.id,
                chosen_lists,
                rules,
                cutoff,
                now,
                in_parts=campaign.status == PLANNING,
            )
            # Every part has committed: the month is ready to send (in the transaction that
            # holds the planning lock, so a second planner finds it complete). A plan that
            # stopped half way left it PLANNING; this run wrote the rest.
            planning.mark_planned(session.connection(), campaign.id)
            session.commit()
        for (variant, status), count in counts.items():
            report.audience += count
            report.new_rows += count
            if status == SKIPPED:
                report.skipped_no_match += count
                continue
            report.variants[variant] += count
            report.labels.setdefault(variant, variant_label(issue, variant))
        if not dry_run and campaign is not None and campaign.status == DONE and report.to_send:
            # New rows in a finished month (`--include-late-joiners`, a new list): open it
            # again, so that workers and `send` take them.
            campaign.status = PLANNED
            campaign.finished_at = None
            session.commit()
    return report
