"""`newsletter admin add|list|remove|set-password`: the admins of the web app (`store.admins`).

Passwords come from a hidden prompt (typed twice) or, with `--password-stdin`, from the first
line of standard input: never from the command line, where `ps` and shell history would keep
them. Adding and removing an admin are written to the audit log (actor "cli").
"""

from __future__ import annotations

import os
import sys

import click

from newsletter.cli.app import App
from newsletter.cli.app import pass_app
from newsletter.cli.app import print_table
from newsletter.cli.web_commands import admin_group
from newsletter.store import admins
from newsletter.store import audit
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction

password_stdin = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)


def _legacy_hash(app: App) -> str:
    web = app.settings.web
    return os.environ.get(web.admin_password_hash_env, "") or web.admin_password_hash


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.UsageError("--password-stdin: standard input is empty")
        password = line.rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        return admins.check_password(password)
    except admins.AdminError as error:
        raise click.BadParameter(
            str(error).removeprefix("password: "), param_hint="password"
        ) from None


@admin_group.command("add")
@click.argument("name")
@password_stdin
@pass_app
def add(app: App, name: str, password_stdin: bool) -> None:
    """Add the admin NAME, who logs in with NAME and the password asked for."""
    engine = app.db()  # the database first: no password typed for nothing
    try:
        cleaned = admins.check_name(name)
    except admins.AdminError as error:
        raise click.BadParameter(str(error), param_hint="NAME") from None
    with session_factory(engine)() as session:
        if cleaned in {info.name for info in admins.list_admins(session)}:
            raise click.ClickException(f"there is already an admin named {cleaned!r}")
    password = _read_password(password_stdin)
    with transaction(engine) as session:
        admins.add_admin(session, cleaned, password)
        audit.record(session, "cli", "admin-add", cleaned)
    click.echo(f"added the admin {cleaned}: log in at /admin/login with that name")


@admin_group.command("set-password")
@click.argument("name")
@password_stdin
@pass_app
def set_password(app: App, name: str, password_stdin: bool) -> None:
    """Give the admin NAME a new password; their open sessions end."""
    engine = app.db()
    with session_factory(engine)() as session:
        admins.require_admin(session, name)
    password = _read_password(password_stdin)
    with transaction(engine) as session:
        admin = admins.set_password(session, name, password)
        audit.record(session, "cli", "admin-password", admin.name)
    click.echo(f"changed the password of {admin.name}; their sessions have ended")


@admin_group.command("list")
@pass_app
def list_(app: App) -> None:
    """The admins: name, when added, last login (times in UTC)."""
    with session_factory(app.db())() as session:
        found = admins.list_admins(session, _legacy_hash(app))

    def when(value) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value is not None else "never"

    rows = [
        (
            info.name,
            "[web] admin_password_hash" if info.legacy else when(info.created_at),
            "—" if info.legacy else when(info.last_login_at),
        )
        for info in found
    ]
    print_table(["name", "added", "last login"], rows, footer=f"{len(rows)} admin(s)")


@admin_group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def remove(app: App, name: str, yes: bool) -> None:
    """Remove the admin NAME: their sessions end at once; their audit entries stay."""
    with transaction(app.db()) as session:
        admin = admins.require_admin(session, name)
        if not yes:
            click.confirm(f"Remove the admin {admin.name} and end their sessions?", abort=True)
        removed = admin.name
        admins.remove_admin(session, removed)
        audit.record(session, "cli", "admin-remove", removed)
    click.echo(f"removed the admin {removed}")
