"""The reader's own changes on the preference center: pause, frequency, change of address;
the page a change-of-address link opens; and the optional "why" after unsubscribing.

`preferences.update` hands the actions `pause`, `resume`, `frequency` and `address` to the
functions here, which only translate the form to the subscriber service
(`store.registrar`, `store.address_change`) and back. The change of address answers the same
page whatever the new address (free, someone else's, suppressed), and mails the link after the
answer, so the page does not tell whose an address is.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from typing import Any

from fastapi import APIRouter
from fastapi import BackgroundTasks
from fastapi import Depends
from fastapi import Form
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from sqlalchemy.orm import object_session

from newsletter.errors import InvalidAddress
from newsletter.errors import SubscriberError
from newsletter.store import address_change
from newsletter.store import feedback
from newsletter.store import registrar
from newsletter.store import subscribers as api
from newsletter.store.engine import transaction
from newsletter.store.models import FREQUENCIES
from newsletter.store.models import QUARTERLY
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import Subscriber
from newsletter.store.models import utcnow
from newsletter.store.reader_view import ReaderView
from newsletter.store.registrar import subscriber_for_token
from newsletter.tokens import ADDRESS
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.web.app import WebContext
from newsletter.web.app import context
from newsletter.web.mail import ADDRESS_CHANGE_REQUEST
from newsletter.web.pages import render_page

router = APIRouter()
Ctx = Annotated[WebContext, Depends(context)]
Text = Annotated[str, Form(max_length=1000)]

PAUSE_MONTHS = tuple(range(1, registrar.MAX_PAUSE_MONTHS + 1))
FREQUENCY_LABELS = {"monthly": "Every month", QUARTERLY: "A quarterly round-up"}


def day_text(moment: dt.datetime) -> str:
    """ "28 February 2027": a date people read the same everywhere."""
    return f"{moment.day} {moment:%B %Y}"


def reader_values(subscriber: Subscriber | ReaderView) -> dict[str, Any]:
    """What the preferences page shows of pause and frequency."""
    until = registrar.paused_until(subscriber, utcnow())
    return {
        "paused_until": day_text(until) if until else "",
        "pause_months": PAUSE_MONTHS,
        "frequency": subscriber.frequency,
        "frequency_labels": FREQUENCY_LABELS,
    }


def pause(session: Session, subscriber: Subscriber, months: str) -> tuple[str, dict[str, str]]:
    """(notice, field errors) for the pause form."""
    try:
        until = registrar.pause(session, subscriber, int(months), utcnow())
    except (ValueError, SubscriberError):
        return "", {"months": f"Choose a pause of 1 to {registrar.MAX_PAUSE_MONTHS} months."}
    return f"Paused: the digest comes again from {day_text(until)}.", {}


def resume(session: Session, subscriber: Subscriber) -> tuple[str, dict[str, str]]:
    registrar.resume(session, subscriber)
    return "Resumed: you will receive the next digest.", {}


def frequency(session: Session, subscriber: Subscriber, choice: str) -> tuple[str, dict[str, str]]:
    if choice not in FREQUENCIES:
        return "", {"frequency": "Choose every month or a quarterly round-up."}
    registrar.set_frequency(session, subscriber, choice)
    if choice == QUARTERLY:
        return "Saved: one round-up every three months, with the summaries in your topics.", {}
    return "Saved: you will receive every month's digest.", {}


def change_address(
    ctx: WebContext, background: BackgroundTasks, subscriber: Subscriber, new_email: str
) -> tuple[str, dict[str, str]]:
    """Check the address's form only; the rest happens after the answer (see the docstring)."""
    try:
        address, key = api.normalize_email(new_email)
    except InvalidAddress:
        return "", {"new_email": "Please check the new address: it does not look valid."}
    if ctx.limits.subscribe_address.hit(key):
        # Whether the address is free is the outbox thread's to find out, after the answer.
        ctx.mailer.queue(
            ADDRESS_CHANGE_REQUEST,
            {"subscriber_id": subscriber.id, "email": address},
            session=object_session(subscriber),
        )
        background.add_task(ctx.mailer.wake)
    return (
        f"If {address} can be used, we have emailed it a link: your address changes when you "
        "open it. Until then, we keep writing to your current address.",
        {},
    )


@router.get("/address/{token}")
def show_address_change(token: str, request: Request, ctx: Ctx) -> Response:
    """Link scanners prefetch GETs: this page only shows a button."""
    with transaction(ctx.engine) as session:
        subscriber = subscriber_for_token(session, ctx.signer, ADDRESS, token)
        return render_page(
            ctx,
            request,
            "address_change.html",
            token=token,
            old_email=subscriber.email,
            new_email=address_change.new_address_in(ctx.signer, token) or "",
        )


@router.post("/address/{token}")
def use_address_change(token: str, request: Request, ctx: Ctx) -> Response:
    """The signed link (mailed to the new address) is the authorization, like a confirmation."""
    with transaction(ctx.engine) as session:
        try:
            subscriber = address_change.change_address(session, ctx.signer, token)
        except SubscriberError:
            return render_page(
                ctx,
                request,
                "message.html",
                status_code=409,
                title="This address cannot be used",
                message="This address cannot be used for this subscription, so nothing "
                "changed. Open your preferences from an email to choose another one.",
            )
        prefs = ctx.signer.make(PREFERENCES, subscriber.id, subscriber.email)
        return render_page(
            ctx,
            request,
            "address_changed.html",
            email=subscriber.email,
            preferences_url=f"/preferences/{prefs}",
        )


def why_url(ctx: WebContext, subscriber: Subscriber) -> str:
    """Where the unsubscribed page posts its optional "why"."""
    return f"/u/{ctx.signer.make(UNSUBSCRIBE, subscriber.id, subscriber.email)}/why"


@router.post("/u/{token}/why")
def unsubscribe_reason(token: str, request: Request, ctx: Ctx, reason: Text = "") -> Response:
    """The optional "why" after unsubscribing: stored without anyone's id. Like the one-click
    POST, the signed unsubscribe link is the authorization (that page sets no cookie, so there
    is no CSRF token to check); it counts only while they are unsubscribed, and once per
    unsubscribe (`feedback.answer_why`)."""
    with transaction(ctx.engine) as session:
        subscriber = subscriber_for_token(session, ctx.signer, UNSUBSCRIBE, token)
        if subscriber.status != UNSUBSCRIBED:
            return render_page(
                ctx,
                request,
                "message.html",
                status_code=409,
                title="Nothing was recorded",
                message="This address is subscribed, so there is no unsubscribe to explain.",
            )
        try:
            recorded = feedback.answer_why(session, subscriber, reason)
        except SubscriberError:
            return render_page(
                ctx,
                request,
                "unsubscribed.html",
                status_code=400,
                email=subscriber.email,
                preferences=ctx.signer.make(PREFERENCES, subscriber.id, subscriber.email),
                why_url=f"/u/{token}/why",
                reasons=feedback.REASON_LABELS,
                why_error="Choose one of the reasons, or simply leave this page.",
            )
        if not recorded:
            return render_page(
                ctx,
                request,
                "message.html",
                title="Already recorded",
                message="Your answer is already recorded, thank you. "
                "You will not receive the digest any more.",
            )
        return render_page(
            ctx,
            request,
            "message.html",
            title="Thank you",
            message="Thank you for telling us. You will not receive the digest any more.",
        )
