"""What the admin's issue editor and the JSON API share: an issue's state, and every edit
(through `newsletter.content.desk`) with its rule for sent issues and its audit record.

States: draft → ready (`status: ready` in issue.md) → scheduled (a queued one-off send, or
ready and the month the next run of the monthly `[schedule]` slot sends) → sending (a campaign
started and not done) → sent (its campaign is done). Sending and sent
issues are read-only; a sent summary may still be corrected (`correct=True`), which writes
`corrected: <date>` into the file for the archive to show and mails nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from newsletter.archive import publish
from newsletter.content import desk
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.writer import IssueDraft
from newsletter.content.writer import SummaryDraft
from newsletter.errors import InvalidEdit
from newsletter.errors import NewsletterError
from newsletter.errors import ReadOnlyIssue
from newsletter.scheduling import service
from newsletter.scheduling.slots import MonthlySlot
from newsletter.scheduling.slots import month_for_run
from newsletter.scheduling.slots import next_monthly_runs
from newsletter.store import audit
from newsletter.store.engine import transaction
from newsletter.store.models import DONE
from newsletter.web.app import WebContext
from newsletter.web.sending import IssueOverview

STATES = ("draft", "ready", "scheduled", "sending", "sent")


@dataclasses.dataclass(frozen=True)
class IssueState:
    """An issue's state and, when scheduled, when it goes out."""

    name: str
    scheduled_at: dt.datetime | None = None
    by_slot: bool = False  # scheduled by the monthly `[schedule]` slot (not a one-off)

    @property
    def read_only(self) -> bool:
        return self.name in ("sending", "sent")

    @property
    def label(self) -> str:
        if self.name == "scheduled" and self.scheduled_at is not None:
            slot = " (the monthly slot)" if self.by_slot else ""
            return f"scheduled for {self.scheduled_at:%Y-%m-%d %H:%M %Z}{slot}"
        return self.name


@dataclasses.dataclass(frozen=True)
class Scheduled:
    """What will send when: the queued one-off sends (month -> soonest run time) and the
    monthly slot's next run with the month it sends (None when there is none)."""

    one_offs: dict[str, dt.datetime]
    monthly: tuple[str, dt.datetime] | None = None

    def time_for(self, month: str, ready: bool) -> dt.datetime | None:
        """When `month` goes out: its soonest one-off, or the monthly run if it is `ready`
        and that run sends it (whichever comes first); None when neither will send it."""
        times = [self.one_offs[month]] if month in self.one_offs else []
        if ready and self.monthly is not None and self.monthly[0] == month:
            times.append(self.monthly[1])
        return min(times) if times else None


def scheduled_sends(ctx: WebContext, now: dt.datetime | None = None) -> Scheduled:
    """The queued one-off sends and the monthly slot's next run (from `[schedule]`, as the
    dashboard's "next issue" and `newsletter schedule show` read it)."""
    slot = MonthlySlot.from_config(ctx.settings.schedule)
    runs = next_monthly_runs(slot, now or ctx.clock(), 1)
    monthly = (month_for_run(slot, runs[0]), runs[0]) if runs else None
    try:
        with service.job_store(ctx.settings, ctx.engine) as scheduler:
            queued = service.one_offs(scheduler)
    except NewsletterError:
        return Scheduled({}, monthly)
    found: dict[str, dt.datetime] = {}
    for one in queued:
        found.setdefault(one.month, one.run_time)
    return Scheduled(found, monthly)


def issue_state(
    ctx: WebContext, item: IssueOverview, scheduled: Scheduled | None = None
) -> IssueState:
    """The state of the month of `item` (its campaign, the queue and the monthly slot, then
    issue.md)."""
    if item.campaign_status == DONE and not item.running:
        return IssueState("sent")
    if item.running or item.campaign_status not in ("not sent", DONE):
        return IssueState("sending")
    _, meta = desk.read_issue_file(ctx.settings.content.dir, item.month)
    ready = meta.status == "ready"
    queued = scheduled if scheduled is not None else scheduled_sends(ctx)
    when = queued.time_for(item.month, ready)
    if when is not None:
        one_off = queued.one_offs.get(item.month)
        return IssueState("scheduled", when, by_slot=one_off is None or one_off > when)
    return IssueState("ready" if ready else "draft")


def state_of(ctx: WebContext, month: str) -> IssueState:
    return issue_state(ctx, ctx.sending.overview(month))


def _content(ctx: WebContext) -> Path:
    return Path(ctx.settings.content.dir)


def _writable(ctx: WebContext, month: str) -> None:
    state = state_of(ctx, month)
    if state.read_only:
        raise ReadOnlyIssue(f"{month} is {state.name}: it is read-only")


def save_issue(ctx: WebContext, month: str, draft: IssueDraft, version: str, actor: str):
    """Write issue.md (refused for a sending or sent issue); recorded as edit-issue."""
    _writable(ctx, month)
    written = desk.save_issue(_content(ctx), month, draft, version)
    with transaction(ctx.engine) as session:
        audit.record(session, actor, "edit-issue", f"{month}/issue.md", draft.subject[:200])
    return written


def save_summary(
    ctx: WebContext,
    month: str,
    slug: str,
    draft: SummaryDraft,
    version: str,
    actor: str,
    *,
    correct: bool = False,
    reference: str = "",
) -> tuple[desk.OnDisk, bool]:
    """Write one summary: (file as written, created). A sending or sent issue is read-only;
    `correct` (sent issues only, existing summaries only) stamps `corrected:` with today."""
    state = state_of(ctx, month)
    if correct:
        if state.name != "sent":
            raise ReadOnlyIssue(f"{month} is {state.name}: only a sent issue takes corrections")
        if desk.read_summary_file(_content(ctx), month, slug).text is None:
            raise ReadOnlyIssue(f"{month} is sent: a correction cannot add a summary")
        draft = dataclasses.replace(draft, corrected=dt.datetime.now(dt.UTC).date())
    elif state.read_only:
        raise ReadOnlyIssue(f"{month} is {state.name}: it is read-only (use Correct for a fix)")
    written, created = desk.save_summary(
        _content(ctx), month, slug, draft, version, _taxonomy(ctx), reference
    )
    with transaction(ctx.engine) as session:
        detail = ("correction: " if correct else "") + draft.title[:200]
        audit.record(session, actor, "edit-summary", f"{month}/{written.path.name}", detail)
    if correct:  # republish the sent issue's page at once ("Corrected on …"); mail nothing
        publish.rebuild_quietly(ctx.engine, ctx.settings, actor=actor, month=month)
    return written, created


def delete_summary(ctx: WebContext, month: str, slug: str, version: str, actor: str) -> Path:
    _writable(ctx, month)
    path = desk.delete_summary(_content(ctx), month, slug, version)
    with transaction(ctx.engine) as session:
        audit.record(session, actor, "delete-summary", f"{month}/{path.name}")
    return path


def move_summary(ctx: WebContext, month: str, slug: str, step: int, actor: str) -> None:
    """Move a summary up (-1) or down (+1) in the issue: every summary gets `order: 1..n`."""
    _writable(ctx, month)
    slugs = [s.slug for s in ordered_summaries(ctx, month)]
    if slug not in slugs:
        raise InvalidEdit({"slug": [f"no summary {slug!r} in {month}"]})
    at = slugs.index(slug)
    to = max(0, min(len(slugs) - 1, at + step))
    slugs.insert(to, slugs.pop(at))
    desk.reorder(_content(ctx), month, slugs, _taxonomy(ctx))
    with transaction(ctx.engine) as session:
        audit.record(session, actor, "edit-summary", f"{month}/{slug}", f"moved to {to + 1}")


@dataclasses.dataclass(frozen=True)
class DeskSummary:
    """A summary file as the issue page lists it (read even when it does not pass)."""

    slug: str
    path: Path
    draft: SummaryDraft | None
    version: str

    @property
    def title(self) -> str:
        return self.draft.title if self.draft and self.draft.title else self.path.name


def ordered_summaries(ctx: WebContext, month: str) -> list[DeskSummary]:
    """The month's summary files in reading order (`order`, then file name), broken ones too."""
    found = []
    for slug, path in desk.summary_files(_content(ctx), month).items():
        on_disk = desk.read(path)
        found.append(DeskSummary(slug, path, desk.load_draft(on_disk), on_disk.version))

    def key(item: DeskSummary) -> tuple[bool, int, str]:
        order = item.draft.order if item.draft else None
        return (order is None, order or 0, item.path.name)

    return sorted(found, key=key)


def _taxonomy(ctx: WebContext) -> Taxonomy:
    return ctx.taxonomy


def editor_fields(ctx: WebContext, item: IssueOverview) -> dict[str, Any]:
    """What the API's issue adds for editors: state, issue.md and every summary file."""
    state = issue_state(ctx, item)
    on_disk, meta = desk.read_issue_file(_content(ctx), item.month)
    files = []
    for found in ordered_summaries(ctx, item.month):
        draft = found.draft or SummaryDraft("", (), "")
        files.append(
            {
                "slug": found.slug,
                "file": found.path.name,
                "version": found.version,
                "title": draft.title,
                "topics": list(draft.topics),
                "research_type": draft.research_type,
                "citation": draft.citation,
                "doi": draft.doi,
                "author": draft.author,
                "order": draft.order,
                "summary": draft.summary_md,
                "implications": draft.implications_md,
                "corrected": draft.corrected.isoformat() if draft.corrected else None,
            }
        )
    return {
        "state": state.name,
        "scheduled_at": state.scheduled_at.isoformat() if state.scheduled_at else None,
        "issue_version": on_disk.version,
        "preheader": meta.preheader,
        "intro": meta.intro_md,
        "public": meta.public,
        "files": files,
    }
