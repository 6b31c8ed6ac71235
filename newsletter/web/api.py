"""The JSON admin API under `/api/`: the admin pages' actions for scripts.

Every endpoint needs `Authorization: Bearer <token>` where the token is the value of
$NEWSLETTER_API_TOKEN (`[web] api_token_env`); without that variable the API answers 503.
The token is checked before the body is read: a request without it gets 401 whatever it sends.
The schema is at `/api/openapi.json`; it is the contract, and the tests hold the API to it with
schemathesis: topics and lists are enums of this newsletter's taxonomy and lists, every status
an operation can answer is listed, and every error body is an RFC 9457 problem detail
(`type`, `title`, `status`, `detail`).
"""

from __future__ import annotations

import hmac
import typing
from collections.abc import Callable
from collections.abc import Coroutine
from typing import Annotated
from typing import Any

from fastapi import APIRouter
from fastapi import Depends
from fastapi import FastAPI
from fastapi import HTTPException
from fastapi import Query
from fastapi import Request
from fastapi import Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security import HTTPBearer

from newsletter.content.model import MONTH_RE
from newsletter.content.model import Issue
from newsletter.errors import ImportFileError
from newsletter.errors import NewsletterError
from newsletter.errors import SubscriberConflict
from newsletter.store import audit
from newsletter.store import import_export
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction
from newsletter.store.models import Subscriber
from newsletter.web.api_schema import CHOICES
from newsletter.web.api_schema import MAX_CSV_CHARS
from newsletter.web.api_schema import ImportIn
from newsletter.web.api_schema import ImportOut
from newsletter.web.api_schema import IssueOut
from newsletter.web.api_schema import PlanOut
from newsletter.web.api_schema import PreviewIn
from newsletter.web.api_schema import PreviewOut
from newsletter.web.api_schema import ProgressOut
from newsletter.web.api_schema import Rejected
from newsletter.web.api_schema import SendIn
from newsletter.web.api_schema import Status
from newsletter.web.api_schema import SubscriberDetail
from newsletter.web.api_schema import SubscriberIn
from newsletter.web.api_schema import SubscriberOut
from newsletter.web.api_schema import SubscriberPatch
from newsletter.web.api_schema import SummaryOut
from newsletter.web.api_schema import TestIn
from newsletter.web.api_schema import TestOut
from newsletter.web.api_schema import build_openapi
from newsletter.web.api_schema import list_choices
from newsletter.web.api_schema import problems
from newsletter.web.api_schema import topic_choices
from newsletter.web.app import WebContext
from newsletter.web.app import context
from newsletter.web.app import get_ctx
from newsletter.web.editing import editor_fields

bearer = HTTPBearer(auto_error=False, description="The value of $NEWSLETTER_API_TOKEN.")


def check_token(request: Request) -> None:
    """503 when the API is off, 401 unless the request carries the bearer token."""
    expected = get_ctx(request).api_token()
    if not expected:
        raise HTTPException(503, "the API is off: set the API token environment variable")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode("utf-8", "replace"), expected.encode()
    ):
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """The dependency that puts the bearer scheme into the schema (`TokenFirst` checks it)."""
    check_token(request)


class TokenFirst(APIRoute):
    """A route that checks the token before FastAPI reads and validates the body.

    FastAPI parses the JSON body before it runs dependencies, so a stranger's malformed body
    would get 422 (and be parsed) instead of 401.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        single = {
            field.alias
            for field in self.dependant.query_params
            if not _takes_many(field.field_info.annotation)
        }

        async def checked(request: Request) -> Response:
            check_token(request)
            # FastAPI keeps the last of a repeated query parameter and ignores the others: a
            # request the schema does not allow (`?list=a&list=b` for one list) is refused.
            for name in single:
                if len(request.query_params.getlist(name)) > 1:
                    raise HTTPException(422, f"query parameter {name!r} is given more than once")
            return await handler(request)

        return checked


def _takes_many(annotation: object) -> bool:
    """Whether a query parameter's type is a list (`list[str] | None` included)."""
    if typing.get_origin(annotation) in (list, tuple, set, frozenset):
        return True
    return any(_takes_many(arg) for arg in typing.get_args(annotation))


router = APIRouter(dependencies=[Depends(require_token)], tags=["admin"], route_class=TokenFirst)
Ctx = Annotated[WebContext, Depends(context)]


def install(app: FastAPI, ctx: WebContext) -> None:
    """Mount the API under /api/ and make its schema name this newsletter's topics and lists."""
    app.include_router(router, prefix="/api")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, ctx)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# --- helpers -------------------------------------------------------------------------------


# The audit log's actor for the API: one bearer token, no admin name behind it.
API_ACTOR = "api"


def _audit(ctx: WebContext, action: str, target: str, detail: str = "") -> None:
    with transaction(ctx.engine) as session:
        audit.record(session, API_ACTOR, action, target, detail)


def _issue(ctx: WebContext, month: str) -> Issue:
    if not MONTH_RE.match(month):
        raise HTTPException(404, "no such month")
    try:
        return ctx.sending.load(month)
    except NewsletterError as error:
        raise HTTPException(404, str(error)) from None


def _bad(error: Exception) -> HTTPException:
    if isinstance(error, SubscriberConflict):
        return HTTPException(409, str(error))
    return HTTPException(400, str(error))


def _subscriber_out(subscriber: Subscriber) -> dict[str, Any]:
    return {"id": subscriber.id, **import_export.subscriber_to_dict(subscriber)}


def _topics(ctx: WebContext, names: list[str] | None) -> frozenset[str] | None:
    """Exactly the enum of the schema (no aliases, no other spellings), as slugs."""
    known = set(topic_choices(ctx))
    for name in names or ():
        if name not in known:
            raise HTTPException(400, ctx.taxonomy.topics.unknown_message(name))
    try:
        return api.parse_topics(names, ctx.taxonomy)
    except NewsletterError as error:
        raise _bad(error) from None


def _lists(ctx: WebContext, slugs: list[str] | None) -> list[str] | None:
    known = list_choices(ctx)
    for slug in slugs or ():
        if slug not in known:
            raise HTTPException(400, api.known_lists_message(slug, known))
    return slugs


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
        **editor_fields(ctx, item),
    )


@router.get("/issues", response_model=list[IssueOut], responses=problems())
def list_issues(ctx: Ctx) -> list[IssueOut]:
    """Every month in content/, newest first, with its sent state and delivery counts."""
    return [_issue_out(ctx, month) for month in ctx.sending.months()]


@router.get("/issues/{month}", response_model=IssueOut, responses=problems(404))
def get_issue(month: str, ctx: Ctx) -> IssueOut:
    """One month: summaries, sent state, delivery counts."""
    if not MONTH_RE.match(month) or month not in ctx.sending.months():
        raise HTTPException(404, "no such month")
    return _issue_out(ctx, month)


@router.post(
    "/issues/{month}/preview", response_model=PreviewOut, responses=problems(400, 404, 413)
)
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


@router.post("/issues/{month}/test", response_model=TestOut, responses=problems(400, 404, 413))
def test_send(month: str, body: TestIn, ctx: Ctx) -> TestOut:
    """Send the issue marked [TEST] to these addresses, outside the ledger."""
    issue = _issue(ctx, month)
    topics = _topics(ctx, body.topics)
    try:
        results = ctx.sending.test_send(issue, body.to, topics)
    except NewsletterError as error:
        raise _bad(error) from None
    _audit(ctx, "test-send", month, ", ".join(body.to))
    return TestOut(results=results)


Lists = Annotated[list[str] | None, Query(max_length=50, json_schema_extra={CHOICES: "lists"})]


@router.get("/issues/{month}/plan", response_model=PlanOut, responses=problems(400, 404))
def plan(month: str, ctx: Ctx, lists: Lists = None) -> PlanOut:
    """What a send would do now: audience size and variants (nothing is written)."""
    issue = _issue(ctx, month)
    try:
        report = ctx.sending.plan(issue, _lists(ctx, lists))
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


@router.post(
    "/issues/{month}/send",
    response_model=ProgressOut,
    status_code=202,
    responses=problems(400, 404, 409, 413),
)
def send(month: str, body: SendIn, ctx: Ctx) -> ProgressOut:
    """Send the issue to its audience in the background (resumes a stopped send).

    409 when the issue cannot be sent now (already being sent, not ready, no transport).
    """
    issue = _issue(ctx, month)
    lists = _lists(ctx, body.lists)
    try:
        ctx.sending.start(issue, lists, actor=API_ACTOR)
    except NewsletterError as error:
        raise HTTPException(409, str(error)) from None
    _audit(ctx, "send", month, "lists: " + ", ".join(lists or [ctx.settings.delivery.default_list]))
    return _progress(ctx, month)


@router.get("/issues/{month}/progress", response_model=ProgressOut, responses=problems(404))
def progress(month: str, ctx: Ctx) -> ProgressOut:
    """Delivery counts by status, read from the ledger."""
    _issue(ctx, month)
    return _progress(ctx, month)


# --- subscribers ---------------------------------------------------------------------------


@router.get("/subscribers", response_model=list[SubscriberOut], responses=problems(400))
def list_subscribers(
    ctx: Ctx,
    status: Status | None = None,
    topic: Annotated[str | None, Query(json_schema_extra={CHOICES: "topics"})] = None,
    list_slug: Annotated[
        str | None, Query(alias="list", json_schema_extra={CHOICES: "lists"})
    ] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Subscribers in id order, filtered like `newsletter subscribers list` ("*": any topic)."""
    chosen = _topics(ctx, [topic]) if topic is not None else None
    _lists(ctx, [list_slug] if list_slug is not None else None)
    with session_factory(ctx.engine)() as session:
        found = api.query_subscribers(
            session,
            status=status,
            list_slug=list_slug,
            topic=next(iter(chosen)) if chosen else None,
            search=search or None,
            limit=limit,
            offset=offset,
        )
        return [_subscriber_out(s) for s in found]


@router.post(
    "/subscribers", response_model=SubscriberOut, status_code=201, responses=problems(400, 409, 413)
)
def add_subscriber(body: SubscriberIn, ctx: Ctx) -> dict[str, Any]:
    """Add one subscriber (consent given elsewhere: active, or pending).

    400 for an address that does not validate, 409 for one already subscribed or suppressed.
    """
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
                lists=_lists(ctx, body.lists),
                status=body.status,
                source="api",
            )
            audit.record(session, API_ACTOR, "add-subscriber", f"subscriber {subscriber.id}")
            return _subscriber_out(subscriber)
    except NewsletterError as error:
        raise _bad(error) from None


def _load(session, subscriber_id: int) -> Subscriber:
    subscriber = session.get(Subscriber, subscriber_id) if 0 < subscriber_id < 2**63 else None
    if subscriber is None:
        raise HTTPException(404, "no such subscriber")
    return subscriber


# `:int`: a path that is not a number is not this resource (PATCH /subscribers/import is 405).
@router.get(
    "/subscribers/{subscriber_id:int}", response_model=SubscriberDetail, responses=problems(404)
)
def get_subscriber(subscriber_id: int, ctx: Ctx) -> dict[str, Any]:
    """One subscriber with their deliveries."""
    with session_factory(ctx.engine)() as session:
        subscriber = _load(session, subscriber_id)
        return {
            **_subscriber_out(subscriber),
            "deliveries": api.subscriber_deliveries(session, subscriber.id),
        }


@router.patch(
    "/subscribers/{subscriber_id:int}",
    response_model=SubscriberOut,
    responses=problems(400, 404, 413),
)
def update_subscriber(subscriber_id: int, body: SubscriberPatch, ctx: Ctx) -> dict[str, Any]:
    """Change status, name, topics or lists."""
    topics = _topics(ctx, body.topics) if body.topics is not None else None
    lists = _lists(ctx, body.lists)
    try:
        with transaction(ctx.engine) as session:
            subscriber = _load(session, subscriber_id)
            if body.name is not None:
                api.set_name(session, subscriber, body.name)
            if body.topics is not None:
                api.set_topics(session, subscriber, topics)
            if lists is not None:
                api.set_lists(session, ctx.settings, subscriber, lists)
            if body.status is not None:
                api.change_status(session, subscriber, body.status)
            fields = [
                k for k in ("name", "topics", "lists", "status") if getattr(body, k) is not None
            ]
            if fields:
                detail = "set " + ", ".join(fields)
                audit.record(
                    session, API_ACTOR, "edit-subscriber", f"subscriber {subscriber_id}", detail
                )
            return _subscriber_out(subscriber)
    except NewsletterError as error:
        raise _bad(error) from None


# The CSV as a JSON string: escaping (\n, \") may make it up to twice as long.
@router.post(
    "/subscribers/import",
    response_model=ImportOut,
    responses=problems(400, 413),
    max_body_size=2 * MAX_CSV_CHARS + 64 * 1024,
)
def import_subscribers(body: ImportIn, ctx: Ctx) -> ImportOut:
    """Import CSV with the same rules and report as `newsletter subscribers import`.

    400 when a row is rejected (and `skip_invalid` is false) or the header is wrong: nothing is
    imported, and `rejected` lists the rows.
    """
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
            if not body.dry_run:
                detail = f"{report.added} added, {report.updated} updated"
                audit.record(session, API_ACTOR, "import", "API request", detail)
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
