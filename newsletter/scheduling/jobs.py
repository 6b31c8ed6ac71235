"""The job bodies: send (or only plan) one month's issue, through the code `newsletter send` uses.

In the first month of a quarter the monthly job then sends the previous quarter's round-up
(campaign "YYYY-Qn", `content.roundup`) on the same slot, after the month's own issue.

`run_monthly(settings, now=...)` and `run_send(settings, month)` are plain functions with an
explicit clock; `monthly_job` and `one_off_job` are the thin module-level wrappers the job
store pickles by reference, taking only a config path and a month.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass

from sqlalchemy import Engine

from newsletter.config import Settings
from newsletter.config import load_settings
from newsletter.content.model import Issue
from newsletter.content.reader import list_months
from newsletter.content.roundup import assemble_round_up
from newsletter.content.roundup import is_quarter
from newsletter.content.roundup import quarter_months
from newsletter.content.roundup import round_up_due
from newsletter.content.taxonomy import taxonomy_from_settings
from newsletter.errors import NewsletterError
from newsletter.errors import TransportError
from newsletter.message.notice import notice_message
from newsletter.render import checks
from newsletter.scheduling.slots import MonthlySlot
from newsletter.scheduling.slots import month_for_run
from newsletter.sending.campaign import send_month
from newsletter.sending.report import SendReport
from newsletter.sending.single import send_single
from newsletter.store import ledger
from newsletter.store.engine import make_engine
from newsletter.store.engine import require_schema
from newsletter.store.engine import session_factory
from newsletter.store.models import DONE
from newsletter.store.models import PAUSED
from newsletter.store.models import PLANNED
from newsletter.store.models import RUNNING
from newsletter.store.models import utcnow
from newsletter.transport import make_transport
from newsletter.transport.base import Transport

log = logging.getLogger("newsletter.scheduler")

# Outcomes of one run.
SENT = "sent"  # the campaign ran to completion
STOPPED = "stopped"  # it ran but did not finish (stop requested, paused, retries pending)
PLANNED_ONLY = "planned"  # mode = "plan": rows planned, workers send them
ALREADY_DONE = "already-done"
IN_PROGRESS = "in-progress"
ALREADY_PLANNED = "already-planned"
IS_PAUSED = "paused"
MISSING = "missing"  # content missing or failing its checks: nothing sent

# Set when the scheduler process stops: a send in progress drains (the message in flight
# finishes, the ledger is written). A module global because pickled jobs carry no objects.
STOP = threading.Event()
# One send at a time in this process, even if a one-off and the monthly job coincide.
_SEND_LOCK = threading.Lock()


@dataclass
class RunOutcome:
    """What one run of a job did, for logs and tests."""

    month: str
    action: str
    detail: str = ""
    report: SendReport | None = None
    alerted: bool = False
    # In the first month of a quarter: what the previous quarter's round-up did.
    round_up: RunOutcome | None = None


def run_monthly(
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    engine: Engine | None = None,
    transport: Transport | None = None,
    stop: threading.Event | None = None,
) -> RunOutcome:
    """The monthly job: send the month of the slot that is due at `now` (see `month_for_run`);
    in January, April, July and October, then the previous quarter's round-up (`round_up`)."""
    slot = MonthlySlot.from_config(settings.schedule)
    month = month_for_run(slot, now or utcnow())
    outcome = run_send(settings, month, engine=engine, transport=transport, stop=stop)
    quarter = round_up_due(month)
    if quarter is not None and not (stop is not None and stop.is_set()):
        outcome.round_up = run_send(
            settings, quarter, engine=engine, transport=transport, stop=stop
        )
    return outcome


def run_send(
    settings: Settings,
    month: str,
    *,
    engine: Engine | None = None,
    transport: Transport | None = None,
    stop: threading.Event | None = None,
    alert_transport: Transport | None = None,
) -> RunOutcome:
    """Check, plan and send (or only plan) `month`; idempotent.

    A month already sent, in progress, paused, or (in plan mode) planned is only logged.
    Missing or failing content is never sent: the admin gets an email (`on_missing = "alert"`)
    or it is logged (`"skip"`). `transport` None sends like `newsletter send` (the configured
    transport, one per SMTP connection).
    """
    own_engine = engine is None
    engine = engine or make_engine(settings.database.url)
    try:
        require_schema(engine)
        skip = _already_handled(engine, settings, month)
        if skip is not None:
            log.info("%s: %s — nothing to do", month, skip.detail)
            return skip
        if is_quarter(month):
            issue, errors = _checked_round_up(settings, month)
            if issue is None:
                # The months' own runs alerted about their content: a log line is enough.
                log.error("%s: round-up not sent: %s", month, "; ".join(errors))
                return RunOutcome(month, MISSING, "; ".join(errors))
        else:
            issue, findings = checks.check_issue(settings, taxonomy_from_settings(settings), month)
            errors = [f.message for f in findings if f.level == checks.ERROR]
            if issue is None or errors:
                return _content_problem(settings, month, errors, alert_transport)
        plan_only = settings.schedule.mode == "plan"
        with _SEND_LOCK:
            result = send_month(
                engine,
                settings,
                issue,
                transport,
                send=not plan_only,
                stop=stop,
                actor="scheduler",
            )
        plan = result.plan
        assert plan is not None
        log.info("%s: planned %d new deliveries (%d to send)", month, plan.new_rows, plan.to_send)
        if result.report is None:
            return RunOutcome(month, PLANNED_ONLY, f"{plan.to_send} deliveries for the workers")
        report = result.report
        action = SENT if report.finished else STOPPED
        detail = f"sent {report.sent}, failed {report.failed}, skipped {report.skipped}"
        if report.finished:
            log.info("%s: campaign complete: %s", month, detail)
        else:
            reason = report.stopped_reason or "stopped before the end"
            log.warning(
                "%s: not finished (%s): %s — run `newsletter send %s` to resume",
                month,
                reason,
                detail,
                month,
            )
        return RunOutcome(month, action, detail, report)
    finally:
        if own_engine:
            engine.dispose()


def content_errors(settings: Settings, key: str) -> list[str]:
    """Why the campaign `key` (a month "2026-11" or a quarter's round-up "2026-Q4") cannot be
    sent now: its content's errors, as its run would find them ([] when it can be)."""
    if is_quarter(key):
        return _checked_round_up(settings, key)[1]
    issue, findings = checks.check_issue(settings, taxonomy_from_settings(settings), key)
    errors = [f.message for f in findings if f.level == checks.ERROR]
    return errors if issue is not None or errors else [f"no content for {key}"]


def _checked_round_up(settings: Settings, quarter: str) -> tuple[Issue | None, list[str]]:
    """The round-up of `quarter` from its months with content, each checked as a month's send
    is; (None, errors) when a month fails its checks or none has content."""
    taxonomy = taxonomy_from_settings(settings)
    present = set(list_months(settings.content.dir))
    issues: list[Issue] = []
    errors: list[str] = []
    for month in quarter_months(quarter):
        if month not in present:
            continue
        issue, findings = checks.check_issue(settings, taxonomy, month)
        errors += [f"{month}: {f.message}" for f in findings if f.level == checks.ERROR]
        if issue is not None:
            issues.append(issue)
    if errors:
        return None, errors
    try:
        return assemble_round_up(quarter, issues, settings.newsletter.name), []
    except NewsletterError as error:
        return None, [str(error)]


def _already_handled(engine: Engine, settings: Settings, month: str) -> RunOutcome | None:
    with session_factory(engine)() as session:
        campaign = ledger.find_campaign(session, month)
    if campaign is None:
        return None
    if campaign.status == DONE:
        return RunOutcome(month, ALREADY_DONE, "already sent")
    if campaign.status == RUNNING:
        return RunOutcome(month, IN_PROGRESS, "a send is in progress")
    if campaign.status == PAUSED:
        resume = f"`newsletter send {month} --resume`"
        detail = f"paused ({campaign.pause_reason}); fix the cause, then {resume}"
        return RunOutcome(month, IS_PAUSED, detail)
    if campaign.status == PLANNED and settings.schedule.mode == "plan":
        return RunOutcome(month, ALREADY_PLANNED, "already planned; the workers send it")
    return None  # planned and not finished in send mode: carry on (resumes the send)


def _content_problem(
    settings: Settings, month: str, errors: list[str], transport: Transport | None
) -> RunOutcome:
    folder = settings.content.dir / month
    detail = "; ".join(errors) or f"no content for {month}"
    log.error("%s: not sent: %s", month, detail)
    outcome = RunOutcome(month, MISSING, detail)
    if settings.schedule.on_missing == "alert":
        body = (
            f"The scheduled send of {month} did not go out: its content is missing or fails "
            f"its checks.\n\nContent folder: {folder}\n\n"
            + "\n".join(f"- {error}" for error in errors or [detail])
            + "\n\nNothing was sent. Fix the content, check it with "
            f"`newsletter issues check {month}`, then send it with `newsletter send {month}` or "
            f'queue it with `newsletter schedule add {month} --at "YYYY-MM-DD HH:MM"`.\n'
        )
        outcome.alerted = alert_admin(settings, f"{month} was not sent", body, transport)
    return outcome


def build_alert(settings: Settings, subject: str, body: str) -> bytes:
    """A plain-text notice to the admin address."""
    return notice_message(
        settings,
        to_email=settings.newsletter.admin_email,
        subject=f"[{settings.newsletter.name}] {subject}",
        text=body,
    )


def alert_admin(
    settings: Settings, subject: str, body: str, transport: Transport | None = None
) -> bool:
    """Email the admin through the configured transport; False (logged) if it cannot."""
    admin = settings.newsletter.admin_email
    if not admin:
        log.error("cannot alert: [newsletter] admin_email is not set (%s)", subject)
        return False
    data = build_alert(settings, subject, body)
    try:
        with transport or make_transport(settings) as chosen:
            send_single(settings, chosen, admin, data)
    except TransportError as error:
        log.error("could not alert %s: %s", admin, error)
        return False
    log.info("alerted %s: %s", admin, subject)
    return True


def monthly_job(config_path: str) -> None:
    """Job-store entry point of the monthly send (reads the configuration afresh each run)."""
    try:
        run_monthly(load_settings(config_path), stop=STOP)
    except NewsletterError as error:
        log.error("monthly send failed: %s", error)


def one_off_job(config_path: str, month: str) -> None:
    """Job-store entry point of a one-off send queued with `newsletter schedule add`."""
    try:
        run_send(load_settings(config_path), month, stop=STOP)
    except NewsletterError as error:
        log.error("one-off send of %s failed: %s", month, error)
