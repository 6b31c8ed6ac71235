"""Admin: the audit log page: who sent, scheduled, imported, edited or forgot what, and when
(`store.audit`), newest first, paged, filtered by action, times in the configured zone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Depends
from fastapi import Request
from fastapi.responses import Response

from newsletter.store import audit
from newsletter.store.engine import session_factory
from newsletter.web.admin import Admin
from newsletter.web.app import WebContext
from newsletter.web.app import context
from newsletter.web.pages import render_page
from newsletter.web.timefmt import human
from newsletter.web.timefmt import zone_of

router = APIRouter(dependencies=[Admin])
Ctx = Annotated[WebContext, Depends(context)]
PAGE_SIZE = 50


@router.get("/admin/audit")
def audit_log(request: Request, ctx: Ctx, action: str = "", page: str = "1") -> Response:
    """The log, `PAGE_SIZE` events a page; an unknown action is a 400 naming it."""
    error = ""
    action = action[:50]
    if action and action not in audit.ACTIONS:
        error = f"Unknown action {action!r}: choose one from the list."
        action = ""
    number = int(page) if page.isdigit() and 0 < len(page) < 7 and int(page) > 0 else 1
    zone = zone_of(ctx.settings)
    with session_factory(ctx.engine)() as session:
        entries, total = audit.recent(
            session, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE, action=action or None
        )
    rows = [
        {
            "at": human(e.at, zone),
            "iso": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "detail": e.detail,
        }
        for e in entries
    ]
    pages = max(1, -(-total // PAGE_SIZE))
    return render_page(
        ctx,
        request,
        "admin/audit.html",
        status_code=400 if error else 200,
        rows=rows,
        total=total,
        page=number,
        pages=pages,
        action=action,
        actions=audit.ACTIONS,
        zone=ctx.settings.schedule.timezone,
        error=error,
    )
