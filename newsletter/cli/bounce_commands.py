"""`newsletter bounces ...` and `newsletter inbound scan`: read mailboxes of bounce reports
and unsubscribe requests. Each command calls one function of `newsletter.returns.bounces` or
`newsletter.returns.unsubscribe` and prints its report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from newsletter.cli.app import App
from newsletter.cli.app import format_option
from newsletter.cli.app import main
from newsletter.cli.app import pass_app
from newsletter.cli.app import print_records
from newsletter.cli.app import print_table
from newsletter.returns import bounces
from newsletter.returns import unsubscribe as inbound
from newsletter.store.bounces import list_bounces
from newsletter.store.engine import transaction

_PATH = click.Path(exists=True, path_type=Path)


def _console() -> Console:
    # Wide and unstyled when not a terminal: reports are read by people and by scripts.
    return Console(highlight=False, soft_wrap=True)


@main.group("bounces")
def bounces_group() -> None:
    """Bounce reports: record them and apply the bounce policy."""


@bounces_group.command("scan")
@click.argument("path", type=_PATH)
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@pass_app
def bounces_scan(app: App, path: Path, dry_run: bool) -> None:
    """Read the bounce reports in PATH (a Maildir or an mbox file) and apply the policy."""
    # flufl.bounce logs a traceback whenever one of its heuristics trips on malformed mail;
    # the scan carries on with its own reading of the report, so keep the output readable.
    logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
    report = bounces.scan(path, app.settings, app.db(), dry_run=dry_run)
    console = _console()
    prefix = "dry run: " if dry_run else ""
    console.print(
        f"{prefix}{report.messages} message(s): {report.hard} hard, {report.soft} soft "
        f"bounce(s) recorded, {report.duplicates} already recorded, "
        f"{len(report.ignored)} ignored"
    )
    for item in report.recorded:
        code = f" {item.status}" if item.status else ""
        note = " (VERP)" if item.by == "verp" else ""
        if item.subscriber_id is None:
            note = " (not a subscriber)"
        console.print(f"  {item.key}: {item.kind}{code} {escape(item.email)}{note}")
    for key, reason in report.ignored:
        console.print(f"  {key}: ignored: {escape(reason)}")
    if report.bounced:
        verb = "would be bounced" if dry_run else "now bounced"
        console.print(f"{verb}: {', '.join(report.bounced)}")


@bounces_group.command("list")
@click.option("--email", "email_address", metavar="E", help="Only bounces of this address.")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="At most this many, newest first.",
)
@format_option
@pass_app
def bounces_list(app: App, email_address: str | None, limit: int, fmt: str) -> None:
    """Recorded bounces, newest first (off a terminal, one tab-separated line each)."""
    with transaction(app.db()) as session:
        rows = list_bounces(session, email_address, limit)
        records: list[dict[str, Any]] = [
            {
                "received_at": row.received_at.isoformat(timespec="seconds"),
                "email": row.email,
                "kind": row.kind,
                "status": row.status_code,
                "diagnostic": row.diagnostic,
                "source": row.source,
                "subscriber_id": row.subscriber_id,
                "message_id": row.message_id,
            }
            for row in rows
        ]
    if fmt != "table":
        print_records(records, fmt, list(_BOUNCE_COLUMNS))
        return
    if not records:
        click.echo("no bounces recorded")
        return
    print_table(
        ["received", "email", "kind", "status", "diagnostic", "source"],
        (
            [
                record["received_at"][:16].replace("T", " "),
                record["email"],
                record["kind"],
                record["status"] or "-",
                record["diagnostic"] or "-",
                record["source"],
            ]
            for record in records
        ),
    )


_BOUNCE_COLUMNS = (
    "received_at",
    "email",
    "kind",
    "status",
    "diagnostic",
    "source",
    "subscriber_id",
    "message_id",
)


@main.group("inbound")
def inbound_group() -> None:
    """Mail received at the List-Unsubscribe mailto address."""


@inbound_group.command("scan")
@click.argument("path", type=_PATH)
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@pass_app
def inbound_scan(app: App, path: Path, dry_run: bool) -> None:
    """Unsubscribe the senders of the unsubscribe requests in PATH (a Maildir or an mbox)."""
    report = inbound.scan(path, app.settings, app.db(), dry_run=dry_run)
    console = _console()
    prefix = "dry run: " if dry_run else ""
    verb = "would unsubscribe" if dry_run else "unsubscribed"
    console.print(
        f"{prefix}{report.messages} message(s): {len(report.unsubscribed)} {verb}, "
        f"{len(report.already)} already off the list, {len(report.ignored)} ignored"
    )
    for key, address, how in report.unsubscribed:
        console.print(f"  {key}: {verb} {escape(address)} (by {how})")
    for key, address, state in report.already:
        console.print(f"  {key}: {escape(address)} is already {state}")
    for key, reason in report.ignored:
        console.print(f"  {key}: ignored: {escape(reason)}")
