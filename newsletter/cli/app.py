"""The root command group and the shared context every command receives.

Commands are thin: they load settings, call one function of the library, and print. Library
errors (`NewsletterError`) become clean messages with a non-zero exit.

Start-up is kept short (`newsletter --help` in a few tens of milliseconds): the root group
imports a command's module only when that command runs (`COMMANDS` below), and this module
imports settings, SQLAlchemy, rich, csv and json only when a command asks for them.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import os
import re
import signal
import sys
import warnings
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import click

from newsletter.errors import NewsletterError

if TYPE_CHECKING:
    import threading

    from rich.console import Console
    from sqlalchemy import Engine

    from newsletter.config import Settings
    from newsletter.content.taxonomy import Taxonomy

F = TypeVar("F", bound=Callable[..., Any])


class App:
    """Lazily loaded settings, engine and taxonomy for one CLI invocation."""

    def __init__(self, config_path: str | None, settings: Settings | None = None) -> None:
        self.config_path = config_path
        self._settings = settings
        self._engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from newsletter.config import load_settings

            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def engine(self) -> Engine:
        """The engine, without checking the schema (for `db upgrade`)."""
        if self._engine is None:
            from newsletter.store.engine import make_engine

            self._engine = make_engine(self.settings.database.url)
        return self._engine

    def db(self) -> Engine:
        """The engine of a database migrated to the newest schema."""
        from newsletter.store.engine import require_schema

        require_schema(self.engine)
        return self.engine

    @functools.cached_property
    def taxonomy(self) -> Taxonomy:
        from newsletter.content.taxonomy import taxonomy_from_settings

        return taxonomy_from_settings(self.settings)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


pass_app = click.make_pass_decorator(App)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # Library warnings (e.g. the development signing key) as one readable line on stderr.
    click.secho(f"warning: {message}", fg="yellow", err=True)


class NewsletterGroup(click.Group):
    """Turns library errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsletterError as error:
            raise click.ClickException(relative_paths(str(error))) from None
        except click.ClickException as error:
            # click types `message` as Final, yet it is a plain attribute read when printing.
            error.message = relative_paths(error.message)  # type: ignore[misc]
            raise
        except OSError as error:
            # A safety net for files named on the command line (an output folder that does not
            # exist, a read-only disk): one line naming the file. OS errors without a file name
            # are not the user's input and keep their traceback.
            if error.filename is None:
                raise
            raise click.ClickException(
                relative_paths(f"{error.filename}: {error.strerror}")
            ) from None


# Every top-level command: the module that defines it (imported when the command runs) and its
# one-line help for `newsletter --help` (tests/test_startup.py checks both against the modules).
COMMANDS: dict[str, tuple[str, str]] = {
    "admin": ("admin_commands", "Web admin helpers."),
    "archive": ("archive_commands", "Build the static web archive of every published issue."),
    "bounces": ("bounce_commands", "Bounce reports: record them and apply the bounce policy."),
    "db": ("db_commands", "Create or migrate the database schema."),
    "deliveries": (
        "send_commands",
        "Counts by status for MONTH and who did not get it, and why.",
    ),
    "demo": (
        "demo_command",
        "Migrate, load demo subscribers, send the newest month, and say where to look.",
    ),
    "dkim": ("dkim_commands", "DKIM: publish the signing key in DNS."),
    "import": ("import_commands", "Bring content in from elsewhere (a blog's old posts)."),
    "inbound": ("bounce_commands", "Mail received at the List-Unsubscribe mailto address."),
    "issues": ("issue_commands", "List the months in content/ and check one before sending."),
    "plan": (
        "send_commands",
        "Plan MONTH for `newsletter worker` without sending: the ledger rows `send` would write.",
    ),
    "preview": (
        "issue_commands",
        "Render MONTH as one reader would get it (default: the full issue).",
    ),
    "schedule": ("schedule_commands", "Show the monthly send times and manage one-off sends."),
    "scheduler": (
        "schedule_commands",
        "Run the scheduler in the foreground (logs to stdout; SIGTERM stops it cleanly).",
    ),
    "send": ("send_commands", "Send MONTH to every subscriber, cut to their topics."),
    "serve": (
        "web_commands",
        "Run the web app: subscribe, preferences, unsubscribe, admin and API.",
    ),
    "subscribers": (
        "subscriber_commands",
        "Add, remove, change, unsubscribe, forget, list, import and export subscribers.",
    ),
    "summaries": ("summary_commands", "Start summary files."),
    "worker": (
        "worker_commands",
        "Send planned campaigns; run any number of these against PostgreSQL.",
    ),
}


class LazyGroup(NewsletterGroup):
    """The root group: a command's module is imported when that command is looked up.

    Each module registers its commands on `main` with the usual decorators when imported, so
    a command is written as before; only `COMMANDS` must name it. `--help` lists every
    command from the table without importing any of them.
    """

    def __init__(self, *args: Any, lazy_commands: dict[str, tuple[str, str]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            module, _help = self.lazy_commands[cmd_name]
            # Without the garbage collector's passes over the objects that every import adds
            # (SQLAlchemy's, pydantic's): ~0.1-0.2 s of `newsletter send`'s start-up.
            collecting = gc.isenabled()
            gc.disable()
            try:
                importlib.import_module(f"{__package__}.{module}")  # registers it on `main`
            finally:
                if collecting:
                    gc.enable()
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, its help text from the table for commands not imported."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is not None:
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                # A stand-in command shortens the text exactly as the real one would.
                stand_in = click.Command(name, help=self.lazy_commands[name][1])
                rows.append((name, stand_in.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def relative_paths(message: str) -> str:
    """`message` with paths under the working directory shown relative to it, as typed.

    The library names files by absolute path (it cannot know where the user stands); the CLI
    shows `content/2026-11/a.md`, not `/srv/site/content/2026-11/a.md`. A path right after a
    slash (`sqlite:////srv/x.db`) is part of a URL and left whole.
    """
    here = str(Path.cwd())
    if here == os.sep:
        return message
    return re.sub(rf"(?<![\w/.]){re.escape(here)}{re.escape(os.sep)}", "", message)


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="NEWSLETTER_CONFIG",
    help="Configuration file (default: $NEWSLETTER_CONFIG, else ./config.toml).",
)
@click.version_option(package_name="newsletter")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """A monthly research-digest newsletter: content, subscribers, sending, archive."""
    warnings.showwarning = _show_warning
    if ctx.obj is None:
        ctx.obj = App(config_path)
    ctx.call_on_close(ctx.obj.close)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, message: str) -> Iterator[None]:
    """SIGTERM (a service manager) and SIGINT (Ctrl-C) set `stop` instead of killing us.

    Long-running commands check `stop` between messages, so what is in flight finishes and the
    ledger is written before they exit 0. `message` is printed to stderr with the signal name.
    """

    def request_stop(signum, _frame) -> None:
        click.echo(f"{signal.Signals(signum).name}: {message}", err=True)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="csv and json print every field whole, for scripts and cron mail.",
)


def print_records(records: list[dict[str, Any]], fmt: str, columns: list[str]) -> None:
    """Records as JSON or CSV on standard output (the non-table half of `format_option`)."""
    if fmt == "json":
        import json

        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=columns)
    writer.writeheader()
    writer.writerows(records)


# --- output helpers (issue 12: whole values off a terminal, nothing half-written) ------------


def is_terminal() -> bool:
    """Whether standard output is a terminal (rich's view, which honours FORCE_COLOR/TTY_*)."""
    from rich.console import Console

    return Console().is_terminal


def make_console() -> Console:
    """The console commands print through: off a terminal (cron mail, pipes) lines are never
    wrapped at 80 columns, so a long title or path stays on its line, whole."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console.soft_wrap = True
    return console


def print_table(
    columns: list[str], rows: Iterable[Iterable[Any]], *, footer: str | None = None
) -> None:
    """Rows as a rich table on a terminal; otherwise as tab-separated lines, header first.

    Off a terminal (cron mail, pipes, CliRunner) rich would fit the table into 80 columns and
    cut or fold addresses and diagnostics, so each row is one line with every value whole
    (quoted as CSV quotes when a value holds a tab, a quote or a line break). `footer` (a
    count) goes last, on a line of its own, in both cases.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    cells = [["" if value is None else str(value) for value in row] for row in rows]
    if not is_terminal():
        import csv

        writer = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(cells)
        if footer:
            click.echo(footer)
        return
    # Created here, not at import time, so it writes to the current stdout.
    console = Console(highlight=False)
    table = Table(*columns)
    for column in table.columns:
        column.overflow = "fold"  # a narrow terminal folds a long address, never cuts it
    for row in cells:
        table.add_row(*(Text(value) for value in row))  # Text: a "[b]" in a name is no markup
    console.print(table)
    if footer:
        console.print(Text(footer))


# Rich's HEAVY_HEAD box, drawn here: `issues list` runs on every prompt of an editor's shell,
# and importing rich's console costs more than the rest of the listing (bench/startup.py).
_BOX_TOP, _BOX_HEAD, _BOX_RULE, _BOX_ROW, _BOX_BOTTOM = "┏━┳┓", "┃ ┃┃", "┡━╇┩", "│ ││", "└─┴┘"


def console_width() -> int:
    """The width tables are fitted to: $COLUMNS, else the terminal's, else 80 (as rich)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if sys.stdout.isatty():
            return os.get_terminal_size(sys.stdout.fileno()).columns
    except (AttributeError, OSError, ValueError):
        pass
    return 80


def box_table(
    columns: list[str], rows: list[list[str]], *, width: int, styles: dict[tuple[int, int], str]
) -> list[str]:
    """The lines of a table drawn as rich draws `Table(*columns)`: a heavy header, cells padded
    by one space, wrapped at words to fit `width` (the widest column gives way first, down to
    its longest word; then words fold). `styles` maps (row, column) to a click colour."""
    import textwrap

    table = [columns, *rows]
    widths = [max(1, *(len(cell) for cell in column)) for column in zip(*table, strict=True)]
    longest_words = [
        max(1, *(len(word) for cell in column for word in cell.split()))
        for column in zip(*table, strict=True)
    ]
    room = width - 3 * len(columns) - 1  # a space each side of a cell, a rule between and around
    while sum(widths) > room:
        wide = [w if w > word else 0 for w, word in zip(widths, longest_words, strict=True)]
        if not any(wide):
            wide = [w if w > 1 else 0 for w in widths]
            if not any(wide):
                break
        widths[wide.index(max(wide))] -= 1

    def rule(box: str) -> str:
        return box[0] + box[2].join(box[1] * (w + 2) for w in widths) + box[3]

    def lines(cells: list[str], box: str, row: int | None) -> list[str]:
        parts = [
            textwrap.wrap(cell, w, break_on_hyphens=False) or [""]
            for cell, w in zip(cells, widths, strict=True)
        ]
        out = []
        for index in range(max(len(p) for p in parts)):
            shown = []
            for column, wrapped in enumerate(parts):
                text = (wrapped[index] if index < len(wrapped) else "").ljust(widths[column])
                if row is None:
                    text = click.style(text, bold=True)
                elif (row, column) in styles:
                    text = click.style(text, fg=styles[row, column])
                shown.append(f" {text} ")
            out.append(box[0] + box[2].join(shown) + box[3])
        return out

    drawn = [rule(_BOX_TOP), *lines(columns, _BOX_HEAD, None), rule(_BOX_RULE)]
    for number, cells in enumerate(rows):
        drawn += lines(cells, _BOX_ROW, number)
    return [*drawn, rule(_BOX_BOTTOM)]
