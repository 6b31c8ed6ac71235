"""The click redirect `/r/{token}` (`[tracking] clicks`): count, then send the reader on.

The token is signed (`tokens.LinkSigner`) and names an issue, a variant, a summary and the
target; the target is only ever taken from a token we signed, so the redirect cannot be used to
send anyone elsewhere (no open redirect). It names no reader, and nothing about the request
(address, IP, user agent, referrer, cookies) is read or kept: one counter per link goes up.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter
from fastapi import Depends
from fastapi.responses import RedirectResponse
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from newsletter.errors import TokenError
from newsletter.store.clicks import count_click
from newsletter.store.engine import transaction
from newsletter.tokens import LinkSigner
from newsletter.web.app import WebContext
from newsletter.web.app import context

router = APIRouter()
Ctx = Annotated[WebContext, Depends(context)]
log = logging.getLogger("newsletter.web")
MAX_TOKEN = 4000

NOT_VALID = (
    "This link is not valid: it may have been cut or altered. Open the link from the email "
    "again, or find the article in the archive."
)


@router.get("/r/{token}")
def follow(token: str, ctx: Ctx) -> Response:
    """Count a click (when `[tracking] clicks` is on) and redirect to the signed target."""
    if len(token) > MAX_TOKEN:
        raise StarletteHTTPException(400, NOT_VALID)
    try:
        target = LinkSigner(ctx.secret_key).read(token)
    except TokenError:
        raise StarletteHTTPException(400, NOT_VALID) from None
    if ctx.settings.tracking.clicks:
        try:
            with transaction(ctx.engine) as session:
                count_click(session, target)
        except Exception:  # a count is not worth a broken link: the reader goes on
            log.exception("could not count a click on %s", target.month)
    # Links in old digests keep working after tracking is turned off; they are not counted.
    return RedirectResponse(target.url, status_code=302, headers={"Cache-Control": "no-store"})
