"""`newsletter demo`: the whole pipeline on the demo configuration, in one command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

from newsletter.cli.app import App
from newsletter.cli.app import main
from newsletter.cli.app import make_console
from newsletter.cli.app import pass_app
from newsletter.cli.send_commands import print_plan
from newsletter.cli.send_commands import print_report
from newsletter.content.reader import latest_month
from newsletter.content.reader import load_issue
from newsletter.sending.campaign import send_month
from newsletter.store import engine as db
from newsletter.store.import_export import import_csv
from newsletter.store.models import ACTIVE
from newsletter.store.subscribers import count_not_from
from newsletter.store.subscribers import count_subscribers
from newsletter.store.subscribers import ensure_lists

DEMO_SOURCE = "demo"  # the consent source of the subscribers the demo imports


@main.command("demo")
@click.option(
    "--subscribers",
    "csv_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="CSV of demo subscribers (default: demo/subscribers.csv next to the config).",
)
@pass_app
def demo(app: App, csv_path: str | None) -> None:
    """Migrate, load demo subscribers, send the newest month, and say where to look."""
    settings = app.settings
    console = make_console()
    # The demo mails its own made-up readers into a Maildir, never a real list: refuse any
    # other transport, and a database holding subscribers the demo did not add.
    if settings.delivery.transport != "maildir":
        raise click.ClickException(
            f"the demo only writes to a Maildir, but [delivery] transport is "
            f"{settings.delivery.transport!r} in {settings.config_path}: run it with the "
            'shipped config.toml (or a copy with transport = "maildir"); to send a real '
            "issue use `newsletter send`"
        )
    _demo_key(app, console)
    db.upgrade(app.engine)
    engine = app.db()
    path = csv_path or settings.base_dir / "demo" / "subscribers.csv"
    with db.session_factory(engine)() as session:
        others = count_not_from(session, DEMO_SOURCE)
        if others:
            raise click.ClickException(
                f"the database {settings.database.url} holds {others} subscriber(s) the demo "
                "did not add: the demo only runs on its own database (nothing was sent)"
            )
        ensure_lists(session, settings)
        if not count_subscribers(session):
            data = Path(path).read_bytes()
            imported = import_csv(session, settings, app.taxonomy, data, source=DEMO_SOURCE)
            console.print(f"imported {imported.added} demo subscribers from {path}")
        session.commit()
        active = count_subscribers(session, ACTIVE)
        total = count_subscribers(session)
    month = latest_month(settings.content.dir)
    issue = load_issue(settings.content.dir, month, app.taxonomy, settings.newsletter.name)
    console.print(
        f"subscribers: {total} ({active} active); newest issue: {month} — {issue.subject}"
    )
    result = send_month(engine, settings, issue)
    assert result.plan is not None and result.report is not None
    plan, report = result.plan, result.report
    print_plan(console, plan)
    print_report(console, report)
    where = settings.delivery.maildir if settings.delivery.transport == "maildir" else None
    console.print()
    skipped = plan.skipped_no_match + report.skipped
    console.print(
        f"[bold]variants rendered:[/bold] {report.variants_rendered}   "
        f"[bold]messages written:[/bold] {report.sent}   [bold]skipped:[/bold] {skipped}"
    )
    if where is not None:
        console.print(
            f"[bold]look here:[/bold] {where}/new/  (one file per message; open in any mail client)"
        )
    prog = _program_name()
    console.print(f"  {prog} deliveries {month}   who got it, who did not, why")
    console.print(f"  {prog} preview {month} --out preview.html")
    console.print(f"  {prog} archive build   the web archive of what was sent")
    console.print("  make serve   the web app: subscribe, preferences, admin")


def _demo_key(app: App, console: Console) -> None:
    """Without $NEWSLETTER_SECRET_KEY, a real key generated once into a file beside the
    database: the demo's links are signed with it, and `newsletter serve` reads it too."""
    settings = app.settings
    env = settings.secrets.secret_key_env
    if os.environ.get(env):
        return
    path = settings.secret_key_file()
    if path is not None and path.is_file():
        console.print(f"signing key: {path} (${env} is not set)")
        return
    path = settings.create_secret_key_file()
    console.print(
        f"generated a signing key in {path} (mode 0600): the demo and `newsletter serve` use it "
        f"while ${env} is not set"
    )


def _program_name() -> str:
    """How the user ran us: `.venv/bin/newsletter` from the project folder, else `newsletter`."""
    program = Path(sys.argv[0])
    if program.name != "newsletter" or "/" not in sys.argv[0]:
        return "newsletter"
    try:
        return str(program.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(program)
