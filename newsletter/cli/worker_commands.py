"""`newsletter worker`: a sending process for installs with several workers."""

from __future__ import annotations

import logging
import threading

import click

from newsletter.cli.app import App
from newsletter.cli.app import main
from newsletter.cli.app import pass_app
from newsletter.cli.app import stop_on_signals
from newsletter.content.model import parse_month
from newsletter.content.roundup import is_quarter
from newsletter.errors import ContentError
from newsletter.sending.worker import run_worker


@main.command("worker")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option(
    "--poll",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between looks for work.",
)
@click.option(
    "--month",
    "months",
    multiple=True,
    callback=lambda _ctx, _param, values: [month_option(v) for v in values],
    help="Only these months, YYYY-MM (repeatable).",
)
@pass_app
def worker(app: App, once: bool, poll: float, months: tuple[str, ...]) -> None:
    """Send planned campaigns; run any number of these against PostgreSQL.

    SIGTERM or Ctrl-C drain: messages in flight finish, the ledger is written, exit 0.
    """
    app.settings.require_secret_key()  # its mail carries signed links: never the public key
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    engine = app.db()
    if engine.dialect.name == "sqlite":
        click.echo("SQLite: one worker at a time (use PostgreSQL to run several)", err=True)
    stop = threading.Event()
    with stop_on_signals(stop, "finishing the messages in flight"):
        sent = run_worker(
            engine,
            app.settings,
            app.taxonomy,
            stop=stop,
            once=once,
            poll=poll,
            months=list(months) or None,
        )
    click.echo(f"worker stopped; {sent} message(s) sent")


def month_option(value: str) -> str:
    """A `--month` value: YYYY-MM with a real month or a round-up's YYYY-Qn, else a usage
    error naming it."""
    if is_quarter(value):
        return value
    try:
        parse_month(value)
    except ContentError:
        raise click.BadParameter(
            f"{value!r}: expected YYYY-MM, e.g. 2026-11 (or a round-up, YYYY-Qn)"
        ) from None
    return value
