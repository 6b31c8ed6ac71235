"""`newsletter send` and `newsletter deliveries`: the ledger-backed campaign commands."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeRemainingColumn
from rich.table import Table

from newsletter.cli.app import App
from newsletter.cli.app import format_option
from newsletter.cli.app import main
from newsletter.cli.app import make_console
from newsletter.cli.app import pass_app
from newsletter.cli.app import print_records
from newsletter.cli.app import stop_on_signals
from newsletter.content.roundup import load_campaign_issue
from newsletter.errors import SendError
from newsletter.render.environment import plural
from newsletter.sending.campaign import check_before_mailing
from newsletter.sending.campaign import preview_plan
from newsletter.sending.campaign import refuse_unready
from newsletter.sending.campaign import send_month
from newsletter.sending.plan import PlanReport
from newsletter.sending.report import ProgressCallback
from newsletter.sending.report import SendReport
from newsletter.sending.single import send_tests
from newsletter.sending.waits import stamp
from newsletter.store import ledger
from newsletter.store.engine import session_factory
from newsletter.store.models import DELIVERY_STATUSES
from newsletter.store.models import PAUSED
from newsletter.transport import make_transport


def _printer(console: Console):
    """console.print that never wraps or highlights: a plan or summary line stays one line
    (cron mail, pipes, copy and paste of the commands it names)."""
    return lambda text: console.print(text, soft_wrap=True, highlight=False)


def print_plan(
    console: Console, plan: PlanReport, command: str = "send", zone: str = "UTC"
) -> None:
    """What a send (or `newsletter plan`) is about to do; `command` is the one to re-run with
    `--include-late-joiners` when late joiners were left out."""
    say = _printer(console)
    audience = plural(plan.audience, "subscriber")
    say(f"[bold]{plan.month}[/bold]: audience {audience} not yet planned")
    if plan.existing:
        done = ", ".join(f"{n} {status}" for status, n in sorted(plan.existing.items()))
        say(f"  already in the ledger: {done}")
    for variant, count in sorted(plan.variants.items(), key=lambda item: (-item[1], item[0])):
        say(f"  {plural(count, 'reader')}: {escape(plan.label(variant))}")
    if plan.skipped_no_match:
        say(f"  skipped (no matching topics): {plan.skipped_no_match}")
    if plan.late_joiners and plan.first_planned is not None:
        say(
            f"  left out: {plural(plan.late_joiners, 'late joiner')}, who joined after "
            f"{plan.month} was first planned ({stamp(plan.first_planned, zone)}); "
            f"`newsletter {command} {plan.month} --include-late-joiners` includes them"
        )
    say(f"  messages to send: {plan.to_send}")


def print_report(console: Console, report: SendReport) -> None:
    """The summary of a run: counts, render time apart from wall time, what is left open."""
    say = _printer(console)
    waited = f", {report.wait_seconds:.1f}s of it waiting" if report.wait_seconds >= 0.1 else ""
    say(
        f"sent {report.sent}, failed {report.failed}, skipped {report.skipped}, "
        f"retries scheduled {report.retried}; "
        f"{plural(report.variants_rendered, 'variant')} rendered in {report.render_seconds:.1f}s; "
        f"wall time {report.elapsed:.1f}s{waited}"
    )
    if report.throttled:
        say(f"the server asked us to slow down {report.throttled} time(s)")
    for line in report.leftover:
        say(escape(line))
    if report.finished:
        state = "complete"
    elif report.paused:
        state = (
            f"[red]paused[/red] — {report.stopped_reason}\n"
            f"fix the cause, then run `newsletter send {report.month} --resume`"
        )
    elif report.leftover:
        state = "not finished (above: what is left and how to continue)"
    else:
        state = "not finished: run the same command to resume"
    say(f"campaign {report.month}: {state}")


@contextlib.contextmanager
def progress_bar(console: Console, total: int) -> Iterator[ProgressCallback]:
    """A rich progress bar; yields the callback that moves it.

    The bar shows the run's own count of rows finished out of the rows it can take (which
    grows if more come, e.g. rows planned after the preview), so it never passes its total.
    """
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("sending", total=max(total, 1))
        last = 0.0
        latest: list[SendReport] = []

        def advance(report: SendReport, _step: int) -> None:
            # Called for every message; the bar redraws 10 times a second, so updating it
            # more often than that only cost the send its time (rich takes a lock each time).
            nonlocal last
            latest[:] = [report]
            now = time.monotonic()
            if now - last >= 0.05 or report.done >= report.total:
                last = now
                progress.update(task, total=max(report.total, 1), completed=report.done)

        try:
            yield advance
        finally:
            if latest:  # the last count, whenever the last update came
                report = latest[0]
                progress.update(task, total=max(report.total, 1), completed=report.done)


LATE_JOINERS_HELP = (
    "Also plan subscribers who joined after MONTH was first planned (by default they are left "
    "out: the welcome email gave them the latest issue)."
)


@main.command("send")
@click.argument("month", metavar="YYYY-MM|YYYY-Qn")
@click.option("--list", "lists", multiple=True, help="Send to this list (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; change nothing.")
@click.option("--test-to", multiple=True, metavar="ADDR", help="Send a test to ADDR only.")
@click.option("--topics", help="With --test-to: the topics (separated by ;) to cut the test to.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--resume", is_flag=True, help="Continue a send that paused itself after errors.")
@click.option("--include-late-joiners", is_flag=True, help=LATE_JOINERS_HELP)
@click.option(
    "--take-over",
    is_flag=True,
    help="Reclaim now the rows claimed by a sender on this host that has stopped (a crash), "
    "instead of waiting for their lease to run out.",
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="End after the first pass: addresses waiting for a retry stay queued (a line says "
    "when, and how to continue).",
)
@pass_app
def send(
    app: App,
    month: str,
    lists: tuple[str, ...],
    dry_run: bool,
    test_to: tuple[str, ...],
    topics: str | None,
    yes: bool,
    resume: bool,
    include_late_joiners: bool,
    take_over: bool,
    no_wait: bool,
) -> None:
    """Send MONTH to every subscriber, cut to their topics. Safe to re-run: resumes.

    A quarter (YYYY-Qn, e.g. 2026-Q4) sends its round-up to quarterly readers: the summaries of
    its three months in their topics that they have not received (--test-to for a test)."""
    settings = app.settings
    settings.mail_signing_key()  # over SMTP (real mail) its links need a real key
    console = make_console()
    issue = load_campaign_issue(settings.content.dir, month, app.taxonomy, settings.newsletter.name)
    if test_to:
        send_test(app, issue, test_to, topics, console)
        return
    if topics:
        raise click.UsageError(
            "--topics only cuts a test send: give --test-to ADDR too (a real send cuts the "
            "issue to each subscriber's own topics)"
        )
    engine = app.db()
    if not dry_run:
        check_before_mailing(settings)
    for warning in refuse_unready(settings, issue):
        console.print(f"[yellow]warning:[/yellow] {warning.message}")
    plan = preview_plan(
        engine, settings, issue, lists or None, include_late_joiners=include_late_joiners
    )
    zone = settings.schedule.timezone
    print_plan(console, plan, "send", zone)
    if dry_run:
        return
    if plan.to_send and not yes:
        click.confirm(f"Send {issue.subject!r} now?", abort=True)
    stop = threading.Event()
    draining = stop_on_signals(stop, "finishing the messages in flight…")
    # No bar when nothing is to be sent (it would read 0/1); the run still resumes or clears.
    bar = progress_bar(console, plan.to_send) if plan.to_send else contextlib.nullcontext(None)
    with bar as advance, draining:
        result = send_month(
            engine,
            settings,
            issue,
            lists=lists or None,
            resume=resume,
            stop=stop,
            on_progress=advance,
            include_late_joiners=include_late_joiners,
            take_over=take_over,
            wait_for_retries=not no_wait,
            on_wait=lambda line: console.print(escape(line), soft_wrap=True, highlight=False),
            processes=settings.smtp.processes if settings.delivery.transport == "smtp" else 1,
        )
    if result.resumed:
        console.print(f"{month}: pause cleared, resumed")
    assert result.plan is not None and result.report is not None
    if result.plan.to_send == 0:
        console.print("nothing to send")
        return
    print_report(console, result.report)
    if result.archive is not None:
        color = "green" if result.archive.ok else "yellow"
        console.print(f"[{color}]{escape(result.archive.summary())}[/{color}]", soft_wrap=True)
    if result.report.paused:
        raise click.exceptions.Exit(1)


@main.command("plan")
@click.argument("month", metavar="YYYY-MM|YYYY-Qn")
@click.option("--list", "lists", multiple=True, help="Plan for this list (repeatable).")
@click.option("--include-late-joiners", is_flag=True, help=LATE_JOINERS_HELP)
@pass_app
def plan_command(app: App, month: str, lists: tuple[str, ...], include_late_joiners: bool) -> None:
    """Plan MONTH for `newsletter worker` without sending: the ledger rows `send` would write.

    Idempotent: planning again adds only subscribers not yet planned. Refuses an issue that
    fails `issues check`, as `send` does. A quarter (YYYY-Qn) plans its round-up.
    """
    settings = app.settings
    console = make_console()
    issue = load_campaign_issue(settings.content.dir, month, app.taxonomy, settings.newsletter.name)
    engine = app.db()
    check_before_mailing(settings)  # workers would refuse to mail it: say so now
    for warning in refuse_unready(settings, issue):
        console.print(f"[yellow]warning:[/yellow] {warning.message}")
    result = send_month(
        engine,
        settings,
        issue,
        lists=lists or None,
        send=False,
        include_late_joiners=include_late_joiners,
    )
    assert result.plan is not None
    plan = result.plan
    print_plan(console, plan, "plan", settings.schedule.timezone)
    added = plural(plan.new_rows, "new row")
    with session_factory(engine)() as session:
        campaign = ledger.find_campaign(session, month)
        status = campaign.status if campaign else ""
        reason = campaign.pause_reason if campaign else ""
    if status == PAUSED:
        console.print(
            f"{month}: planned {added}; the campaign is paused ({reason}): workers send it "
            f"after `newsletter send {month} --resume`"
        )
    elif plan.to_send:
        console.print(
            f"{month}: planned {added}, {plan.to_send} to send: run `newsletter worker` to send"
        )
    else:
        console.print(f"{month}: planned {added}; nothing to send")


def send_test(app: App, issue, addresses, topics: str | None, console: Console) -> None:
    """Send the issue to test addresses, outside the ledger, subject marked [TEST]."""
    from newsletter.store.subscribers import parse_topics

    chosen = parse_topics(topics, app.taxonomy) if topics else None
    for line in send_tests(app.settings, issue, addresses, chosen, make_transport(app.settings)):
        console.print(line)


@main.command("deliveries")
@click.argument("month", metavar="YYYY-MM|YYYY-Qn")
@click.option("--retry-failed", is_flag=True, help="Put failed deliveries back in the queue.")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows of 'not delivered' to list.",
)
@click.option(
    "--status",
    type=click.Choice(DELIVERY_STATUSES),
    help="List only the rows in this status (default: every row not sent).",
)
@format_option
@pass_app
def deliveries(
    app: App, month: str, retry_failed: bool, limit: int, status: str | None, fmt: str
) -> None:
    """Counts by status for MONTH and who did not get it, and why."""
    if retry_failed and fmt != "table":
        raise click.UsageError("--retry-failed prints a table: leave out --format")
    console = make_console()
    with session_factory(app.db())() as session:
        campaign = ledger.find_campaign(session, month)
        if campaign is None:
            raise SendError(f"{month} has not been sent or planned")
        if retry_failed:
            count = ledger.requeue_failed(session, campaign.id)
            session.commit()
            console.print(f"re-queued {count} failed deliveries: run `newsletter send {month}`")
        rows = ledger.not_delivered(session, campaign.id, limit, status)
        if fmt != "table":
            # Every field whole: a table cuts long addresses and errors (cron mail, scripts).
            records = [
                {
                    "email": row.email,
                    "status": row.status,
                    "attempts": row.attempts,
                    "error": row.last_error or "",
                }
                for row in rows
            ]
            print_records(records, fmt, ["email", "status", "attempts", "error"])
            return
        counts = ledger.status_counts(session, campaign.id)
        console.print(f"[bold]{month}[/bold] ({campaign.status}): {campaign.subject}")
        for name, count in sorted(counts.items()):
            console.print(f"  {name:<8} {count}")
        if rows:
            table = Table("email", "status", "attempts", "why")
            for row in rows:
                table.add_row(row.email, row.status, str(row.attempts), row.last_error or "-")
            console.print(table)
