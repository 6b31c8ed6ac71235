"""Subscribe (double opt-in), confirm, and "send me a fresh link".

The subscribe and fresh-link forms answer the same page whatever the address: known, unknown,
active, pending, unsubscribed or suppressed. The request does the same work for every address
(the form's checks and the rate limits) and hands the rest, the lookup in the database and the
email, to the outbox thread (`sending.outbox`): the request adds the same one row to the
outbox for every address and commits it before answering, so neither the page nor the time it
takes tells what we know about the address, and a crash loses no request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import BackgroundTasks
from fastapi import Depends
from fastapi import Form
from fastapi import Request
from fastapi.responses import Response

from newsletter.errors import FormProblem
from newsletter.errors import InvalidAddress
from newsletter.store import registrar
from newsletter.store import subscribers as api
from newsletter.store.engine import transaction
from newsletter.store.models import PENDING
from newsletter.store.models import Subscriber
from newsletter.tokens import PREFERENCES
from newsletter.web.app import WebContext
from newsletter.web.app import context
from newsletter.web.app import in_thread
from newsletter.web.forms import list_choice
from newsletter.web.forms import name_choice
from newsletter.web.forms import topic_choice
from newsletter.web.mail import LINK_REQUEST
from newsletter.web.mail import WELCOME
from newsletter.web.mail import Person
from newsletter.web.mail import person_of
from newsletter.web.pages import render_page
from newsletter.web.pages import topic_groups
from newsletter.web.pages import topic_labels
from newsletter.web.security import client_ip

router = APIRouter()
Ctx = Annotated[WebContext, Depends(context)]
Text = Annotated[str, Form(max_length=1000)]
Choices = Annotated[list[str], Form()]


def person(subscriber: Subscriber) -> Person:
    return person_of(subscriber)


def subscribe_form(
    ctx: WebContext,
    request: Request,
    *,
    status_code: int = 200,
    error: str = "",
    values: dict | None = None,
    field_errors: dict[str, str] | None = None,
) -> Response:
    values = values or {}
    lists = ctx.public_lists()
    return render_page(
        ctx,
        request,
        "subscribe.html",
        status_code=status_code,
        error=error,
        field_errors=field_errors or {},
        groups=topic_groups(ctx.taxonomy),
        lists=lists if len(lists) > 1 else [],
        email=values.get("email", ""),
        name=values.get("name", ""),
        topic_mode=values.get("topic_mode", "all"),
        chosen_topics=set(values.get("topics", ())),
        chosen_lists=set(values.get("lists", ())) or {ctx.settings.delivery.default_list},
    )


def too_many(ctx: WebContext, request: Request, retry_after: int) -> Response:
    minutes = max(1, retry_after // 60)
    return render_page(
        ctx,
        request,
        "message.html",
        status_code=429,
        headers={"Retry-After": str(retry_after)},
        title="Too many requests",
        message=f"Please wait about {minutes} minute{'s' if minutes != 1 else ''} and try again.",
    )


@router.get("/")
@router.get("/subscribe")
def show_subscribe(request: Request, ctx: Ctx) -> Response:
    # Choices may arrive in the query string (the archive's static form): show them filled in.
    query = request.query_params
    known = {term.slug for term in ctx.taxonomy.topics}
    values = {
        "email": query.get("email", "")[:320],
        "name": query.get("name", "")[:200],
        "topic_mode": "some" if query.get("topic_mode") == "some" else "all",
        "topics": [slug for slug in query.getlist("topics") if slug in known],
    }
    return subscribe_form(ctx, request, values=values)


@router.post("/subscribe")
async def subscribe(
    request: Request,
    ctx: Ctx,
    email: Text = "",
    name: Text = "",
    topic_mode: Text = "all",
    topics: Choices = [],  # noqa: B006 (FastAPI copies defaults)
    lists: Choices = [],  # noqa: B006
    website: Text = "",  # a field people do not see: bots fill it in
    csrf_token: Text = "",
) -> Response:
    return await in_thread(
        _subscribe, request, ctx, email, name, topic_mode, topics, lists, website, csrf_token
    )


def _subscribe(
    request: Request,
    ctx: WebContext,
    email: str,
    name: str,
    topic_mode: str,
    topics: list[str],
    lists: list[str],
    website: str,
    csrf_token: str,
) -> Response:
    values = {
        "email": email,
        "name": name,
        "topic_mode": topic_mode,
        "topics": topics,
        "lists": lists,
    }
    if not ctx.csrf.valid(request, csrf_token):
        return subscribe_form(
            ctx,
            request,
            status_code=403,
            error="This form had expired (or your browser blocks cookies). "
            "Please check your choices and send it again.",
            values=values,
        )
    ip = client_ip(request)
    if not ctx.limits.subscribe_ip.hit(ip):
        return too_many(ctx, request, ctx.limits.subscribe_ip.retry_after(ip))
    # Every field is checked, so each problem is shown beside its own field at once.
    problems: dict[str, str] = {}
    address = key = ""
    chosen_topics: frozenset[str] | None = None
    chosen_lists: list[str] = []
    try:
        address, key = api.normalize_email(email)
    except InvalidAddress:
        problems["email"] = "Please check your email address: it does not look valid."
    try:
        name = name_choice(name)
    except FormProblem as problem:
        problems["name"] = str(problem)
    try:
        chosen_topics = topic_choice(ctx.taxonomy, topic_mode, topics)
    except FormProblem as problem:
        problems["topics"] = str(problem)
    try:
        chosen_lists = list_choice(ctx.public_lists(), ctx.settings.delivery.default_list, lists)
    except FormProblem as problem:
        problems["lists"] = str(problem)
    if problems:
        summary = "Please correct the " + (
            "field marked below." if len(problems) == 1 else "fields marked below."
        )
        if "lists" in problems and len(ctx.public_lists()) <= 1:
            summary = problems["lists"]  # no list field on the page to mark
        return subscribe_form(
            ctx,
            request,
            status_code=400,
            error=summary,
            values=values,
            field_errors=problems,
        )
    if not website and ctx.limits.subscribe_address.hit(key):
        # Everything that depends on the address happens after the answer (see the docstring):
        # the request is only kept, committed before the page goes out.
        ctx.mailer.queue_subscribe(
            address, name=name, topics=chosen_topics, lists=chosen_lists, source="web", ip=ip
        )
    return render_page(ctx, request, "check_inbox.html", email=address)


@router.get("/confirm/{token}")
def show_confirm(token: str, request: Request, ctx: Ctx) -> Response:
    with transaction(ctx.engine) as session:
        subscriber, choices = registrar.read_confirmation(session, ctx.signer, token)
        if api.is_active(subscriber):
            return confirmed_page(ctx, request, subscriber, already=True)
        # What confirming gives them: the choices the link carries, else those on record;
        # someone coming back with "all topics" keeps the topics they had stopped.
        topics = subscriber.topic_slugs if choices is None else choices.topics
        keeps_stopped = topics is None and (choices is None or subscriber.status != PENDING)
        return render_page(
            ctx,
            request,
            "confirm.html",
            email=subscriber.email,
            token=token,
            all_topics=topics is None,
            topic_labels=topic_labels(ctx.taxonomy, topics),
            stopped_labels=topic_labels(ctx.taxonomy, subscriber.excluded_slugs)
            if keeps_stopped
            else [],
        )


def confirmed_page(
    ctx: WebContext,
    request: Request,
    subscriber: Subscriber,
    *,
    already: bool,
    welcome: bool = False,
) -> Response:
    prefs = ctx.signer.make(PREFERENCES, subscriber.id, subscriber.email)
    return render_page(
        ctx,
        request,
        "confirmed.html",
        already=already,
        email=subscriber.email,
        preferences_url=f"/preferences/{prefs}",
        welcome=welcome,
    )


@router.post("/confirm/{token}")
def confirm(token: str, request: Request, ctx: Ctx, background: BackgroundTasks) -> Response:
    """Activate a subscription. The signed link is the authorization (no cookie needed)."""
    with transaction(ctx.engine) as session:
        # The welcome issue is for a first subscription, not for someone coming back.
        before, _ = registrar.read_confirmation(session, ctx.signer, token)
        first_time = before.confirmed_at is None
        subscriber, activated = registrar.confirm_subscription(
            session,
            ctx.settings,
            ctx.taxonomy,
            ctx.signer,
            token,
            ip=client_ip(request),
            source="web",
        )
        if not activated:
            return confirmed_page(ctx, request, subscriber, already=True)
        welcome = ctx.settings.web.welcome_latest and first_time
        if welcome:  # queued with the confirmation itself, sent once it is committed
            ctx.mailer.queue(WELCOME, {"subscriber_id": subscriber.id}, session=session)
            background.add_task(ctx.mailer.wake)
        return confirmed_page(ctx, request, subscriber, already=False, welcome=welcome)


@router.get("/link")
def show_link_form(request: Request, ctx: Ctx) -> Response:
    return render_page(ctx, request, "link_problem.html", problem="", kind="request")


@router.post("/link")
def request_link(
    request: Request,
    ctx: Ctx,
    background: BackgroundTasks,
    email: Text = "",
    csrf_token: Text = "",
) -> Response:
    """Email a fresh preferences link (or a new confirmation link to a pending address)."""
    if not ctx.csrf.valid(request, csrf_token):
        return render_page(
            ctx,
            request,
            "link_problem.html",
            status_code=403,
            problem="This form had expired. Please send it again.",
            kind="request",
        )
    ip = client_ip(request)
    if not ctx.limits.link_ip.hit(ip):
        return too_many(ctx, request, ctx.limits.link_ip.retry_after(ip))
    try:
        address, key = api.normalize_email(email)
    except InvalidAddress:
        return render_page(
            ctx,
            request,
            "link_problem.html",
            status_code=400,
            problem="Please check your email address: it does not look valid.",
            kind="request",
        )
    if ctx.limits.subscribe_address.hit(key):
        ctx.mailer.queue(LINK_REQUEST, {"email": address})  # looked up after the answer
    return render_page(ctx, request, "check_inbox.html", email=address, fresh_link=True)
