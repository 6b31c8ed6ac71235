"""The one send path: `send_month` plans, confirms the lists, runs the runner and reports.

The CLI (`newsletter send`, `newsletter demo`), the web app's send button, the scheduler's jobs
and `newsletter worker` all call it; they differ only in which steps they ask for (the scheduler
in plan mode only plans; a worker only sends what is planned) and in how they show progress.
"""

from __future__ import annotations

import ipaddress
import threading
import urllib.parse
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from newsletter.archive.publish import Rebuild
from newsletter.archive.publish import rebuild_quietly
from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.content.roundup import RoundUp
from newsletter.errors import ConfigError
from newsletter.errors import IssueNotReady
from newsletter.render.checks import ERROR
from newsletter.render.checks import WARNING
from newsletter.render.checks import Finding
from newsletter.render.checks import check_loaded_issue
from newsletter.sending.plan import PlanReport
from newsletter.sending.plan import default_lists
from newsletter.sending.plan import plan_campaign
from newsletter.sending.processes import run_processes
from newsletter.sending.report import ProgressCallback
from newsletter.sending.report import SendReport
from newsletter.sending.runner import CampaignRunner
from newsletter.store import audit
from newsletter.store import ledger
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction
from newsletter.store.models import DONE
from newsletter.store.models import PAUSED
from newsletter.store.models import PLANNED
from newsletter.store.subscribers import ensure_lists
from newsletter.transport.base import Transport


@dataclass
class CampaignResult:
    """What `send_month` did: the plan (None when it did not plan) and the run (None when it
    did not send), whether it cleared a pause first, and the archive rebuild that followed a
    completed send (None when the send did not complete or `rebuild_after_send` is off)."""

    month: str
    plan: PlanReport | None = None
    report: SendReport | None = None
    resumed: bool = False
    archive: Rebuild | None = None


def resume_campaign(engine: Engine, month: str) -> bool:
    """Clear a pause so the next run continues; True if the campaign was paused."""
    with session_factory(engine)() as session:
        campaign = ledger.find_campaign(session, month)
        if campaign is None or campaign.status != PAUSED:
            return False
        campaign.status = PLANNED
        campaign.pause_reason = ""
        session.commit()
        return True


def check_before_mailing(settings: Settings) -> None:
    """`ConfigError` when real mail (over SMTP) would lack a postal address or carry http
    unsubscribe and preference links.

    Over SMTP, `[newsletter] base_url` must be https (RFC 8058 one-click unsubscribe, and the
    Gmail and Yahoo bulk-sender rules, need an https List-Unsubscribe URI), unless it is a
    loopback address (a local test relay) or `[delivery] allow_insecure_links = true`.
    Maildir and memory sends (the demo, tests) are not mailed to anyone and pass.
    """
    if settings.delivery.transport != "smtp":
        return
    if not settings.newsletter.postal_address.strip():
        raise ConfigError(
            "[newsletter] postal_address is empty: anti-spam laws (CAN-SPAM, CASL, the EU's "
            "ePrivacy rules) require a postal address in every bulk email; set it before "
            "sending over SMTP"
        )
    if settings.delivery.allow_insecure_links:
        return
    url = urllib.parse.urlsplit(settings.newsletter.base_url)
    if url.scheme == "https" or _is_loopback(url.hostname or ""):
        return
    raise ConfigError(
        f"[newsletter] base_url = {settings.newsletter.base_url!r}: real mail needs https links "
        "(one-click unsubscribe, RFC 8058, and the Gmail/Yahoo sender rules); use an https "
        "base_url, or set [delivery] allow_insecure_links = true for a test relay"
    )


# The last (issue, settings as JSON, findings) checked: the checks are pure, and
# `newsletter send` asks twice for the same issue (its warnings, then `send_month`); each
# asking rendered the whole issue twice for its size. The settings are compared by value:
# a caller may change them in place between two sends.
_last_checked: tuple[Issue, str, list[Finding]] | None = None
_last_checked_lock = threading.Lock()


def refuse_unready(settings: Settings, issue: Issue) -> list[Finding]:
    """The warnings of `issues check` for `issue`; `IssueNotReady` listing its errors."""
    global _last_checked
    configured = settings.model_dump_json()
    with _last_checked_lock:
        last = _last_checked
        if last is not None and last[0] is issue and last[1] == configured:
            findings = last[2]
        else:
            # A round-up is as ready as the months it gathers.
            parts = issue.issues if isinstance(issue, RoundUp) else (issue,)
            findings = [f for part in parts for f in check_loaded_issue(settings, part)]
            _last_checked = (issue, configured, findings)
    errors = [f.message for f in findings if f.level == ERROR]
    if errors:
        raise IssueNotReady(
            f"{issue.month} fails its checks, so nothing was planned or sent: "
            + "; ".join(errors)
            + f" (see `newsletter issues check {issue.month}`)"
        )
    return [f for f in findings if f.level == WARNING]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def preview_plan(
    engine: Engine,
    settings: Settings,
    issue: Issue,
    lists: Sequence[str] | None = None,
    *,
    include_late_joiners: bool = False,
) -> PlanReport:
    """What `send_month` would plan now; nothing is written (for confirmations and dry runs)."""
    return plan_campaign(
        engine,
        settings,
        issue,
        lists or None,
        dry_run=True,
        include_late_joiners=include_late_joiners,
    )


def send_month(
    engine: Engine,
    settings: Settings,
    issue: Issue,
    transport: Transport | None = None,
    *,
    lists: Sequence[str] | None = None,
    plan: bool = True,
    send: bool = True,
    resume: bool = False,
    stop: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
    transport_factory: Callable[[], Transport] | None = None,
    wait_for_retries: bool = True,
    include_late_joiners: bool = False,
    take_over: bool = False,
    on_wait: Callable[[str], None] | None = None,
    actor: str = "cli",
    processes: int = 1,
) -> CampaignResult:
    """Plan (idempotently) and send `issue`; safe to call again: it resumes.

    `plan=False` sends only what is already planned (workers); `send=False` only plans (the
    scheduler's plan mode, `newsletter plan`). `resume` clears a pause first. `stop` is the
    caller's stop request: read, never set. `transport` sends on one connection (Maildir,
    memory, a test server); by default the configured transport is opened per connection of
    every configured SMTP server.

    Subscribers who joined after the month was first planned are left out unless
    `include_late_joiners` (see `sending.plan`). `wait_for_retries=False` ends after the first
    pass, leaving retries queued (`--no-wait`); `take_over` reclaims at once the rows of a
    sender known to have stopped; `on_wait` is told in words what the run waits for.
    `processes` > 1 sends with that many forked processes (`sending.processes`; over the
    configured SMTP servers only, so not with a given `transport`).

    When the run completes the campaign, the audit log records a "send" by `actor` (an admin,
    "cli", "scheduler", "worker") and, with `[archive] rebuild_after_send`, the archive is
    rebuilt (`result.archive`; a failing rebuild is logged, and the send still stands).
    """
    result = CampaignResult(issue.month)
    if send and transport is None and transport_factory is None:
        check_before_mailing(settings)  # before anything is written
    if plan:
        refuse_unready(settings, issue)
        chosen = default_lists(settings, lists)  # unknown lists are an error before any write
        with session_factory(engine)() as session:
            ensure_lists(session, settings)
            session.commit()
        if resume:
            result.resumed = resume_campaign(engine, issue.month)
        result.plan = plan_campaign(
            engine, settings, issue, chosen, include_late_joiners=include_late_joiners
        )
    elif resume:
        result.resumed = resume_campaign(engine, issue.month)
    if send:
        was_done = _is_done(engine, issue.month)

        def make_runner(
            progress: ProgressCallback | None, siblings: frozenset[str] = frozenset()
        ) -> CampaignRunner:
            return CampaignRunner(
                engine,
                settings,
                issue,
                transport,
                transport_factory=transport_factory,
                stop=stop,
                on_progress=progress,
                wait_for_retries=wait_for_retries,
                take_over=take_over,
                on_wait=on_wait,
                siblings=siblings,
            )

        if processes > 1 and transport is None and transport_factory is None:
            result.report = run_processes(
                engine, issue.month, processes, make_runner, stop=stop, on_progress=on_progress
            )
        else:
            result.report = make_runner(on_progress).run()
        if result.report.finished and not was_done:  # this run completed it
            _after_completed_send(engine, settings, result, actor)
    return result


def _is_done(engine: Engine, month: str) -> bool:
    with session_factory(engine)() as session:
        campaign = ledger.find_campaign(session, month)
        return campaign is not None and campaign.status == DONE


def _after_completed_send(
    engine: Engine, settings: Settings, result: CampaignResult, actor: str
) -> None:
    """Record the completed send, then publish it (the failure of either never fails it)."""
    report = result.report
    assert report is not None
    detail = f"completed: {report.sent} sent, {report.failed} failed, {report.skipped} skipped"
    with transaction(engine) as session:
        audit.record(session, actor, "send", result.month, detail)
    if settings.archive.rebuild_after_send:
        result.archive = rebuild_quietly(engine, settings, actor=actor, month=result.month)
