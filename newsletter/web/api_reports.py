"""The JSON API's report and publishing endpoints (bearer token, as the rest of `/api/`).

- `GET /api/issues/{month}/report`: how an issue did, with one page of its recipients;
- `POST /api/archive/rebuild`: rebuild the static archive now (the admin's button).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from typing import Literal

from fastapi import APIRouter
from fastapi import Depends
from fastapi import FastAPI
from fastapi import HTTPException
from fastapi import Query
from pydantic import BaseModel
from pydantic import Field

from newsletter.archive.publish import rebuild
from newsletter.content.model import MONTH_RE
from newsletter.errors import NewsletterError
from newsletter.store import clicks
from newsletter.store import reports
from newsletter.store.engine import session_factory
from newsletter.web.api import TokenFirst
from newsletter.web.api import require_token
from newsletter.web.api_schema import problems
from newsletter.web.app import WebContext
from newsletter.web.app import context

router = APIRouter(dependencies=[Depends(require_token)], tags=["admin"], route_class=TokenFirst)
Ctx = Annotated[WebContext, Depends(context)]
DeliveryStatus = Literal["queued", "sending", "sent", "retry", "failed", "skipped"]


class Reason(BaseModel):
    reason: str
    count: int


class RecipientOut(BaseModel):
    email: str
    status: str
    attempts: int
    sent_at: dt.datetime | None
    reason: str
    subscriber_status: str


class TopicCount(BaseModel):
    topic: str  # slug
    count: int


class LinkOut(BaseModel):
    summary: str  # the summary's slug; "" for a link outside any summary
    url: str
    clicks: int


class ReportOut(BaseModel):
    month: str
    subject: str
    campaign_status: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    audience: int
    sent: int
    failed: int
    skipped: int
    counts: dict[str, int]
    failed_reasons: list[Reason]
    skipped_reasons: list[Reason]
    bounced_hard: int
    bounced_soft: int
    unsubscribed: int
    topics_dropped: list[TopicCount]
    complained: int
    window_days: int
    counted_sources: str = Field(
        default=reports.COUNTED_SOURCES,
        description="Which unsubscribes and dropped topics the counts include.",
    )
    recipients_total: int
    recipients: list[RecipientOut]
    clicks_per_summary: dict[str, int]  # empty unless [tracking] clicks was on
    clicks_per_link: list[LinkOut]


class RebuildOut(BaseModel):
    pages: int
    files: int
    months: list[str]
    summaries: int
    search: str
    seconds: float


def install(app: FastAPI) -> None:
    """Mount these endpoints under /api/ (the schema is built lazily by `api.install`)."""
    app.include_router(router, prefix="/api")


@router.get("/issues/{month}/report", response_model=ReportOut, responses=problems(404))
def issue_report(
    month: str,
    ctx: Ctx,
    status: DeliveryStatus | None = None,
    search: Annotated[str, Query(max_length=320)] = "",
    limit: Annotated[int, Query(ge=1, le=reports.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ReportOut:
    """How the month's issue did: audience, sent, failed and skipped with their reasons,
    bounces, unsubscribes and topics dropped through its links and complaints within 30
    days, clicks per summary and per link (with
    `[tracking] clicks`), and one page of its recipients (filtered by delivery status and an
    address substring)."""
    if not MONTH_RE.match(month):
        raise HTTPException(404, "no such month")
    with session_factory(ctx.engine)() as session:
        report = reports.issue_report(session, month)
        if report is None:
            raise HTTPException(404, f"{month} has not been sent: nothing to report")
        rows, total = reports.recipients(
            session, month, status=status, search=search, limit=limit, offset=offset
        )
        links = clicks.clicks_for(session, month)
    return ReportOut(
        month=month,
        subject=report.subject,
        campaign_status=report.status,
        started_at=report.started_at,
        finished_at=report.finished_at,
        audience=report.audience,
        sent=report.sent,
        failed=report.failed,
        skipped=report.skipped,
        counts=report.counts,
        failed_reasons=[Reason(reason=r, count=n) for r, n in report.failed_reasons],
        skipped_reasons=[Reason(reason=r, count=n) for r, n in report.skipped_reasons],
        bounced_hard=report.bounced_hard,
        bounced_soft=report.bounced_soft,
        unsubscribed=report.unsubscribed,
        topics_dropped=[TopicCount(topic=t, count=n) for t, n in report.topics_dropped],
        complained=report.complained,
        window_days=report.window_days,
        recipients_total=total,
        recipients=[RecipientOut(**vars(row)) for row in rows],
        clicks_per_summary=clicks.clicks_per_summary(links),
        clicks_per_link=[LinkOut(summary=k.summary, url=k.url, clicks=k.clicks) for k in links],
    )


@router.post("/archive/rebuild", response_model=RebuildOut, responses=problems(409))
def rebuild_archive(ctx: Ctx) -> RebuildOut:
    """Rebuild the static archive from the sent and public months now, and swap it in.

    409 when it cannot be built (the detail says why); the old archive then stays as it was.
    """
    try:
        result = rebuild(ctx.engine, ctx.settings, ctx.taxonomy, actor="api")
    except NewsletterError as error:
        raise HTTPException(409, str(error)) from None
    return RebuildOut(
        pages=result.pages,
        files=result.files,
        months=result.months,
        summaries=result.summaries,
        search=result.search,
        seconds=round(result.seconds, 3),
    )
