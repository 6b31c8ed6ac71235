"""Admin: the subscribers page (search, filters, sorting, paging, a total), CSV export of the
selection, a bulk change of the selection (with a confirm step), add, and import.

One subscriber's page (edit, status, resend the confirmation, forget) is `admin_subscriber`.
Every change goes through the subscriber service and is written to the audit log with the
admin's name, in the same transaction.
"""

from __future__ import annotations

import dataclasses
import io
import urllib.parse
from typing import Annotated
from typing import Any

from fastapi import APIRouter
from fastapi import Depends
from fastapi import File
from fastapi import Form
from fastapi import Request
from fastapi import UploadFile
from fastapi.responses import Response
from starlette.datastructures import QueryParams

from newsletter.errors import FormProblem
from newsletter.errors import ImportFileError
from newsletter.errors import NewsletterError
from newsletter.errors import RowsRejected
from newsletter.errors import TransportError
from newsletter.store import admin_edits
from newsletter.store import audit
from newsletter.store import import_export
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction
from newsletter.store.models import ACTIVE
from newsletter.store.models import PENDING
from newsletter.store.models import SUBSCRIBER_STATUSES
from newsletter.store.models import Subscriber
from newsletter.web.admin import Admin
from newsletter.web.admin import actor
from newsletter.web.admin import require_csrf
from newsletter.web.admin import see_other
from newsletter.web.app import WebContext
from newsletter.web.app import context
from newsletter.web.forms import field_errors
from newsletter.web.forms import topic_choice
from newsletter.web.pages import render_page
from newsletter.web.pages import topic_groups
from newsletter.web.pages import topic_labels
from newsletter.web.timefmt import human
from newsletter.web.timefmt import zone_of

router = APIRouter(dependencies=[Admin])
Ctx = Annotated[WebContext, Depends(context)]
Text = Annotated[str, Form(max_length=5000)]
Choices = Annotated[list[str], Form()]
PAGE_SIZE = 50
MAX_IMPORT_BYTES = 20 * 1024 * 1024
SORT_LABELS = {
    "id": "Oldest first",
    "email": "Address",
    "name": "Name",
    "status": "Status",
    "created": "Date added",
}


def describe_topics(ctx: WebContext, subscriber: Subscriber) -> str:
    """Their topics in words ("all topics except Grief")."""
    topics = subscriber.topic_slugs
    if topics is None:
        stopped = topic_labels(ctx.taxonomy, subscriber.excluded_slugs)
        return "all topics" + (" except " + ", ".join(stopped) if stopped else "")
    return ", ".join(topic_labels(ctx.taxonomy, topics)) or "none"


@dataclasses.dataclass
class Selection:
    """The filters of the subscribers page (from the query string or a form's hidden fields)."""

    q: str = ""
    status: str = ""
    topic: str = ""
    list: str = ""
    sort: str = "id"
    order: str = "asc"

    def where(self) -> dict[str, Any]:
        """The keyword arguments of `query_subscribers` / `count_matching`."""
        return {
            "status": self.status or None,
            "list_slug": self.list or None,
            "topic": self.topic or None,
            "search": self.q or None,
        }

    def query(self, **changes: str | int) -> str:
        """This selection as a query string, with some values changed (e.g. page=2)."""
        values: dict[str, str | int] = {k: v for k, v in dataclasses.asdict(self).items() if v}
        values.update(changes)
        return urllib.parse.urlencode(values)

    @property
    def described(self) -> str:
        parts = [f"{name} {value!r}" for name, value in self.where().items() if value]
        return ", ".join(parts) or "everyone"


def read_selection(ctx: WebContext, values) -> tuple[Selection, list[str]]:
    """The selection in `values` (query parameters or form fields) and what was wrong in it:
    an unknown status, topic, list or sort is named and left out."""
    problems = []
    status = (values.get("status") or "")[:40]
    if status and status not in SUBSCRIBER_STATUSES:
        problems.append(f"unknown status {status!r}")
        status = ""
    topic = (values.get("topic") or "")[:200]
    term = ctx.taxonomy.topics.find(topic) if topic else None
    if topic and term is None:
        problems.append(f"unknown topic {topic[:80]!r}")
    list_slug = (values.get("list") or "")[:80]
    known_lists = {spec.slug for spec in ctx.settings.list_specs()}
    if list_slug and list_slug not in known_lists:
        problems.append(f"unknown list {list_slug!r}")
        list_slug = ""
    sort = (values.get("sort") or "id")[:40]
    if sort not in api.SORTS:
        problems.append(f"unknown sort {sort!r}")
        sort = "id"
    order = "desc" if values.get("order") == "desc" else "asc"
    selection = Selection(
        q=(values.get("q") or "")[:200],
        status=status,
        topic=term.slug if term else "",
        list=list_slug,
        sort=sort,
        order=order,
    )
    return selection, problems


def _page_number(params: QueryParams) -> int:
    try:
        return max(1, min(int(params.get("page", "1")), 100_000))
    except ValueError:
        return 1


def _count(params, key: str) -> int:
    value = params.get(key, "")
    return int(value) if value.isdigit() and len(value) < 10 else 0


def done_notice(params) -> str:
    """The notice after a redirect (`?done=…`): fixed sentences, so a link cannot put words
    on an admin page."""
    done = params.get("done", "")
    if done == "bulk":
        changed, unchanged = _count(params, "changed"), _count(params, "unchanged")
        text = f"Changed {changed} subscriber(s)"
        return text + (f"; {unchanged} already so, or not possible." if unchanged else ".")
    return NOTICES.get(done, "")


NOTICES = {
    "added-mailed": "Subscriber added; a confirmation link was emailed to them.",
    "added-unmailed": "Subscriber added, but the confirmation link could not be sent: "
    "use “Resend the confirmation” below.",
    "forgot": "The subscriber was forgotten: only a hash of the address is kept.",
}


def listing(
    ctx: WebContext,
    request: Request,
    *,
    status_code: int = 200,
    notice: str = "",
    error: str = "",
    form: dict | None = None,
    field_errors: dict[str, list[str]] | None = None,
) -> Response:
    """The subscribers page; `field_errors` ties a refused form's message to its field."""
    selection, problems = read_selection(ctx, request.query_params)
    page = _page_number(request.query_params)
    zone = zone_of(ctx.settings)
    with session_factory(ctx.engine)() as session:
        total = api.count_matching(session, **selection.where())
        found = api.query_subscribers(
            session,
            **selection.where(),
            sort=selection.sort,
            descending=selection.order == "desc",
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
        rows = [
            {
                "id": s.id,
                "email": s.email,
                "name": s.name,
                "status": s.status,
                "topics": describe_topics(ctx, s),
                "lists": ", ".join(api.subscribed_lists(s)),
                "created": human(s.created_at, zone, time=False),
                "created_iso": s.created_at.isoformat(),
            }
            for s in found
        ]
    pages = max(1, -(-total // PAGE_SIZE))
    return render_page(
        ctx,
        request,
        "admin/subscribers.html",
        status_code=status_code,
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        first=(page - 1) * PAGE_SIZE + 1,
        more=page < pages,
        selection=selection,
        sorts=SORT_LABELS,
        statuses=SUBSCRIBER_STATUSES,
        topics=list(ctx.taxonomy.topics),
        lists=ctx.settings.list_specs(),
        groups=topic_groups(ctx.taxonomy),
        notice=notice or done_notice(request.query_params),
        error=error or "; ".join(problems),
        form=form or {},
        field_errors=field_errors or {},
    )


@router.get("/admin/subscribers")
def subscribers(request: Request, ctx: Ctx) -> Response:
    return listing(ctx, request)


@router.get("/admin/subscribers/export.csv")
def export(request: Request, ctx: Ctx) -> Response:
    """The selection (all of it, not one page) as the CSV `subscribers import` reads."""
    selection, problems = read_selection(ctx, request.query_params)
    if problems:
        return listing(ctx, request, status_code=400, error="Not exported: " + "; ".join(problems))
    stream = io.StringIO()
    with transaction(ctx.engine) as session:
        found = api.query_subscribers(
            session,
            **selection.where(),
            sort=selection.sort,
            descending=selection.order == "desc",
        )
        count = import_export.write_csv(stream, found)
        audit.record(
            session, actor(request), "export", "subscribers", f"{count} of {selection.described}"
        )
    return Response(
        stream.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="subscribers.csv"',
            "Cache-Control": "no-store",
        },
    )


BULK_LABELS = {
    "status": "set the status to",
    "add-list": "add to the list",
    "remove-list": "remove from the list",
}


@router.post("/admin/subscribers/bulk")
def bulk(
    request: Request,
    ctx: Ctx,
    q: Text = "",
    status: Text = "",
    topic: Text = "",
    list_slug: Annotated[str, Form(alias="list", max_length=200)] = "",
    action: Text = "",
    value: Text = "",
    confirm: Text = "",
    csrf_token: Text = "",
) -> Response:
    """A change to every subscriber of the selection: first a page saying how many it would
    change (`confirm` is that count), then the change, unless the selection has changed size
    since (then the count is shown again)."""
    require_csrf(request, ctx, csrf_token)
    fields = {"q": q, "status": status, "topic": topic, "list": list_slug}
    selection, problems = read_selection(ctx, fields)
    action, value = action[:40], value[:80]
    # The two bulk forms: set a status (field bulk-status), add to or remove from a list.
    field = "bulk-status" if action == "status" else "bulk-list"
    wrong: dict[str, list[str]] = {}
    if action not in BULK_LABELS:
        wrong[field] = ["choose what to change"]
    elif action == "status" and value not in SUBSCRIBER_STATUSES:
        wrong[field] = [f"unknown status {value!r}"]
    elif action != "status" and value not in {spec.slug for spec in ctx.settings.list_specs()}:
        wrong[field] = [f"unknown list {value!r}"]
    problems += [message for messages in wrong.values() for message in messages]
    if problems:
        return listing(
            ctx,
            request,
            status_code=400,
            error="Nothing changed: " + "; ".join(problems),
            field_errors=wrong,
        )
    with session_factory(ctx.engine)() as session:
        count = api.count_matching(session, **selection.where())
    expected = confirm[:20]
    if expected != str(count):
        return render_page(
            ctx,
            request,
            "admin/bulk.html",
            status_code=200 if not expected else 409,
            selection=selection,
            action=action,
            value=value,
            label=BULK_LABELS[action],
            count=count,
            changed_since=bool(expected),
        )
    with transaction(ctx.engine) as session:
        found = api.query_subscribers(session, **selection.where())
        changed, unchanged = admin_edits.bulk_change(session, ctx.settings, found, action, value)
        audit.record(
            session,
            actor(request),
            "bulk-edit",
            "subscribers",
            f"{BULK_LABELS[action]} {value} for {selection.described}: "
            f"{changed} changed, {unchanged} already so or not possible",
        )
    return see_other(
        "/admin/subscribers?" + selection.query(done="bulk", changed=changed, unchanged=unchanged)
    )


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
    """Add a subscriber; a pending one is emailed a confirmation link at once."""
    require_csrf(request, ctx, csrf_token)
    form = {"email": email, "name": name}
    try:
        chosen = topic_choice(ctx.taxonomy, topic_mode, topics)
        if status not in api.NEW_STATUSES:
            raise FormProblem("A new subscriber is active or pending.", "status")
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
            new_id, address = subscriber.id, subscriber.email
            audit.record(session, actor(request), "add-subscriber", f"subscriber {new_id}", status)
    except (FormProblem, NewsletterError) as error:
        return listing(
            ctx,
            request,
            status_code=400,
            error=f"Not added: {error}",
            form=form,
            field_errors=field_errors(error, prefix="new-"),
        )
    if status != PENDING:
        return see_other(f"/admin/subscribers/{new_id}")
    try:
        ctx.mailer.send_confirmation(address)
        done = "added-mailed"
    except (TransportError, NewsletterError):
        done = "added-unmailed"
    return see_other(f"/admin/subscribers/{new_id}?done={done}")


@router.get("/admin/import")
def show_import(request: Request, ctx: Ctx) -> Response:
    return render_page(ctx, request, "admin/import.html", report=None, rejected=[], field_errors={})


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
            **{"report": None, "rejected": [], "field_errors": {}, **values},
        )

    if file is None or not file.filename:
        message = "Choose a CSV file to import."
        return answer(400, error=message, field_errors={"file": [message]})
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        message = "The file is larger than 20 MB: split it or use the CLI."
        return answer(413, error=message, field_errors={"file": [message]})
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
            if not report.dry_run:
                audit.record(
                    session,
                    actor(request),
                    "import",
                    file.filename[:200],
                    f"{report.added} added, {report.updated} updated, "
                    f"{len(report.rejected)} rejected",
                )
    except ImportFileError as error:
        message = str(error)
        if isinstance(error, RowsRejected):
            message += "; nothing was imported (tick “import the valid rows” to skip them)"
        wrong = {"file": [message]}
        return answer(400, error=message, rejected=error.rejected, field_errors=wrong)
    return answer(report=report, rejected=report.rejected)
