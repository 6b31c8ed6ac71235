"""`newsletter send` and `newsletter deliveries`: the ledger-backed campaign commands."""

from __future__ import annotations

import click
from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeRemainingColumn
from rich.table import Table

from newsletter.cli.app import App
from newsletter.cli.app import main
from newsletter.cli.app import pass_app
from newsletter.cli.app import stop_on_signals
from newsletter.content.reader import load_issue
from newsletter.errors import SendError
from newsletter.sending.campaign import resume_campaign
from newsletter.sending.plan import PlanReport
from newsletter.sending.plan import plan_campaign
from newsletter.sending.runner import CampaignRunner
from newsletter.sending.runner import SendReport
from newsletter.sending.single import send_tests
from newsletter.store import ledger
from newsletter.store.engine import session_factory
from newsletter.transport import make_transport


def print_plan(console: Console, plan: PlanReport) -> None:
    """What a send is about to do."""
    console.print(f"[bold]{plan.month}[/bold]: audience {plan.audience} new subscriber(s)")
    if plan.existing:
        done = ", ".join(f"{n} {status}" for status, n in sorted(plan.existing.items()))
        console.print(f"  already in the ledger: {done}")
    for variant, count in sorted(plan.variants.items()):
        console.print(f"  variant {variant or '(full)'}: {count}")
    if plan.skipped_no_match:
        console.print(f"  skipped (no matching topics): {plan.skipped_no_match}")
    console.print(f"  messages to send: {plan.to_send}")


def print_report(console: Console, report: SendReport) -> None:
    """The summary of a run."""
    console.print(
        f"sent {report.sent}, failed {report.failed}, skipped {report.skipped}, "
        f"retries scheduled {report.retried}; {report.variants_rendered} variant(s) rendered "
        f"in {report.elapsed:.1f}s"
    )
    if report.throttled:
        console.print(f"the server asked us to slow down {report.throttled} time(s)")
    if report.finished:
        state = "complete"
    elif report.paused:
        state = (
            f"[red]paused[/red] — {report.stopped_reason}\n"
            f"fix the cause, then run `newsletter send {report.month} --resume`"
        )
    else:
        state = "not finished: run the same command to resume"
    console.print(f"campaign {report.month}: {state}")


def run_with_progress(runner: CampaignRunner, total: int, console: Console) -> SendReport:
    """Run a campaign with a rich progress bar."""
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    draining = stop_on_signals(runner.stop, "finishing the messages in flight…")
    with Progress(*columns, console=console, transient=False) as progress, draining:
        task = progress.add_task("sending", total=max(total, 1))
        runner.on_progress = lambda _report, step: progress.advance(task, step)
        return runner.run()


@main.command("send")
@click.argument("month", metavar="YYYY-MM")
@click.option("--list", "lists", multiple=True, help="Send to this list (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; change nothing.")
@click.option("--test-to", multiple=True, metavar="ADDR", help="Send a test to ADDR only.")
@click.option("--topics", help="With --test-to: the topics to cut the test issue to.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--resume", is_flag=True, help="Continue a send that paused itself after errors.")
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
) -> None:
    """Send MONTH to every subscriber, cut to their topics. Safe to re-run: resumes."""
    settings = app.settings
    console = Console()
    issue = load_issue(settings.content.dir, month, app.taxonomy, settings.newsletter.name)
    if test_to:
        send_test(app, issue, test_to, topics, console)
        return
    engine = app.db()
    _ensure_lists(app)
    if resume and resume_campaign(engine, month):
        console.print(f"{month}: pause cleared, resuming")
    plan = plan_campaign(engine, settings, issue, lists or None, dry_run=True)
    print_plan(console, plan)
    if dry_run:
        return
    if plan.to_send == 0:
        plan_campaign(engine, settings, issue, lists or None)  # record skipped rows
        console.print("nothing to send")
        return
    if not yes:
        click.confirm(f"Send {issue.subject!r} now?", abort=True)
    plan = plan_campaign(engine, settings, issue, lists or None)
    runner = CampaignRunner(engine, settings, issue)
    report = run_with_progress(runner, plan.to_send, console)
    print_report(console, report)
    if report.paused:
        raise click.exceptions.Exit(1)


def send_test(app: App, issue, addresses, topics: str | None, console: Console) -> None:
    """Send the issue to test addresses, outside the ledger, subject marked [TEST]."""
    from newsletter.store.subscribers import parse_topics

    chosen = parse_topics(topics.replace(",", ";"), app.taxonomy) if topics else None
    for line in send_tests(app.settings, issue, addresses, chosen, make_transport(app.settings)):
        console.print(line)


def _ensure_lists(app: App) -> None:
    from newsletter.store.subscribers import ensure_lists

    with session_factory(app.db())() as session:
        ensure_lists(session, app.settings)
        session.commit()


@main.command("deliveries")
@click.argument("month", metavar="YYYY-MM")
@click.option("--retry-failed", is_flag=True, help="Put failed deliveries back in the queue.")
@click.option("--limit", default=50, show_default=True, help="Rows of 'not delivered' to list.")
@pass_app
def deliveries(app: App, month: str, retry_failed: bool, limit: int) -> None:
    """Counts by status for MONTH and who did not get it, and why."""
    console = Console()
    with session_factory(app.db())() as session:
        campaign = ledger.find_campaign(session, month)
        if campaign is None:
            raise SendError(f"{month} has not been sent or planned")
        if retry_failed:
            count = ledger.requeue_failed(session, campaign.id)
            session.commit()
            console.print(f"re-queued {count} failed deliveries: run `newsletter send {month}`")
        counts = ledger.status_counts(session, campaign.id)
        console.print(f"[bold]{month}[/bold] ({campaign.status}): {campaign.subject}")
        for status, count in sorted(counts.items()):
            console.print(f"  {status:<8} {count}")
        rows = ledger.not_delivered(session, campaign.id, limit)
        if rows:
            table = Table("email", "status", "attempts", "why")
            for row in rows:
                table.add_row(row.email, row.status, str(row.attempts), row.last_error or "-")
            console.print(table)
