"""Admin: the subscribers page (search and filters), one subscriber, add, change status, import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Depends
from fastapi import File
from fastapi import Form
from fastapi import Request
from fastapi import UploadFile
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from newsletter.errors import FormProblem
from newsletter.errors import ImportFileError
from newsletter.errors import NewsletterError
from newsletter.errors import RowsRejected
from newsletter.store import import_export
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction
from newsletter.store.models import ACTIVE
from newsletter.store.models import SUBSCRIBER_STATUSES
from newsletter.store.models import Subscriber
from newsletter.web.admin import Admin
from newsletter.web.admin import require_csrf
from newsletter.web.admin import see_other
from newsletter.web.app import WebContext
from newsletter.web.app import get_ctx
from newsletter.web.forms import topic_choice
from newsletter.web.pages import render_page
from newsletter.web.pages import topic_groups
from newsletter.web.pages import topic_labels

router = APIRouter(dependencies=[Admin])
Ctx = Annotated[WebContext, Depends(get_ctx)]
Text = Annotated[str, Form(max_length=5000)]
Choices = Annotated[list[str], Form()]
PAGE_SIZE = 50
MAX_IMPORT_BYTES = 20 * 1024 * 1024


def _describe_topics(ctx: WebContext, subscriber: Subscriber) -> str:
    topics = subscriber.topic_slugs
    if topics is None:
        stopped = topic_labels(ctx.taxonomy, subscriber.excluded_slugs)
        return "all topics" + (" except " + ", ".join(stopped) if stopped else "")
    return ", ".join(topic_labels(ctx.taxonomy, topics)) or "none"


def listing(
    ctx: WebContext,
    request: Request,
    *,
    status_code: int = 200,
    notice: str = "",
    error: str = "",
    form: dict | None = None,
) -> Response:
    params = request.query_params
    status = params.get("status") or None
    topic = params.get("topic") or None
    list_slug = params.get("list") or None
    search = (params.get("q") or "")[:200]
    try:
        page = max(1, min(int(params.get("page", "1")), 100_000))
    except ValueError:
        page = 1
    problems = []
    if status is not None and status not in SUBSCRIBER_STATUSES:
        problems.append(f"unknown status {status[:40]!r}")
        status = None
    term = ctx.taxonomy.topics.find(topic[:200]) if topic else None
    if topic and term is None:
        problems.append(f"unknown topic {topic[:80]!r}")
    known_lists = {spec.slug for spec in ctx.settings.list_specs()}
    if list_slug is not None and list_slug not in known_lists:
        problems.append(f"unknown list {list_slug[:80]!r}")
        list_slug = None
    with session_factory(ctx.engine)() as session:
        found = api.query_subscribers(
            session,
            status=status,
            list_slug=list_slug,
            topic=term.slug if term else None,
            search=search or None,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
        )
        rows = [
            {
                "id": s.id,
                "email": s.email,
                "name": s.name,
                "status": s.status,
                "topics": _describe_topics(ctx, s),
                "lists": ", ".join(api.subscribed_lists(s)),
                "created": s.created_at.date().isoformat(),
            }
            for s in found[:PAGE_SIZE]
        ]
    return render_page(
        ctx,
        request,
        "admin/subscribers.html",
        status_code=status_code,
        rows=rows,
        more=len(found) > PAGE_SIZE,
        page=page,
        filters={
            "q": search,
            "status": status or "",
            "topic": term.slug if term else "",
            "list": list_slug or "",
        },
        statuses=SUBSCRIBER_STATUSES,
        topics=list(ctx.taxonomy.topics),
        lists=ctx.settings.list_specs(),
        groups=topic_groups(ctx.taxonomy),
        notice=notice,
        error=error or "; ".join(problems),
        form=form or {},
    )


@router.get("/admin/subscribers")
def subscribers(request: Request, ctx: Ctx) -> Response:
    return listing(ctx, request)


@router.post("/admin/subscribers")
def add(
    request: Request,
    ctx: Ctx,
    email: Text = "",
    name: Text = "",
    topic_mode: Text = "all",
    topics: Choices = [],  # noqa: B006 (FastAPI copies defaults)
    lists: Choices = [],  # noqa: B006
    status: Text = ACTIVE,
    csrf_token: Text = "",
) -> Response:
    require_csrf(request, ctx, csrf_token)
    form = {"email": email, "name": name}
    try:
        chosen = topic_choice(ctx.taxonomy, topic_mode, topics)
        if status not in api.NEW_STATUSES:
            raise FormProblem("A new subscriber is active or pending.")
        with transaction(ctx.engine) as session:
            subscriber = api.add_subscriber(
                session,
                ctx.settings,
                ctx.taxonomy,
                email,
                name=name,
                topics=chosen,
                lists=lists or None,
                status=status,
                source="admin",
            )
            new_id = subscriber.id
    except (FormProblem, NewsletterError) as error:
        return listing(ctx, request, status_code=400, error=f"Not added: {error}", form=form)
    return see_other(f"/admin/subscribers/{new_id}")


def _load(session, subscriber_id: int) -> Subscriber:
    # Ids are positive 64-bit integers: a larger number is no subscriber, not an OverflowError.
    subscriber = session.get(Subscriber, subscriber_id) if 0 < subscriber_id < 2**63 else None
    if subscriber is None:
        raise StarletteHTTPException(404)
    return subscriber


def detail(
    ctx: WebContext,
    request: Request,
    subscriber_id: int,
    *,
    status_code: int = 200,
    notice: str = "",
    error: str = "",
) -> Response:
    with session_factory(ctx.engine)() as session:
        subscriber = _load(session, subscriber_id)
        record = import_export.subscriber_to_dict(subscriber)
        deliveries = api.subscriber_deliveries(session, subscriber.id)
        topics = _describe_topics(ctx, subscriber)
    return render_page(
        ctx,
        request,
        "admin/subscriber.html",
        status_code=status_code,
        subscriber_id=subscriber_id,
        record=record,
        topics=topics,
        deliveries=deliveries,
        statuses=SUBSCRIBER_STATUSES,
        notice=notice,
        error=error,
    )


@router.get("/admin/subscribers/{subscriber_id}")
def show(subscriber_id: int, request: Request, ctx: Ctx) -> Response:
    return detail(ctx, request, subscriber_id)


@router.post("/admin/subscribers/{subscriber_id}/status")
def change_status(
    subscriber_id: int, request: Request, ctx: Ctx, status: Text = "", csrf_token: Text = ""
) -> Response:
    require_csrf(request, ctx, csrf_token)
    if status not in SUBSCRIBER_STATUSES:
        return detail(ctx, request, subscriber_id, status_code=400, error="Unknown status.")
    with transaction(ctx.engine) as session:
        api.change_status(session, _load(session, subscriber_id), status)
    return detail(ctx, request, subscriber_id, notice=f"Status changed to {status}.")


@router.get("/admin/import")
def show_import(request: Request, ctx: Ctx) -> Response:
    return render_page(ctx, request, "admin/import.html", report=None, rejected=[])


# The file and the form's other fields (multipart keeps the file on disk past 1 MB).
@router.post("/admin/import", max_body_size=MAX_IMPORT_BYTES + 64 * 1024)
def import_csv(
    request: Request,
    ctx: Ctx,
    file: Annotated[UploadFile | None, File()] = None,
    skip_invalid: Text = "",
    update_existing: Text = "",
    dry_run: Text = "",
    csrf_token: Text = "",
) -> Response:
    """The same rules and report as `newsletter subscribers import`."""
    require_csrf(request, ctx, csrf_token)
    options = {
        "skip_invalid": bool(skip_invalid),
        "update_existing": bool(update_existing),
        "dry_run": bool(dry_run),
    }

    def answer(status_code: int = 200, **values) -> Response:
        return render_page(
            ctx,
            request,
            "admin/import.html",
            status_code=status_code,
            options=options,
            **{"report": None, "rejected": [], **values},
        )

    if file is None or not file.filename:
        return answer(400, error="Choose a CSV file to import.")
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        return answer(413, error="The file is larger than 20 MB: split it or use the CLI.")
    try:
        with transaction(ctx.engine) as session:
            report = import_export.import_csv(
                session,
                ctx.settings,
                ctx.taxonomy,
                data,
                source="admin-import",
                **options,
            )
    except ImportFileError as error:
        message = str(error)
        if isinstance(error, RowsRejected):
            message += "; nothing was imported (tick “import the valid rows” to skip them)"
        return answer(400, error=message, rejected=error.rejected)
    return answer(report=report, rejected=report.rejected)
