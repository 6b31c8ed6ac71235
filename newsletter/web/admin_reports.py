"""Admin: the dashboard (the admin home), each issue's report, and the "Rebuild archive" button.

The numbers come from `store.reports`; the charts from `render.charts` (server-side SVG, no
JavaScript); the rebuild from `archive.publish`, the same function a completed send calls.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from typing import Annotated

from fastapi import APIRouter
from fastapi import Depends
from fastapi import Form
from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException

from newsletter.archive.publish import rebuild
from newsletter.content.model import MONTH_RE
from newsletter.errors import NewsletterError
from newsletter.render import charts
from newsletter.scheduling import service
from newsletter.scheduling.slots import MonthlySlot
from newsletter.scheduling.slots import month_for_run
from newsletter.scheduling.slots import next_monthly_runs
from newsletter.store import clicks
from newsletter.store import reports
from newsletter.store.engine import session_factory
from newsletter.store.models import DELIVERY_STATUSES
from newsletter.store.models import utcnow
from newsletter.web.admin import Admin
from newsletter.web.admin import require_csrf
from newsletter.web.app import WebContext
from newsletter.web.app import context
from newsletter.web.pages import render_page

router = APIRouter()
Ctx = Annotated[WebContext, Depends(context)]
Text = Annotated[str, Form(max_length=200)]
PAGE = 100


@dataclasses.dataclass(frozen=True)
class NextIssue:
    """The next send: the monthly slot's next run, or a queued one-off if sooner."""

    month: str
    at: dt.datetime
    kind: str  # "monthly" or "one-off"


def next_issue(ctx: WebContext) -> NextIssue | None:
    """The next scheduled send; None when there is none (or the queue cannot be read)."""
    settings = ctx.settings
    now = utcnow()
    slot = MonthlySlot.from_config(settings.schedule)
    found: NextIssue | None = None
    for run in next_monthly_runs(slot, now, 1):
        found = NextIssue(month_for_run(slot, run), run, "monthly")
    try:
        with service.job_store(settings, ctx.engine) as scheduler:
            queued = service.one_offs(scheduler)
    except NewsletterError:
        queued = []
    for one in queued:
        if one.run_time >= now and (found is None or one.run_time < found.at):
            found = NextIssue(one.month, one.run_time, "one-off")
    return found


def _charts(ctx: WebContext, session) -> tuple[Markup, Markup, list[reports.MonthGrowth]]:
    growth = reports.growth(session, 12)
    months = [g.month for g in growth]
    growth_svg = charts.grouped_columns(
        "growth",
        "Subscribers by month: new, confirmed, unsubscribed, bounced",
        months,
        [
            ("new", [g.new for g in growth]),
            ("confirmed", [g.confirmed for g in growth]),
            ("unsubscribed", [g.unsubscribed for g in growth]),
            ("bounced", [g.bounced for g in growth]),
        ],
    )
    per_topic = reports.readers_per_topic(session, [t.slug for t in ctx.taxonomy.topics])
    labels = {t.slug: t.label for t in ctx.taxonomy.topics}
    ranked = sorted(per_topic.items(), key=lambda item: (-item[1], labels[item[0]]))
    topics_svg = charts.horizontal_bars(
        "topics",
        "Readers who receive each topic (active subscribers)",
        [(labels[slug], count) for slug, count in ranked],
        unit=" readers",
    )
    # Our own SVG, every text in it escaped by `render.charts`.
    return Markup(growth_svg), Markup(topics_svg), growth


def dashboard_page(
    ctx: WebContext, request: Request, *, notice: str = "", error: str = "", status_code=200
) -> Response:
    with session_factory(ctx.engine)() as session:
        growth_svg, topics_svg, growth = _charts(ctx, session)
        last = reports.last_campaign(session)
        report = reports.issue_report(session, last.month) if last else None
        totals = reports.status_totals(session)
    return render_page(
        ctx,
        request,
        "admin/dashboard.html",
        status_code=status_code,
        growth_svg=growth_svg,
        topics_svg=topics_svg,
        growth=growth,
        last=report,
        next_issue=next_issue(ctx),
        totals=totals,
        limits={
            "spam": reports.SPAM_RATE_LIMIT,
            "spam_advised": reports.SPAM_RATE_ADVISED,
            "bounce": reports.BOUNCE_RATE_LIMIT,
        },
        notice=notice,
        error=error,
    )


@router.get("/admin/dashboard", dependencies=[Admin])
def dashboard(request: Request, ctx: Ctx) -> Response:
    return dashboard_page(ctx, request)


@router.post("/admin/archive/rebuild", dependencies=[Admin])
def rebuild_archive(request: Request, ctx: Ctx, csrf_token: Text = "") -> Response:
    require_csrf(request, ctx, csrf_token)
    try:
        result = rebuild(ctx.engine, ctx.settings, ctx.taxonomy, actor="admin")
    except NewsletterError as problem:
        return dashboard_page(
            ctx, request, error=f"Archive not rebuilt: {problem}", status_code=500
        )
    return dashboard_page(
        ctx,
        request,
        notice=f"Archive rebuilt: {result.pages} pages for {len(result.months)} issues "
        f"in {result.seconds:.1f} s.",
    )


# --- the issue report ------------------------------------------------------------------------


def _month(month: str) -> str:
    if not MONTH_RE.match(month):
        raise StarletteHTTPException(404)
    return month


def _status_filter(status: str) -> str | None:
    if not status:
        return None
    if status not in DELIVERY_STATUSES:
        raise StarletteHTTPException(
            400, f"status: choose one of {', '.join(DELIVERY_STATUSES)} (not {status[:40]!r})"
        )
    return status


@router.get("/admin/issues/{month}/report", dependencies=[Admin])
def issue_report(
    month: str, request: Request, ctx: Ctx, status: str = "", q: str = "", page: int = 1
) -> Response:
    month = _month(month)
    chosen = _status_filter(status)
    page = max(1, min(page, 100_000))
    with session_factory(ctx.engine)() as session:
        report = reports.issue_report(session, month)
        if report is None:
            raise StarletteHTTPException(404, f"{month} has not been sent (nothing to report).")
        rows, total = reports.recipients(
            session, month, status=chosen, search=q, limit=PAGE, offset=(page - 1) * PAGE
        )
        links = clicks.clicks_for(session, month)
    return render_page(
        ctx,
        request,
        "admin/report.html",
        report=report,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE)),
        status=chosen or "",
        q=q[:320],
        statuses=DELIVERY_STATUSES,
        limits={"spam": reports.SPAM_RATE_LIMIT, "bounce": reports.BOUNCE_RATE_LIMIT},
        tracking=ctx.settings.tracking.clicks,
        links=links,
        per_summary=clicks.clicks_per_summary(links),
        titles=summary_titles(ctx, month),
        topic_labels={t.slug: t.label for t in ctx.taxonomy.topics},
    )


def summary_titles(ctx: WebContext, month: str) -> dict[str, str]:
    """slug -> title of the month's summaries ({} when its content no longer reads)."""
    try:
        issue = ctx.sending.load(month)
    except NewsletterError:
        return {}
    return {s.slug: s.title for s in issue.summaries}


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP "CSV injection")."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def recipients_csv(rows: list[reports.Recipient]) -> str:
    """The recipients list as CSV (one header line, then one line per ledger row)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["email", "status", "attempts", "sent_at", "reason", "subscriber_status"])
    for row in rows:
        sent = row.sent_at.isoformat(timespec="seconds") if row.sent_at else ""
        writer.writerow(
            [
                _cell(v)
                for v in (
                    row.email,
                    row.status,
                    row.attempts,
                    sent,
                    row.reason,
                    row.subscriber_status,
                )
            ]
        )
    return out.getvalue()


@router.get("/admin/issues/{month}/report.csv", dependencies=[Admin])
def issue_report_csv(month: str, ctx: Ctx, status: str = "", q: str = "") -> Response:
    month = _month(month)
    chosen = _status_filter(status)
    with session_factory(ctx.engine)() as session:
        if reports.issue_report(session, month) is None:
            raise StarletteHTTPException(404, f"{month} has not been sent (nothing to report).")
        rows, _total = reports.recipients(session, month, status=chosen, search=q, limit=None)
    return Response(
        recipients_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="recipients-{month}.csv"',
            "Cache-Control": "no-store",
        },
    )
