"""`newsletter subscribers ...`: add, remove, change status, unsubscribe, forget, list, import and
export subscribers.

Each command opens a transaction, calls one function of `newsletter.store.subscribers` (the
subscriber service, where every rule lives), and prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

import click
from sqlalchemy.orm import Session

from newsletter.cli.app import App
from newsletter.cli.app import format_option
from newsletter.cli.app import main
from newsletter.cli.app import pass_app
from newsletter.cli.app import print_table
from newsletter.errors import ImportFileError
from newsletter.errors import RowsRejected
from newsletter.paths import output_file
from newsletter.store import audit
from newsletter.store import import_export
from newsletter.store import subscribers as api
from newsletter.store.engine import transaction
from newsletter.store.models import ACTIVE
from newsletter.store.models import SUBSCRIBER_STATUSES
from newsletter.store.models import Subscriber


@main.group("subscribers")
def subscribers_group() -> None:
    """Add, remove, change, unsubscribe, forget, list, import and export subscribers."""


def _describe(subscriber: Subscriber) -> str:
    topics = subscriber.topic_slugs
    shown = "all" if topics is None else ", ".join(sorted(topics)) or "none"
    if subscriber.excluded_slugs:
        shown += " except " + ", ".join(sorted(subscriber.excluded_slugs))
    lists = ", ".join(api.subscribed_lists(subscriber)) or "none"
    return f"{subscriber.email} ({subscriber.status}; topics: {shown}; lists: {lists})"


@subscribers_group.command("add")
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name.")
@click.option(
    "--topics",
    default="*",
    show_default=True,
    help='Topic labels or slugs separated by ";", or "*" for all topics.',
)
@click.option(
    "--list",
    "lists",
    multiple=True,
    metavar="SLUG",
    help="A list to subscribe to (repeatable; default: the default list).",
)
@click.option(
    "--status",
    type=click.Choice(api.NEW_STATUSES),
    default=ACTIVE,
    show_default=True,
    help="active (consent already given) or pending (awaiting confirmation).",
)
@pass_app
def add(app: App, email: str, name: str, topics: str, lists: tuple[str, ...], status: str) -> None:
    """Add a subscriber with address EMAIL (`--status pending`: email the confirmation link)."""
    if status == api.PENDING:  # before the record: a key error must not leave it half-added
        app.settings.mail_signing_key()
    with transaction(app.db()) as session:
        subscriber = api.add_subscriber(
            session,
            app.settings,
            app.taxonomy,
            email,
            name=name,
            topics=topics,
            lists=list(lists) or None,
            status=status,
            source="cli",
        )
        click.echo(f"added {_describe(subscriber)}")
        address = subscriber.email
    if status == api.PENDING:  # double opt-in, as on the web: they get the confirmation link
        _send_confirmation(app, address)


@subscribers_group.command("remove")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def remove(app: App, email: str, yes: bool) -> None:
    """Delete the subscriber EMAIL with their preferences (not the same as unsubscribing)."""
    with transaction(app.db()) as session:
        subscriber = api.require_subscriber(session, email)
        if not yes:
            click.confirm(f"Delete {subscriber.email} and their preferences?", abort=True)
        api.remove_subscriber(session, subscriber.email)
        click.echo(f"removed {subscriber.email}")


@subscribers_group.command("set-status")
@click.argument("email")
@click.argument("status", type=click.Choice(SUBSCRIBER_STATUSES), metavar="STATUS")
@pass_app
def set_status(app: App, email: str, status: str) -> None:
    """Change the status of the subscriber EMAIL to STATUS, as the web admin does.

    STATUS is pending, active, unsubscribed, bounced or complained. `unsubscribed` also leaves
    every list; `active` counts as confirmed now. Only active subscribers are mailed.
    """
    with transaction(app.db()) as session:
        subscriber = api.require_subscriber(session, email)
        before = subscriber.status
        api.change_status(session, subscriber, status)
        if before == subscriber.status:
            click.echo(f"{subscriber.email} is already {before}")
        else:
            # An admin's change, logged as the admin page's is (counted for no issue).
            detail = f"status {before} → {subscriber.status}"
            audit.record(session, "cli", "edit-subscriber", f"subscriber {subscriber.id}", detail)
            click.echo(f"{subscriber.email} is now {subscriber.status} (was {before})")


@subscribers_group.command("unsubscribe")
@click.argument("email")
@click.option(
    "--list",
    "list_slug",
    metavar="SLUG",
    help="Leave only this list (default: every list, status unsubscribed).",
)
@pass_app
def unsubscribe(app: App, email: str, list_slug: str | None) -> None:
    """Unsubscribe EMAIL from every list, or from one list with --list.

    The record stays (with its consent history); use `forget` to delete it. It is an admin's
    action: written to the audit log (actor "cli"), and counted for no issue in its report.
    """
    with transaction(app.db()) as session:
        subscriber = api.require_subscriber(session, email)
        changed = api.unsubscribe(session, subscriber, list_slug)
        where = f"the list {list_slug}" if list_slug else "every list"
        if changed:
            audit.record(session, "cli", "unsubscribe", f"subscriber {subscriber.id}", where)
            click.echo(f"unsubscribed {subscriber.email} from {where}")
        else:
            click.echo(f"{subscriber.email} was already unsubscribed from {where}")


@subscribers_group.command("forget")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def forget(app: App, email: str, yes: bool) -> None:
    """Forget EMAIL, as "forget me" in the preference center does.

    Deletes the subscriber, their preferences and bounce records, and the address from their
    delivery records; keeps only a hash of the address so it is never mailed (or added) again.
    """
    with transaction(app.db()) as session:
        subscriber = api.require_subscriber(session, email)
        if not yes:
            click.confirm(
                f"Forget {subscriber.email}: delete everything about them and never mail "
                "the address again?",
                abort=True,
            )
        address = subscriber.email
        api.forget_subscriber(session, subscriber)
        click.echo(
            f"forgot {address} (only a hash of the address is kept, so it is never mailed again)"
        )


@subscribers_group.command("list")
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only this status.")
@click.option("--list", "list_slug", metavar="SLUG", help="Only subscribers of this list.")
@click.option("--topic", help="Only subscribers who get this topic (label or slug).")
@click.option("--search", help="Part of the address or name (any case).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@format_option
@pass_app
def list_(
    app: App,
    status: str | None,
    list_slug: str | None,
    topic: str | None,
    search: str | None,
    limit: int | None,
    fmt: str,
) -> None:
    """List subscribers."""
    topic_slug = app.taxonomy.topics.get(topic).slug if topic else None
    with transaction(app.db()) as session:
        if list_slug is not None:
            api.require_list(session, app.settings, list_slug)
        found = api.query_subscribers(
            session,
            status=status,
            list_slug=list_slug,
            topic=topic_slug,
            search=search,
            limit=limit,
        )
        if fmt == "csv":
            import_export.write_csv(sys.stdout, found)
            return
        records = [import_export.export_record(s) for s in found]
    if fmt == "json":
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
    else:
        _print_table(records)


def _topics_shown(topics: str | list[str], excluded: list[str]) -> str:
    if topics != api.ALL_TOPICS:
        return ", ".join(topics)
    return "all" + (" except " + ", ".join(excluded) if excluded else "")


def _print_table(records: list[dict]) -> None:
    print_table(
        ["Email", "Name", "Status", "Topics", "Lists", "Since"],
        (
            [
                record["email"],
                record["name"],
                record["status"],
                _topics_shown(record["topics"], record.get("excluded_topics", [])),
                ", ".join(record["lists"]),
                (record["created_at"] or "")[:10],
            ]
            for record in records
        ),
        footer=f"{len(records)} subscriber{'' if len(records) == 1 else 's'}",
    )


@subscribers_group.command("import")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    help="The file's format (default: by its extension, else by its content).",
)
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows, report the others.")
@click.option(
    "--update-existing",
    is_flag=True,
    help="Update addresses already present (blank cells keep the stored value).",
)
@click.option("--dry-run", is_flag=True, help="Check the file and report; write nothing.")
@pass_app
def import_(
    app: App,
    file: IO[bytes],
    fmt: str | None,
    skip_invalid: bool,
    update_existing: bool,
    dry_run: bool,
) -> None:
    """Import subscribers from a UTF-8 CSV FILE, or a JSON export ('-' for stdin).

    Columns: email (required), name, topics, lists, status, and the consent record that an
    export writes (created_at, confirmed_at, unsubscribed_at, consent_source, consent_ip).
    Topics are labels or slugs separated by ";" ("*" or empty: all topics); lists are slugs
    separated by ";" ("-slug": a list they left; "-": no list; empty: the default list);
    status is active (default), pending, unsubscribed, bounced or complained. With
    --update-existing a blank cell keeps the stored value, and the consent record of an
    existing subscriber is never rewritten. Nothing is written when a row is rejected, unless
    --skip-invalid.
    """
    name = getattr(file, "name", None)
    shown = "standard input" if name in (None, "-", "<stdin>") else str(name)
    try:
        text = import_export.decode_csv(file.read())
    except ImportFileError as error:
        raise click.ClickException(f"{shown}: {error}") from None
    with transaction(app.db()) as session:
        try:
            report = import_export.import_subscribers(
                session,
                app.settings,
                app.taxonomy,
                text,
                fmt=fmt,
                filename=name,
                skip_invalid=skip_invalid,
                update_existing=update_existing,
                dry_run=dry_run,
            )
        except ImportFileError as error:
            # "N of M rows rejected": list the rows. Otherwise the file itself is unusable
            # (header, encoding) and the message says it all.
            if isinstance(error, RowsRejected):
                for line, reason in error.rejected:
                    click.echo(f"line {line}: {reason}", err=True)
                raise click.ClickException(
                    f"{shown}: {error}; nothing was imported "
                    "(use --skip-invalid to import the valid rows)"
                ) from None
            raise click.ClickException(f"{shown}: {error}") from None
    prefix = "dry run: would have " if dry_run else ""
    click.echo(
        f"{prefix}added {report.added}, updated {report.updated}, "
        f"skipped {report.skipped_existing} existing, rejected {len(report.rejected)}"
    )
    for line, reason in report.rejected:
        click.echo(f"line {line}: {reason}")


@subscribers_group.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout (replaced whole, or left as it was).",
)
@pass_app
def export(app: App, fmt: str, out: Path | None) -> None:
    """Export every subscriber with their consent record (reads back with `subscribers
    import`: an export imported into an empty database exports as the same file)."""
    with transaction(app.db()) as session:
        if out is None:
            count = _export(session, fmt, sys.stdout)
        else:
            with output_file(out) as stream:
                count = _export(session, fmt, stream)
    if out is not None:
        click.echo(f"exported {count} subscriber{'' if count == 1 else 's'} to {out}")


def _export(session: Session, fmt: str, stream: IO[str]) -> int:
    if fmt == "json":
        records = import_export.export_json(session)
        stream.write(json.dumps(records, indent=2, ensure_ascii=False) + "\n")
        return len(records)
    return import_export.export_csv(session, stream)


@subscribers_group.command("send-notices")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Also try again the emails given up on (refused, or failing too many times).",
)
@pass_app
def send_notices(app: App, retry_failed: bool) -> None:
    """Send the transactional emails waiting in the outbox now (confirmations, links, welcome
    notes that a stopped `serve` left; `serve` also sends them when it starts)."""
    from newsletter.sending.notices import send_outbox

    click.echo(send_outbox(app.settings, app.taxonomy, app.db(), retry_failed=retry_failed))


@subscribers_group.command("resend-confirmation")
@click.argument("email")
@pass_app
def resend_confirmation(app: App, email: str) -> None:
    """Email the pending subscriber EMAIL a new confirmation link (the web's confirmation)."""
    _send_confirmation(app, email)


def _send_confirmation(app: App, email: str) -> None:
    """The web's confirmation mail (`sending.notices`); a failed send names the way to retry."""
    from newsletter.errors import TransportError
    from newsletter.sending.notices import send_confirmation

    try:
        click.echo(send_confirmation(app.settings, app.taxonomy, app.db(), email))
    except TransportError as error:
        raise click.ClickException(
            f"could not send the confirmation link to {email}: {error} "
            f"(try again with `newsletter subscribers resend-confirmation {email}`)"
        ) from None
