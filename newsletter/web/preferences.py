"""The preference center: `/preferences/{token}`, the link in every email; and the privacy
pages: `/privacy/{token}`, download my data and forget me.

On the preferences link: change topics (or all topics), lists and name; stop one topic
(`?drop=<slug>`, the "stop sending me" links in the digest); unsubscribe from everything or
come back. That link never expires and travels in every digest, so a forwarded digest carries
it: it cannot read or delete the subscriber's data. For those it asks for a fresh link, emailed
to the address on record and working for `[web] privacy_link_max_age` seconds (an hour by
default), which opens the privacy pages. The signed token names the subscriber; forms also
carry a CSRF token.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter
from fastapi import BackgroundTasks
from fastapi import Depends
from fastapi import Form
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from sqlalchemy.orm import object_session

from newsletter.content.choice import TopicChoice
from newsletter.errors import FormProblem
from newsletter.errors import SubscriberError
from newsletter.message.transactional import duration_text
from newsletter.store import import_export
from newsletter.store import registrar
from newsletter.store import responses
from newsletter.store import subscribers as api
from newsletter.store.engine import transaction
from newsletter.store.feedback import REASON_LABELS
from newsletter.store.feedback import why_answered
from newsletter.store.models import Subscriber
from newsletter.store.reader_view import ReaderView
from newsletter.store.reader_view import reader_for_token
from newsletter.store.registrar import subscriber_for_token
from newsletter.tokens import PREFERENCES
from newsletter.tokens import PRIVACY
from newsletter.web import reader
from newsletter.web.app import WebContext
from newsletter.web.app import context
from newsletter.web.app import in_thread
from newsletter.web.forms import list_choice
from newsletter.web.forms import name_choice
from newsletter.web.forms import topic_choice
from newsletter.web.mail import PRIVACY_LINK
from newsletter.web.pages import render_page
from newsletter.web.pages import topic_groups
from newsletter.web.pages import topic_labels

router = APIRouter()
Ctx = Annotated[WebContext, Depends(context)]
Text = Annotated[str, Form(max_length=1000)]
Choices = Annotated[list[str], Form()]


def _subscribed_lists(subscriber: Subscriber | ReaderView) -> list[str]:
    if isinstance(subscriber, ReaderView):
        return list(subscriber.lists)
    return api.subscribed_lists(subscriber)


def _lists_for(ctx: WebContext, subscriber: Subscriber | ReaderView) -> list:
    """Public lists plus any list they are on (a private list they were added to)."""
    mine = set(_subscribed_lists(subscriber))
    return [spec for spec in ctx.settings.list_specs() if spec.public or spec.slug in mine]


def page(
    ctx: WebContext,
    request: Request,
    subscriber: Subscriber | ReaderView,
    token: str,
    *,
    status_code: int = 200,
    notice: str = "",
    error: str = "",
    drop=None,
    values: dict | None = None,
    field_errors: dict[str, str] | None = None,
) -> Response:
    topics = subscriber.topic_slugs
    # The topics an all-topics reader stopped (those still in the taxonomy).
    stopped = topic_labels(ctx.taxonomy, subscriber.excluded_slugs)
    mode = "some" if topics is not None else "except" if stopped else "all"
    if topics is None and stopped:  # ticked: what they receive, should they switch to "some"
        topics = subscriber.topic_choice.effective(t.slug for t in ctx.taxonomy.topics)
    lists = _lists_for(ctx, subscriber)
    values = values or {}
    return render_page(
        ctx,
        request,
        "preferences.html",
        status_code=status_code,
        token=token,
        subscriber=subscriber,
        notice=notice,
        error=error,
        drop=drop,
        groups=topic_groups(ctx.taxonomy),
        topic_mode=values.get("topic_mode", mode),
        chosen_topics=set(values.get("topics", topics or ())),
        chosen_labels=topic_labels(ctx.taxonomy, subscriber.topic_slugs),
        stopped_labels=stopped,
        name=values.get("name", subscriber.name),
        lists=lists if len(lists) > 1 else [],
        chosen_lists=set(values.get("lists", _subscribed_lists(subscriber))),
        receiving=api.is_active(subscriber),
        field_errors=field_errors or {},
        new_email=values.get("new_email", ""),
        **reader.reader_values(subscriber),
    )


def _load(ctx: WebContext, session: Session, token: str) -> Subscriber:
    return subscriber_for_token(session, ctx.signer, PREFERENCES, token)


@router.get("/preferences/{token}")
async def show(token: str, request: Request, ctx: Ctx, drop: str | None = None) -> Response:
    return await in_thread(_show, token, request, ctx, drop)


def _show(token: str, request: Request, ctx: WebContext, drop: str | None) -> Response:
    # Only shown: read in one Core statement, no ORM objects (see `store.reader_view`).
    with ctx.engine.connect() as connection:
        subscriber = reader_for_token(connection, ctx.signer, PREFERENCES, token)
    if drop is None:
        return page(ctx, request, subscriber, token)
    term = ctx.taxonomy.topics.find(drop[:200])
    if term is None:
        return page(
            ctx,
            request,
            subscriber,
            token,
            status_code=404,
            error="That topic is not one of ours (any more). Choose your topics below.",
        )
    if not registrar.follows_topic(subscriber, term.slug):
        notice = f"You already do not receive summaries about {term.label}."
        return page(ctx, request, subscriber, token, notice=notice)
    return page(ctx, request, subscriber, token, drop=term)


def _csrf_failed(ctx: WebContext, request: Request, subscriber: Subscriber, token: str):
    return page(
        ctx,
        request,
        subscriber,
        token,
        status_code=403,
        error="This page had expired (or your browser blocks cookies), so nothing was changed. "
        "Please try again.",
    )


@router.post("/preferences/{token}")
def update(
    token: str,
    request: Request,
    ctx: Ctx,
    background: BackgroundTasks,
    action: Text = "save",
    name: Text = "",
    topic_mode: Text = "all",
    topics: Choices = [],  # noqa: B006 (FastAPI copies defaults)
    lists: Choices = [],  # noqa: B006
    topic: Text = "",
    months: Text = "",
    frequency: Text = "",
    new_email: Text = "",
    csrf_token: Text = "",
) -> Response:
    with transaction(ctx.engine) as session:
        subscriber = _load(ctx, session, token)
        if not ctx.csrf.valid(request, csrf_token):
            return _csrf_failed(ctx, request, subscriber, token)
        if action == "unsubscribe":
            if api.unsubscribe(session, subscriber):  # counted for the issue the link came in
                campaign = ctx.signer.campaign(PREFERENCES, token)
                responses.record(session, campaign, responses.UNSUBSCRIBED)
            return render_page(
                ctx,
                request,
                "unsubscribed.html",
                email=subscriber.email,
                preferences=token,
                why_url=reader.why_url(ctx, subscriber),
                reasons=REASON_LABELS,
                why_answered=why_answered(subscriber),
            )
        if action == "resubscribe":
            return _resubscribe(ctx, request, session, subscriber, token)
        if action == "drop":
            return _drop(ctx, request, session, subscriber, token, topic)
        if action == "privacy":
            return _send_privacy_link(ctx, request, background, subscriber, token)
        if action in ("pause", "resume", "frequency", "address"):
            if action == "pause":
                notice, problems = reader.pause(session, subscriber, months)
            elif action == "resume":
                notice, problems = reader.resume(session, subscriber)
            elif action == "frequency":
                notice, problems = reader.frequency(session, subscriber, frequency)
            else:
                notice, problems = reader.change_address(ctx, background, subscriber, new_email)
            return page(
                ctx,
                request,
                subscriber,
                token,
                status_code=400 if problems else 200,
                notice=notice,
                field_errors=problems,
                values={"new_email": new_email} if problems else None,
            )
        if action != "save":
            return page(ctx, request, subscriber, token, status_code=400, error="Unknown action.")
        values = {"name": name, "topic_mode": topic_mode, "topics": topics, "lists": lists}
        try:
            name = name_choice(name)
            chosen_topics = (
                # "All topics except the ones I stopped": kept as they are.
                TopicChoice.every(subscriber.excluded_slugs)
                if topic_mode == "except"
                else TopicChoice.of(topic_choice(ctx.taxonomy, topic_mode, topics))
            )
            mine = api.subscribed_lists(subscriber)
            chosen_lists = list_choice(
                _lists_for(ctx, subscriber),
                ctx.settings.delivery.default_list,
                lists,
                keep=mine,
            )
        except FormProblem as problem:
            return page(
                ctx, request, subscriber, token, status_code=400, error=str(problem), values=values
            )
        dropped = registrar.update_preferences(
            session,
            ctx.settings,
            subscriber,
            name=name,
            topics=chosen_topics,
            lists=chosen_lists,
            taxonomy=ctx.taxonomy,
        )
        # A topic unticked in the form opened from a digest counts for that issue, as the
        # digest's "stop this topic" link does (the report keeps those within its window).
        campaign = ctx.signer.campaign(PREFERENCES, token) if dropped else ""
        for slug in dropped:
            responses.record(session, campaign, responses.DROPPED_TOPIC, slug)
        notice = "Your preferences are saved."
        if not api.is_active(subscriber):
            notice += " You are not receiving the digest at the moment: subscribe again below."
        return page(ctx, request, subscriber, token, notice=notice)


def _resubscribe(
    ctx: WebContext, request: Request, session: Session, subscriber: Subscriber, token: str
) -> Response:
    try:
        registrar.resubscribe(session, ctx.settings, subscriber, source="web")
    except SubscriberError:
        return page(
            ctx,
            request,
            subscriber,
            token,
            status_code=400,
            error="This address asked never to be mailed again. Please write to us to come back.",
        )
    return page(ctx, request, subscriber, token, notice="Welcome back: you are subscribed again.")


def _drop(
    ctx: WebContext,
    request: Request,
    session: Session,
    subscriber: Subscriber,
    token: str,
    topic: str,
) -> Response:
    term = ctx.taxonomy.topics.find(topic[:200]) if topic.strip() else None
    if term is None:
        return page(
            ctx,
            request,
            subscriber,
            token,
            status_code=400,
            error="Unknown topic: nothing changed.",
        )
    outcome = registrar.drop_topic(session, ctx.taxonomy, subscriber, term.slug)
    if outcome == registrar.DROPPED:  # counted for the issue whose link it was
        campaign = ctx.signer.campaign(PREFERENCES, token)
        responses.record(session, campaign, responses.DROPPED_TOPIC, term.slug)
    if outcome == registrar.NOT_FOLLOWED:
        notice = f"You already do not receive summaries about {term.label}."
        return page(ctx, request, subscriber, token, notice=notice)
    if outcome == registrar.ONLY_TOPIC:
        return page(
            ctx,
            request,
            subscriber,
            token,
            status_code=400,
            error=f"{term.label} is your only topic. Choose other topics below, "
            "or unsubscribe from everything.",
        )
    notice = f"Done: you will no longer receive summaries about {term.label}."
    return page(ctx, request, subscriber, token, notice=notice)


def _send_privacy_link(
    ctx: WebContext,
    request: Request,
    background: BackgroundTasks,
    subscriber: Subscriber,
    token: str,
) -> Response:
    """Email the short-lived link to the privacy pages (to the address on record only)."""
    if ctx.limits.subscribe_address.hit(api.normalize_email(subscriber.email)[1]):
        # Queued in the page's transaction; sent by the outbox thread once it is committed.
        ctx.mailer.queue(
            PRIVACY_LINK, {"subscriber_id": subscriber.id}, session=object_session(subscriber)
        )
        background.add_task(ctx.mailer.wake)
    expires = duration_text(ctx.settings.web.privacy_link_max_age)
    notice = (
        f"We have emailed a link to {subscriber.email}. Open it within {expires} to download "
        "or delete your data."
    )
    return page(ctx, request, subscriber, token, notice=notice)


def _privacy_request(
    ctx: WebContext, request: Request, subscriber: Subscriber, token: str, status_code: int = 200
) -> Response:
    """The old download and forget addresses: ask for the emailed link instead."""
    return render_page(
        ctx,
        request,
        "privacy_request.html",
        status_code=status_code,
        email=subscriber.email,
        token=token,
        expires=duration_text(ctx.settings.web.privacy_link_max_age),
    )


@router.get("/preferences/{token}/data")
@router.get("/preferences/{token}/forget")
def show_privacy_request(token: str, request: Request, ctx: Ctx) -> Response:
    with transaction(ctx.engine) as session:
        subscriber = _load(ctx, session, token)
        return _privacy_request(ctx, request, subscriber, token)


@router.post("/preferences/{token}/forget")
def refuse_forget(token: str, request: Request, ctx: Ctx) -> Response:
    """Forgetting needs the emailed privacy link, not the preferences link: nothing changes."""
    with transaction(ctx.engine) as session:
        subscriber = _load(ctx, session, token)
        return _privacy_request(ctx, request, subscriber, token, status_code=403)


# --- the privacy pages (the short-lived emailed link) ----------------------------------------


def _load_privacy(ctx: WebContext, session: Session, token: str) -> Subscriber:
    max_age = ctx.settings.web.privacy_link_max_age
    return subscriber_for_token(session, ctx.signer, PRIVACY, token, max_age=max_age)


@router.get("/privacy/{token}")
def show_privacy(token: str, request: Request, ctx: Ctx) -> Response:
    with transaction(ctx.engine) as session:
        subscriber = _load_privacy(ctx, session, token)
        return render_page(ctx, request, "privacy.html", email=subscriber.email, token=token)


@router.get("/privacy/{token}/data")
def download(token: str, request: Request, ctx: Ctx) -> Response:
    """Everything we hold about the subscriber, as a JSON file."""
    with transaction(ctx.engine) as session:
        subscriber = _load_privacy(ctx, session, token)
        record = import_export.subscriber_to_dict(subscriber)
        record["consent_ip"] = subscriber.consent_ip
        record["deliveries"] = api.subscriber_deliveries(session, subscriber.id)
    body = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="my-newsletter-data.json"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/privacy/{token}/forget")
def show_forget(token: str, request: Request, ctx: Ctx) -> Response:
    with transaction(ctx.engine) as session:
        subscriber = _load_privacy(ctx, session, token)
        return render_page(ctx, request, "forget.html", email=subscriber.email, token=token)


@router.post("/privacy/{token}/forget")
def forget(token: str, request: Request, ctx: Ctx, csrf_token: Text = "") -> Response:
    with transaction(ctx.engine) as session:
        subscriber = _load_privacy(ctx, session, token)
        if not ctx.csrf.valid(request, csrf_token):
            return render_page(
                ctx,
                request,
                "forget.html",
                status_code=403,
                email=subscriber.email,
                token=token,
                error="This page had expired, so nothing was deleted. Please try again.",
            )
        api.forget_subscriber(session, subscriber)
        return render_page(ctx, request, "forgotten.html")
