"""`newsletter scheduler` (the long-running process) and `newsletter schedule …` (its queue)."""

from __future__ import annotations

import logging
import sys
import threading

import click

from newsletter.cli.app import App
from newsletter.cli.app import main
from newsletter.cli.app import pass_app
from newsletter.cli.app import stop_on_signals
from newsletter.config import find_config
from newsletter.content.reader import load_issue
from newsletter.content.roundup import is_quarter
from newsletter.content.roundup import quarter_label
from newsletter.content.roundup import round_up_due
from newsletter.errors import ContentError
from newsletter.errors import SchedulerLockedError
from newsletter.render.environment import plural
from newsletter.scheduling import service
from newsletter.scheduling.slots import MonthlySlot
from newsletter.scheduling.slots import month_for_run
from newsletter.scheduling.slots import next_monthly_runs
from newsletter.store.models import utcnow

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _config_path(app: App) -> str:
    # Jobs store an absolute path: the scheduler may run from another working directory.
    return str(find_config(app.config_path).resolve())


@main.command("scheduler")
@click.option("--verbose", "-v", is_flag=True, help="Also log APScheduler's debug messages.")
@pass_app
def scheduler_command(app: App, verbose: bool) -> None:
    """Run the scheduler in the foreground (logs to stdout; SIGTERM stops it cleanly).

    Sends each month's issue at the [schedule] slot and the one-off sends queued with
    `newsletter schedule add`. Only one scheduler may run per database.
    """
    settings = app.settings
    settings.require_secret_key()  # its mail carries signed links: never the public key
    logging.basicConfig(
        stream=sys.stdout, level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT
    )
    if not verbose:  # the schema check's migration context is chatty at INFO
        logging.getLogger("alembic").setLevel(logging.WARNING)
    stop = threading.Event()
    try:
        with stop_on_signals(stop, "stopping the scheduler (a send in progress drains first)"):
            service.run_scheduler(settings, _config_path(app), stop, engine=app.db())
    except SchedulerLockedError as error:
        raise click.ClickException(str(error)) from None


@main.group("schedule")
def schedule_group() -> None:
    """Show the monthly send times and manage one-off sends."""


@schedule_group.command("show")
@click.option(
    "--count",
    default=3,
    show_default=True,
    type=click.IntRange(min=1, max=120),
    help="How many monthly runs to list.",
)
@pass_app
def show(app: App, count: int) -> None:
    """The next monthly runs (in the configured zone) and the queued one-off sends."""
    settings = app.settings
    slot = MonthlySlot.from_config(settings.schedule)
    now = utcnow()
    click.echo(f"monthly send: {slot.describe()}")
    click.echo(
        f"  mode {settings.schedule.mode}, misfire_grace {settings.schedule.misfire_grace}, "
        f"on_missing {settings.schedule.on_missing}"
    )
    for run in next_monthly_runs(slot, now, count):
        month = month_for_run(slot, run)
        line = f"  {run:%a %Y-%m-%d %H:%M %Z}  sends {month} ({_content_state(app, month)})"
        quarter = round_up_due(month)
        click.echo(line + (f", then the {quarter} round-up" if quarter else ""))
    with service.job_store(settings, app.db()) as scheduler:
        stored = service.monthly_next_run(scheduler)
        queued = service.one_offs(scheduler)
    if stored is None:
        click.echo("  (the scheduler has not run yet: start it with `newsletter scheduler`)")
    click.echo("one-off sends:" if queued else "one-off sends: none queued")
    for one in queued:
        what = f"{one.month} ({_round_up_label(one.month)})" if is_quarter(one.month) else one.month
        click.echo(f"  {one.id}  {one.run_time:%a %Y-%m-%d %H:%M %Z}  sends {what}")


def _round_up_label(quarter: str) -> str:
    return f"the quarterly round-up of {quarter_label(quarter)}"


def _content_state(app: App, month: str) -> str:
    settings = app.settings
    try:
        issue = load_issue(settings.content.dir, month, app.taxonomy, settings.newsletter.name)
    except ContentError as error:
        if not (settings.content.dir / month).is_dir():
            return "no content yet"
        return f"content has errors: {error}"
    return f"{plural(len(issue.summaries), 'summary', 'summaries')} ready"


@schedule_group.command("add")
@click.argument("month", metavar="YYYY-MM|YYYY-Qn")
@click.option(
    "--at",
    "at_text",
    required=True,
    metavar='"YYYY-MM-DD HH:MM"',
    help="When to send, local time in [schedule] timezone.",
)
@pass_app
def add(app: App, month: str, at_text: str) -> None:
    """Queue a one-off send of MONTH; the running scheduler sends it at --at.

    A quarter (2026-Q4) queues that quarter's round-up, sent to the readers who chose a
    quarterly round-up (and the summaries monthly readers missed while quarterly).
    """
    settings = app.settings
    zone = MonthlySlot.from_config(settings.schedule).zone
    at = service.parse_local_time(at_text, zone)
    with service.job_store(settings, app.db()) as scheduler:
        one = service.add_one_off(scheduler, settings, _config_path(app), month, at)
    what = f"{one.month} ({_round_up_label(one.month)})" if is_quarter(one.month) else one.month
    click.echo(f"queued {one.id}: {what} at {one.run_time:%a %Y-%m-%d %H:%M %Z}")
    click.echo(
        f"the running `newsletter scheduler` sees it within {service.WAKE_SECONDS:.0f} seconds"
    )


@schedule_group.command("remove")
@click.argument("job_id", metavar="ID")
@pass_app
def remove(app: App, job_id: str) -> None:
    """Remove a queued one-off send (IDs as listed by `newsletter schedule show`)."""
    with service.job_store(app.settings, app.db()) as scheduler:
        one = service.remove_one_off(scheduler, job_id)
    click.echo(f"removed {one.id} ({one.month} at {one.run_time:%Y-%m-%d %H:%M %Z})")
