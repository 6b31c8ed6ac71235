"""Admin: the monthly send times and the queued one-off sends (the same queue as the CLI): a
month's issue, or a quarter's round-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Depends
from fastapi import Form
from fastapi import Request
from fastapi.responses import Response

from newsletter.content.roundup import quarter_label
from newsletter.content.roundup import quarter_of
from newsletter.errors import NewsletterError
from newsletter.scheduling import service
from newsletter.scheduling.slots import MonthlySlot
from newsletter.scheduling.slots import month_for_run
from newsletter.scheduling.slots import next_monthly_runs
from newsletter.store import audit
from newsletter.store.engine import transaction
from newsletter.store.models import utcnow
from newsletter.web.admin import Admin
from newsletter.web.admin import actor
from newsletter.web.admin import require_csrf
from newsletter.web.admin import see_other
from newsletter.web.app import WebContext
from newsletter.web.app import context
from newsletter.web.pages import render_page

router = APIRouter()
Ctx = Annotated[WebContext, Depends(context)]
Text = Annotated[str, Form(max_length=200)]


def schedule_page(
    ctx: WebContext,
    request: Request,
    *,
    notice: str = "",
    error: str = "",
    status_code=200,
    field_errors: dict[str, list[str]] | None = None,
) -> Response:
    """The schedule page; `field_errors` ties a refused queueing to its field."""
    settings = ctx.settings
    slot = MonthlySlot.from_config(settings.schedule)
    runs = [(run, month_for_run(slot, run)) for run in next_monthly_runs(slot, utcnow(), 3)]
    with service.job_store(settings, ctx.engine) as scheduler:
        queued = service.one_offs(scheduler)
        started = service.monthly_next_run(scheduler) is not None
    months = ctx.sending.months()
    return render_page(
        ctx,
        request,
        "admin/schedule.html",
        status_code=status_code,
        slot=slot.describe(),
        schedule=settings.schedule,
        runs=runs,
        queued=queued,
        started=started,
        months=months,
        quarters=sorted({quarter_of(m) for m in months}, reverse=True),
        quarter_label=quarter_label,
        can_queue=settings.config_path is not None,
        notice=notice,
        error=error,
        field_errors=field_errors or {},
    )


@router.get("/admin/schedule", dependencies=[Admin])
def show_schedule(request: Request, ctx: Ctx) -> Response:
    return schedule_page(ctx, request)


@router.post("/admin/schedule/add", dependencies=[Admin])
def add_send(
    request: Request, ctx: Ctx, month: Text = "", at: Text = "", csrf_token: Text = ""
) -> Response:
    require_csrf(request, ctx, csrf_token)
    settings = ctx.settings
    try:
        if settings.config_path is None:
            raise NewsletterError("the app was not started from a config file")
        zone = MonthlySlot.from_config(settings.schedule).zone
        when = service.parse_local_time(at.replace("T", " "), zone)
        with service.job_store(settings, ctx.engine) as scheduler:
            service.add_one_off(scheduler, settings, settings.config_path, month, when)
    except NewsletterError as error:
        # The time that does not read or is past, else the month (no content, queued already).
        text = str(error)
        field = "at" if text.startswith("--at") or "is in the past" in text else "month"
        wrong = {field: [text]} if settings.config_path is not None else {}
        return schedule_page(ctx, request, error=text, status_code=400, field_errors=wrong)
    with transaction(ctx.engine) as session:
        audit.record(session, actor(request), "schedule", month[:7], f"at {when.isoformat()}")
    return see_other("/admin/schedule?queued=1")


@router.post("/admin/schedule/remove", dependencies=[Admin])
def remove_send(request: Request, ctx: Ctx, job_id: Text = "", csrf_token: Text = "") -> Response:
    require_csrf(request, ctx, csrf_token)
    try:
        with service.job_store(ctx.settings, ctx.engine) as scheduler:
            service.remove_one_off(scheduler, job_id)
    except NewsletterError as error:
        return schedule_page(ctx, request, error=str(error), status_code=400)
    with transaction(ctx.engine) as session:
        audit.record(session, actor(request), "unschedule", job_id[:200])
    return see_other("/admin/schedule")
