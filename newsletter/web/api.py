"""The JSON admin API under `/api/`: the admin pages' actions for scripts.

Every endpoint needs `Authorization: Bearer <token>` where the token is the value of
$NEWSLETTER_API_TOKEN (`[web] api_token_env`); without that variable the API answers 503.
The schema is at `/api/openapi.json`.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from typing import Any

from fastapi import APIRouter
from fastapi import Depends
from fastapi import HTTPException
from fastapi import Query
from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security import HTTPBearer
from pydantic import BaseModel
from pydantic import Field

from newsletter.content.model import MONTH_RE
from newsletter.content.model import Issue
from newsletter.errors import ImportFileError
from newsletter.errors import NewsletterError
from newsletter.store import import_export
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction
from newsletter.store.models import SUBSCRIBER_STATUSES
from newsletter.store.models import Subscriber
from newsletter.web.app import WebContext
from newsletter.web.app import get_ctx

bearer = HTTPBearer(auto_error=False, description="The value of $NEWSLETTER_API_TOKEN.")


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    expected = get_ctx(request).api_token()
    if not expected:
        raise HTTPException(503, "the API is off: set the API token environment variable")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


router = APIRouter(dependencies=[Depends(require_token)], tags=["admin"])
Ctx = Annotated[WebContext, Depends(get_ctx)]
Short = Annotated[str, Field(max_length=320)]


# --- models --------------------------------------------------------------------------------


class SummaryOut(BaseModel):
    slug: str
    title: str
    topics: list[str]
    research_type: str


class IssueOut(BaseModel):
    month: str
    subject: str | None = None
    summaries: list[SummaryOut] = []
    error: str = ""
    campaign_status: str
    counts: dict[str, int]
    running: bool


class PreviewIn(BaseModel):
    topics: list[Short] | None = Field(
        default=None, max_length=200, description="Topic labels or slugs; null for all topics."
    )
    subscriber: Short | None = Field(default=None, description="Preview as this subscriber.")


class PreviewOut(BaseModel):
    month: str
    variant: str
    html: str
    text: str
    size: int = Field(description="Encoded HTML bytes (quoted-printable), against Gmail's clip.")
    size_level: str
    size_message: str


class TestIn(BaseModel):
    to: list[Short] = Field(min_length=1, max_length=20)
    topics: list[Short] | None = Field(default=None, max_length=200)


class TestOut(BaseModel):
    results: list[str]


class PlanOut(BaseModel):
    month: str
    audience: int
    variant_count: int
    variants: dict[str, int]
    skipped_no_match: int
    existing: dict[str, int]
    to_send: int


class SendIn(BaseModel):
    confirm: bool = Field(description="Must be true: this sends the issue to real subscribers.")
    lists: list[Short] | None = Field(default=None, max_length=50)


class ProgressOut(BaseModel):
    month: str
    campaign_status: str
    counts: dict[str, int]
    running: bool
    error: str = ""


class SubscriberOut(BaseModel):
    id: int
    email: str
    name: str
    status: str
    topics: str | list[str] = Field(description='"*" for all topics, else topic slugs.')
    excluded_topics: list[str] = Field(
        default=[], description='With "*": the topics they stopped (every topic but these).'
    )
    lists: list[str]
    created_at: str | None
    confirmed_at: str | None
    unsubscribed_at: str | None
    consent_source: str


class DeliveryOut(BaseModel):
    month: str
    status: str
    attempts: int
    sent_at: str | None
    error: str


class SubscriberDetail(SubscriberOut):
    deliveries: list[DeliveryOut]


class SubscriberIn(BaseModel):
    email: Short
    name: str = Field(default="", max_length=200)
    topics: list[Short] | None = Field(default=None, max_length=200)
    lists: list[Short] | None = Field(default=None, max_length=50)
    status: str = Field(default="active", pattern="^(active|pending)$")


class SubscriberPatch(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    status: str | None = Field(default=None, max_length=20)
    topics: list[Short] | None = Field(
        default=None, max_length=200, description='Labels or slugs; ["*"] for all topics.'
    )
    lists: list[Short] | None = Field(default=None, max_length=50)


class ImportIn(BaseModel):
    csv: str = Field(max_length=20 * 1024 * 1024, description="UTF-8 CSV text with a header.")
    skip_invalid: bool = False
    update_existing: bool = False
    dry_run: bool = False


class Rejected(BaseModel):
    line: int
    reason: str


class ImportOut(BaseModel):
    added: int
    updated: int
    skipped_existing: int
    rows: int
    dry_run: bool
    rejected: list[Rejected]


# --- helpers -------------------------------------------------------------------------------


def _issue(ctx: WebContext, month: str) -> Issue:
    if not MONTH_RE.match(month):
        raise HTTPException(404, "no such month")
    try:
        return ctx.sending.load(month)
    except NewsletterError as error:
        raise HTTPException(404, str(error)) from None


def _bad(error: Exception) -> HTTPException:
    return HTTPException(400, str(error))


def _subscriber_out(subscriber: Subscriber) -> dict[str, Any]:
    return {"id": subscriber.id, **import_export.subscriber_to_dict(subscriber)}


def _topics(ctx: WebContext, names: list[str] | None) -> frozenset[str] | None:
    try:
        return api.parse_topics(names, ctx.taxonomy)
    except NewsletterError as error:
        raise _bad(error) from None


# --- issues --------------------------------------------------------------------------------


def _issue_out(ctx: WebContext, month: str) -> IssueOut:
    item = ctx.sending.overview(month)
    issue = item.issue
    return IssueOut(
        month=month,
        subject=issue.subject if issue else None,
        summaries=[
            SummaryOut(
                slug=s.slug,
                title=s.title,
                topics=[t.slug for t in s.topics],
                research_type=s.research_type.label,
            )
            for s in (issue.summaries if issue else ())
        ],
        error=item.error,
        campaign_status=item.campaign_status,
        counts=item.counts,
        running=item.running,
    )


@router.get("/issues", response_model=list[IssueOut])
def list_issues(ctx: Ctx) -> list[IssueOut]:
    """Every month in content/, newest first, with its sent state and delivery counts."""
    return [_issue_out(ctx, month) for month in ctx.sending.months()]


@router.get("/issues/{month}", response_model=IssueOut)
def get_issue(month: str, ctx: Ctx) -> IssueOut:
    """One month: summaries, sent state, delivery counts."""
    if not MONTH_RE.match(month) or month not in ctx.sending.months():
        raise HTTPException(404, "no such month")
    return _issue_out(ctx, month)


@router.post("/issues/{month}/preview", response_model=PreviewOut)
def preview(month: str, body: PreviewIn, ctx: Ctx) -> PreviewOut:
    """The issue as a topic set or as a subscriber: HTML, text and encoded size."""
    issue = _issue(ctx, month)
    topics = _topics(ctx, body.topics)
    with session_factory(ctx.engine)() as session:
        person = None
        if body.subscriber:
            person = api.get_subscriber(session, body.subscriber)
            if person is None:
                raise HTTPException(404, "no such subscriber")
        try:
            result = ctx.sending.preview(issue, topics, person)
        except NewsletterError as error:
            raise _bad(error) from None
    return PreviewOut(
        month=month,
        variant=result.variant,
        html=result.html,
        text=result.text,
        size=result.size,
        size_level=result.size_level,
        size_message=result.size_message,
    )


@router.post("/issues/{month}/test", response_model=TestOut)
def test_send(month: str, body: TestIn, ctx: Ctx) -> TestOut:
    """Send the issue marked [TEST] to these addresses, outside the ledger."""
    issue = _issue(ctx, month)
    topics = _topics(ctx, body.topics)
    try:
        return TestOut(results=ctx.sending.test_send(issue, body.to, topics))
    except NewsletterError as error:
        raise _bad(error) from None


@router.get("/issues/{month}/plan", response_model=PlanOut)
def plan(
    month: str,
    ctx: Ctx,
    lists: Annotated[list[str] | None, Query(max_length=80)] = None,
) -> PlanOut:
    """What a send would do now: audience size and variants (nothing is written)."""
    issue = _issue(ctx, month)
    try:
        report = ctx.sending.plan(issue, lists)
    except NewsletterError as error:
        raise _bad(error) from None
    return PlanOut(
        month=month,
        audience=report.audience,
        variant_count=len(report.variants),
        variants=dict(report.variants),
        skipped_no_match=report.skipped_no_match,
        existing=report.existing,
        to_send=report.to_send,
    )


def _progress(ctx: WebContext, month: str) -> ProgressOut:
    item = ctx.sending.overview(month)
    state = ctx.sending.state(month)
    return ProgressOut(
        month=month,
        campaign_status=item.campaign_status,
        counts=item.counts,
        running=item.running,
        error=state.error if state else "",
    )


@router.post("/issues/{month}/send", response_model=ProgressOut, status_code=202)
def send(month: str, body: SendIn, ctx: Ctx) -> ProgressOut:
    """Send the issue to its audience in the background (resumes a stopped send)."""
    issue = _issue(ctx, month)
    if not body.confirm:
        raise HTTPException(400, "set confirm to true to send")
    try:
        ctx.sending.start(issue, body.lists)
    except NewsletterError as error:
        raise HTTPException(409, str(error)) from None
    return _progress(ctx, month)


@router.get("/issues/{month}/progress", response_model=ProgressOut)
def progress(month: str, ctx: Ctx) -> ProgressOut:
    """Delivery counts by status, read from the ledger."""
    _issue(ctx, month)
    return _progress(ctx, month)


# --- subscribers ---------------------------------------------------------------------------


@router.get("/subscribers", response_model=list[SubscriberOut])
def list_subscribers(
    ctx: Ctx,
    status: Annotated[str | None, Query(max_length=20)] = None,
    topic: Annotated[str | None, Query(max_length=200)] = None,
    list_slug: Annotated[str | None, Query(alias="list", max_length=80)] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Subscribers in id order, filtered like `newsletter subscribers list`."""
    if status is not None and status not in SUBSCRIBER_STATUSES:
        raise HTTPException(
            400, f"unknown status; expected one of {', '.join(SUBSCRIBER_STATUSES)}"
        )
    term = None
    if topic:
        term = ctx.taxonomy.topics.find(topic)
        if term is None:
            raise HTTPException(400, ctx.taxonomy.topics.unknown_message(topic))
    with session_factory(ctx.engine)() as session:
        found = api.query_subscribers(
            session,
            status=status,
            list_slug=list_slug,
            topic=term.slug if term else None,
            search=search or None,
            limit=limit,
            offset=offset,
        )
        return [_subscriber_out(s) for s in found]


@router.post("/subscribers", response_model=SubscriberOut, status_code=201)
def add_subscriber(body: SubscriberIn, ctx: Ctx) -> dict[str, Any]:
    """Add one subscriber (consent given elsewhere: active, or pending)."""
    topics = _topics(ctx, body.topics)
    try:
        with transaction(ctx.engine) as session:
            subscriber = api.add_subscriber(
                session,
                ctx.settings,
                ctx.taxonomy,
                body.email,
                name=body.name,
                topics=topics,
                lists=body.lists,
                status=body.status,
                source="api",
            )
            return _subscriber_out(subscriber)
    except NewsletterError as error:
        raise _bad(error) from None


def _load(session, subscriber_id: int) -> Subscriber:
    subscriber = session.get(Subscriber, subscriber_id) if 0 < subscriber_id < 2**62 else None
    if subscriber is None:
        raise HTTPException(404, "no such subscriber")
    return subscriber


@router.get("/subscribers/{subscriber_id}", response_model=SubscriberDetail)
def get_subscriber(subscriber_id: int, ctx: Ctx) -> dict[str, Any]:
    """One subscriber with their deliveries."""
    with session_factory(ctx.engine)() as session:
        subscriber = _load(session, subscriber_id)
        return {
            **_subscriber_out(subscriber),
            "deliveries": api.subscriber_deliveries(session, subscriber.id),
        }


@router.patch("/subscribers/{subscriber_id}", response_model=SubscriberOut)
def update_subscriber(subscriber_id: int, body: SubscriberPatch, ctx: Ctx) -> dict[str, Any]:
    """Change status, name, topics or lists."""
    try:
        with transaction(ctx.engine) as session:
            subscriber = _load(session, subscriber_id)
            if body.name is not None:
                api.set_name(session, subscriber, body.name)
            if body.topics is not None:
                api.set_topics(session, subscriber, _topics(ctx, body.topics))
            if body.lists is not None:
                api.set_lists(session, ctx.settings, subscriber, body.lists)
            if body.status is not None:
                api.change_status(session, subscriber, body.status)
            return _subscriber_out(subscriber)
    except NewsletterError as error:
        raise _bad(error) from None


@router.post("/subscribers/import", response_model=ImportOut)
def import_subscribers(body: ImportIn, ctx: Ctx) -> ImportOut:
    """Import CSV with the same rules and report as `newsletter subscribers import`."""
    try:
        with transaction(ctx.engine) as session:
            report = import_export.import_csv(
                session,
                ctx.settings,
                ctx.taxonomy,
                body.csv,
                source="api-import",
                skip_invalid=body.skip_invalid,
                update_existing=body.update_existing,
                dry_run=body.dry_run,
            )
    except ImportFileError as error:
        rejected = [{"line": line, "reason": reason} for line, reason in error.rejected]
        raise HTTPException(400, {"message": str(error), "rejected": rejected}) from None
    return ImportOut(
        added=report.added,
        updated=report.updated,
        skipped_existing=report.skipped_existing,
        rows=report.rows,
        dry_run=report.dry_run,
        rejected=[Rejected(line=line, reason=reason) for line, reason in report.rejected],
    )
