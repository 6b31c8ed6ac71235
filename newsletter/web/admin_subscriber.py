"""Admin: one subscriber: their record and deliveries; edit name, topics and lists; change the
status; resend the confirmation link (pending only); forget them.

The address is shown read-only: changing it takes a confirmation mail to the new address
(the reader's address-change service), which this page will offer when that service exists.
Every change goes through the subscriber service and into the audit log, in one transaction.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Depends
from fastapi import Form
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from newsletter.content.choice import TopicChoice
from newsletter.errors import FormProblem
from newsletter.errors import InvalidAddress
from newsletter.errors import NewsletterError
from newsletter.errors import SubscriberError
from newsletter.errors import TransportError
from newsletter.store import admin_edits
from newsletter.store import audit
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction
from newsletter.store.models import PENDING
from newsletter.store.models import SUBSCRIBER_STATUSES
from newsletter.store.models import Subscriber
from newsletter.web.admin import Admin
from newsletter.web.admin import actor
from newsletter.web.admin import require_csrf
from newsletter.web.admin import see_other
from newsletter.web.admin_subscribers import describe_topics
from newsletter.web.admin_subscribers import done_notice
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


def _load(session: Session, subscriber_id: int) -> Subscriber:
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
    form: dict | None = None,
    field_errors: dict[str, list[str]] | None = None,
) -> Response:
    """The subscriber's page; `field_errors` ties a refused form's message to its field."""
    zone = zone_of(ctx.settings)
    with session_factory(ctx.engine)() as session:
        subscriber = _load(session, subscriber_id)
        topics = subscriber.topic_slugs
        stopped = topic_labels(ctx.taxonomy, subscriber.excluded_slugs)
        record = {
            "email": subscriber.email,
            "name": subscriber.name,
            "status": subscriber.status,
            "lists": api.subscribed_lists(subscriber),
            "created_at": human(subscriber.created_at, zone),
            "confirmed_at": human(subscriber.confirmed_at, zone),
            "unsubscribed_at": human(subscriber.unsubscribed_at, zone),
            "consent_source": subscriber.consent_source,
        }
        deliveries = [
            {**row, "sent_at": human(row["sent_at"], zone) if row["sent_at"] else "—"}
            for row in api.subscriber_deliveries(session, subscriber.id)
        ]
        described = describe_topics(ctx, subscriber)
    values = {
        "name": record["name"],
        "topic_mode": "some" if topics is not None else "except" if stopped else "all",
        "topics": sorted(topics or ()),
        "lists": record["lists"],
        **(form or {}),
    }
    return render_page(
        ctx,
        request,
        "admin/subscriber.html",
        status_code=status_code,
        subscriber_id=subscriber_id,
        record=record,
        topics=described,
        stopped_labels=stopped,
        values=values,
        groups=topic_groups(ctx.taxonomy),
        lists=ctx.settings.list_specs(),
        deliveries=deliveries,
        statuses=SUBSCRIBER_STATUSES,
        pending=record["status"] == PENDING,
        zone=ctx.settings.schedule.timezone,
        notice=notice or done_notice(request.query_params),
        error=error,
        field_errors=field_errors or {},
    )


@router.get("/admin/subscribers/{subscriber_id}")
def show(subscriber_id: int, request: Request, ctx: Ctx) -> Response:
    return detail(ctx, request, subscriber_id)


@router.post("/admin/subscribers/{subscriber_id}")
def edit(
    subscriber_id: int,
    request: Request,
    ctx: Ctx,
    name: Text = "",
    topic_mode: Text = "all",
    topics: Choices = [],  # noqa: B006 (FastAPI copies defaults)
    lists: Choices = [],  # noqa: B006
    csrf_token: Text = "",
) -> Response:
    """Name, topics and lists, as the subscriber service's `admin_edit` allows."""
    require_csrf(request, ctx, csrf_token)
    form = {"name": name, "topic_mode": topic_mode, "topics": topics, "lists": lists}
    known_lists = {spec.slug for spec in ctx.settings.list_specs()}
    try:
        unknown = [slug for slug in lists if slug not in known_lists]
        if unknown:
            raise FormProblem(f"Lists: unknown list {unknown[0][:80]!r}.")
        with transaction(ctx.engine) as session:
            subscriber = _load(session, subscriber_id)
            chosen: TopicChoice | frozenset[str] | None
            if topic_mode == "except":  # "all topics except the stopped ones": kept as is
                chosen = subscriber.topic_choice
            else:
                chosen = topic_choice(ctx.taxonomy, topic_mode, topics)
            changed = admin_edits.admin_edit(
                session, ctx.settings, subscriber, name=name, topics=chosen, lists=lists
            )
            if changed:
                audit.record(
                    session,
                    actor(request),
                    "edit-subscriber",
                    f"subscriber {subscriber_id}",
                    "changed " + ", ".join(changed),
                )
    except (FormProblem, SubscriberError) as error:
        return detail(
            ctx,
            request,
            subscriber_id,
            status_code=400,
            error=f"Not saved: {error}",
            form=form,
            field_errors=field_errors(error),
        )
    notice = "Saved: " + ", ".join(changed) + "." if changed else "Nothing to change."
    return detail(ctx, request, subscriber_id, notice=notice)


@router.post("/admin/subscribers/{subscriber_id}/status")
def change_status(
    subscriber_id: int, request: Request, ctx: Ctx, status: Text = "", csrf_token: Text = ""
) -> Response:
    require_csrf(request, ctx, csrf_token)
    if status not in SUBSCRIBER_STATUSES:
        return detail(
            ctx,
            request,
            subscriber_id,
            status_code=400,
            error="Unknown status.",
            field_errors={"status": ["Choose one of the statuses listed."]},
        )
    with transaction(ctx.engine) as session:
        subscriber = _load(session, subscriber_id)
        before = subscriber.status
        api.change_status(session, subscriber, status)
        audit.record(
            session,
            actor(request),
            "edit-subscriber",
            f"subscriber {subscriber_id}",
            f"status {before} → {status}",
        )
    return detail(ctx, request, subscriber_id, notice=f"Status changed to {status}.")


@router.post("/admin/subscribers/{subscriber_id}/address")
def change_address(
    subscriber_id: int, request: Request, ctx: Ctx, new_email: Text = "", csrf_token: Text = ""
) -> Response:
    """Email NEW_EMAIL a link to confirm it (the reader's own address change): the address
    changes only when the link is used. The admin is told when nothing could be sent."""
    require_csrf(request, ctx, csrf_token)
    try:
        wanted, _key = api.normalize_email(new_email)
    except InvalidAddress as error:
        return detail(
            ctx,
            request,
            subscriber_id,
            status_code=400,
            error=f"New address: {error}",
            field_errors={"email": [str(error)]},
        )
    with session_factory(ctx.engine)() as session:
        _load(session, subscriber_id)  # 404 for no such subscriber
    if not ctx.mailer.answer_address_change(subscriber_id, wanted):
        why = "it is the same address, another subscriber's, or suppressed, or the mail failed"
        return detail(
            ctx,
            request,
            subscriber_id,
            status_code=409,
            error=f"Nothing sent: {why}.",
            field_errors={"email": [f"Nothing sent: {why}."]},
        )
    with transaction(ctx.engine) as session:  # logged once the link has gone out
        audit.record(
            session,
            actor(request),
            "edit-subscriber",
            f"subscriber {subscriber_id}",
            "address change asked (a confirmation link to the new address)",
        )
    notice = f"A confirmation link was emailed to {wanted}; the address changes when it is used."
    return detail(ctx, request, subscriber_id, notice=notice)


@router.post("/admin/subscribers/{subscriber_id}/resend")
def resend_confirmation(
    subscriber_id: int, request: Request, ctx: Ctx, csrf_token: Text = ""
) -> Response:
    """A new confirmation link for a pending subscriber (`subscribers resend-confirmation`)."""
    require_csrf(request, ctx, csrf_token)
    with session_factory(ctx.engine)() as session:
        address = _load(session, subscriber_id).email
    try:
        ctx.mailer.send_confirmation(address)
    except SubscriberError as error:
        return detail(ctx, request, subscriber_id, status_code=409, error=f"Not sent: {error}.")
    except (TransportError, NewsletterError) as error:
        return detail(
            ctx, request, subscriber_id, status_code=502, error=f"Not sent: {error}. Try again."
        )
    with transaction(ctx.engine) as session:
        audit.record(session, actor(request), "resend-confirmation", f"subscriber {subscriber_id}")
    return detail(ctx, request, subscriber_id, notice="A new confirmation link was emailed.")


@router.post("/admin/subscribers/{subscriber_id}/forget")
def forget(
    subscriber_id: int, request: Request, ctx: Ctx, sure: Text = "", csrf_token: Text = ""
) -> Response:
    """Forget them, as "forget me" does: only a hash of the address is kept. The audit log
    names the subscriber id, never the address."""
    require_csrf(request, ctx, csrf_token)
    if sure != "yes":
        return detail(
            ctx,
            request,
            subscriber_id,
            status_code=400,
            error="Not forgotten: tick “Yes, forget this subscriber” first.",
            field_errors={"sure": ["Tick this box to forget the subscriber."]},
        )
    with transaction(ctx.engine) as session:
        api.forget_subscriber(session, _load(session, subscriber_id))
        audit.record(session, actor(request), "forget", f"subscriber {subscriber_id}")
    return see_other("/admin/subscribers?done=forgot")
