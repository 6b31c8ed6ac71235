"""`newsletter db ...`: schema migrations."""

from __future__ import annotations

import click

from newsletter.cli.app import App
from newsletter.cli.app import main
from newsletter.cli.app import pass_app
from newsletter.store import engine as db


@main.group("db")
def db_group() -> None:
    """Create or migrate the database schema."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@pass_app
def upgrade(app: App, revision: str) -> None:
    """Apply migrations (creates the SQLite file if needed)."""
    db.upgrade(app.engine, revision)
    click.echo(f"database at revision {db.current_revision(app.engine)}")


@db_group.command("downgrade")
@click.argument("revision")
@pass_app
def downgrade(app: App, revision: str) -> None:
    """Revert migrations down to REVISION ('base' drops every table)."""
    db.downgrade(app.engine, revision)
    click.echo(f"database at revision {db.current_revision(app.engine) or 'base'}")


@db_group.command("current")
@pass_app
def current(app: App) -> None:
    """Show the applied revision and the newest one."""
    click.echo(f"current: {db.current_revision(app.engine) or 'none'}")
    click.echo(f"head:    {db.head_revision(app.engine)}")
