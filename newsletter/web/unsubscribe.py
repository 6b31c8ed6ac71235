"""One-click unsubscribe (RFC 8058) at `/u/{token}`, the URL in List-Unsubscribe.

`POST /u/{token}` with the body `List-Unsubscribe=One-Click` (form-urlencoded or multipart)
unsubscribes at once and answers 200, no redirect, no cookie or CSRF check: the signed token is
the authorization, and mail providers post it without a browser. `GET /u/{token}` only shows a
page with a button (which posts the same body): link scanners prefetch GETs, so a GET must
never unsubscribe. The `mailto:` half of List-Unsubscribe is handled by `newsletter inbound`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Depends
from fastapi import Request
from fastapi.responses import Response

from newsletter.store import responses
from newsletter.store import subscribers as api
from newsletter.store.engine import transaction
from newsletter.store.feedback import REASON_LABELS
from newsletter.store.feedback import why_answered
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.registrar import subscriber_for_token
from newsletter.store.responses import UNSUBSCRIBED as UNSUBSCRIBED_KIND
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.web.app import WebContext
from newsletter.web.app import context
from newsletter.web.app import in_thread
from newsletter.web.pages import render_page

router = APIRouter()
Ctx = Annotated[WebContext, Depends(context)]
ONE_CLICK = "One-Click"


@router.get("/u/{token}")
def show(token: str, request: Request, ctx: Ctx) -> Response:
    with transaction(ctx.engine) as session:
        subscriber = subscriber_for_token(session, ctx.signer, UNSUBSCRIBE, token)
        return render_page(
            ctx,
            request,
            "unsubscribe.html",
            email=subscriber.email,
            token=token,
            already=subscriber.status == UNSUBSCRIBED,
        )


async def _one_click(request: Request) -> bool:
    """Whether the body says List-Unsubscribe=One-Click (any content type Starlette parses)."""
    try:
        form = await request.form(max_files=0, max_fields=20)
    except Exception:  # malformed multipart or urlencoded body
        return False
    try:
        return ONE_CLICK in form.getlist("List-Unsubscribe")
    finally:
        await form.close()


@router.post("/u/{token}")
async def one_click(token: str, request: Request, ctx: Ctx) -> Response:
    if not await _one_click(request):
        return render_page(
            ctx,
            request,
            "message.html",
            status_code=400,
            title="Nothing was changed",
            message="To unsubscribe, open the link from your email and press the button.",
        )
    return await in_thread(_unsubscribe, token, request, ctx)


def _unsubscribe(token: str, request: Request, ctx: WebContext) -> Response:
    with transaction(ctx.engine) as session:
        subscriber = subscriber_for_token(session, ctx.signer, UNSUBSCRIBE, token, topics=False)
        if api.unsubscribe(session, subscriber):  # counted for the issue the link came in
            responses.record(session, ctx.signer.campaign(UNSUBSCRIBE, token), UNSUBSCRIBED_KIND)
        subscriber_id, email = subscriber.id, subscriber.email
        answered = why_answered(subscriber)
    # Rendered after the commit: on SQLite the write lock is held from the first write to the
    # commit, and a send running beside the web app waits for it before each acceptance.
    return render_page(
        ctx,
        request,
        "unsubscribed.html",
        email=email,
        preferences=ctx.signer.make(PREFERENCES, subscriber_id, email),
        why_url=f"/u/{token}/why",
        reasons=REASON_LABELS,
        why_answered=answered,
    )
