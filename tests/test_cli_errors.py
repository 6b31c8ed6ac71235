"""Every command, given bad arguments or a database it cannot open, prints one line and fails.

Two tables cover the whole CLI: `BAD_ARGUMENTS` (per command, invocations that must be refused,
with the text the error must name) and `TYPICAL` (per command, a normal invocation, run against
databases that cannot be opened). A command added to the CLI without rows in both tables fails
`test_tables_cover_every_command`, so no command escapes the no-traceback rule.
"""

from __future__ import annotations

import mailbox
import os
import socket
import traceback
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from click.testing import Result
from conftest import write_config
from sqlalchemy.engine import make_url

from newsletter.cli import main

MONTH = "2025-01"  # a month of tests/fixtures/content

# {command path: [(arguments after the command path, text the one error line must contain)]}.
# "{site}" is a built archive folder, "{busy}" a port something else listens on, "{text}" a
# plain text file that is neither a mailbox nor a CSV nor a key.
BAD_ARGUMENTS: dict[str, list[tuple[list[str], str]]] = {
    "archive build": [(["/proc/x"], "/proc/x")],
    "archive serve": [
        (["{site}", "--port", "-1"], "--port"),
        (["{site}", "--port", "99999"], "--port"),
        (["{site}", "--host", "256.1.1.1"], "256.1.1.1"),
        (["{site}", "--port", "{busy}"], "{busy}"),
        (["/nonexistent/site"], "/nonexistent/site"),
    ],
    "bounces scan": [(["/nonexistent.mbox"], "/nonexistent.mbox"), (["{text}"], "notes.txt")],
    "bounces list": [(["--limit", "-1"], "--limit"), (["--format", "xml"], "--format")],
    "inbound scan": [(["/nonexistent.mbox"], "/nonexistent.mbox"), (["{text}"], "notes.txt")],
    "db upgrade": [(["9999"], "9999")],
    "db downgrade": [(["9999"], "9999")],
    "db current": [(["extra"], "extra")],
    "send": [
        (["nope"], "nope"),
        (["2099-01", "--dry-run"], "2099-01"),
        ([MONTH, "--topics", "Depression"], "--topics"),
        ([MONTH, "--take-over", "--no-wait", "--list", "no-such-list"], "no-such-list"),
    ],
    "plan": [
        (["nope"], "nope"),
        (["2099-01"], "2099-01"),
        ([MONTH, "--list", "no-such-list"], "no-such-list"),
    ],
    "deliveries": [(["nope"], "nope"), ([MONTH, "--limit", "-1"], "--limit")],
    "demo": [(["--subscribers", "/nonexistent.csv"], "/nonexistent.csv")],
    "dkim dns-record": [
        (["--selector", "s1", "--key-file", "/nonexistent.pem"], "/nonexistent.pem"),
        (["--selector", "s1", "--key-file", "{text}"], "notes.txt"),
        (["--selector", "bad selector", "--key-file", "{text}"], "bad selector"),
    ],
    "import feed": [
        (["/nonexistent.xml"], "/nonexistent.xml"),
        (["{text}"], "notes.txt"),
        (["{text}", "--write"], "notes.txt"),
    ],
    "issues list": [(["extra"], "extra")],
    "issues check": [(["nope"], "nope"), (["2099-01"], "2099-01")],
    "preview": [
        ([MONTH, "--out", "/nonexistent/dir/x.html"], "/nonexistent/dir"),
        ([MONTH, "--subscriber", "nobody@example.org"], "nobody@example.org"),
        ([MONTH, "--topics", "No such topic"], "No such topic"),
        ([MONTH, "--format", "pdf"], "--format"),
    ],
    "scheduler": [(["extra"], "extra")],
    "schedule show": [(["--count", "-1"], "--count")],
    "schedule add": [
        (["nope", "--at", "2099-01-01T10:00"], "nope"),
        ([MONTH, "--at", "not a time"], "not a time"),
    ],
    "schedule remove": [(["no-such-job"], "no-such-job")],
    "subscribers add": [
        (["not-an-address"], "not-an-address"),
        (["new@example.org", "--topics", "No such topic"], "No such topic"),
        (["new@example.org", "--list", "no-such-list"], "no-such-list"),
        (["new@example.org", "--status", "royal"], "--status"),
    ],
    "subscribers remove": [(["nobody@example.org", "--yes"], "nobody@example.org")],
    "subscribers set-status": [
        (["nobody@example.org", "active"], "nobody@example.org"),
        (["nobody@example.org", "royal"], "royal"),
    ],
    "subscribers unsubscribe": [(["nobody@example.org"], "nobody@example.org")],
    "subscribers forget": [(["nobody@example.org", "--yes"], "nobody@example.org")],
    "subscribers list": [(["--limit", "-1"], "--limit"), (["--status", "royal"], "--status")],
    "subscribers import": [(["/nonexistent.csv"], "/nonexistent.csv"), (["{text}"], "notes.txt")],
    "subscribers export": [(["--out", "/nonexistent/x.csv"], "/nonexistent")],
    "subscribers send-notices": [(["--retry-failed", "extra"], "extra")],
    "subscribers resend-confirmation": [
        (["nobody@example.org"], "nobody@example.org"),
        (["reader@example.org"], "reader@example.org"),  # active, not pending
    ],
    "summaries new": [
        (["nope", "--doi", "10.1037/a0019247"], "nope"),
        ([MONTH], "--from"),
        ([MONTH, "--doi", "10.1/x"], "10.1/x"),
        ([MONTH, "--from", "/nonexistent.bib"], "/nonexistent.bib"),
        ([MONTH, "--from", "{text}"], "notes.txt"),
        ([MONTH, "--doi", "10.1037/a0019247", "--slug", "Bad Slug"], "--slug"),
        ([MONTH, "--doi", "10.1037/a0019247", "--slug", "cbt-for-anxiety"], "cbt-for-anxiety"),
    ],
    "serve": [
        (["--port", "-1"], "--port"),
        (["--port", "99999"], "--port"),
        (["--host", "256.1.1.1"], "256.1.1.1"),
        (["--port", "{busy}"], "{busy}"),
    ],
    "admin hash-password": [(["--password", "short"], "password")],
    "admin add": [(["Bad Name!"], "Bad Name!"), (["ana", "--password-stdin"], "standard input")],
    "admin list": [(["extra"], "extra")],
    "admin remove": [(["nobody", "--yes"], "nobody")],
    "admin set-password": [(["nobody"], "nobody")],
    "worker": [(["--poll", "-1"], "--poll"), (["--month", "nope"], "nope")],
}

# {command path: a normal invocation, or None for a command that never opens the database}.
TYPICAL: dict[str, list[str] | None] = {
    # Without a database, `archive build` publishes only `public: true` months, and says so.
    "archive build": None,
    "archive serve": None,
    "bounces scan": ["{mbox}", "--dry-run"],
    "bounces list": [],
    "inbound scan": ["{mbox}", "--dry-run"],
    "db upgrade": [],
    "db downgrade": ["base"],
    "db current": [],
    "send": [MONTH, "--dry-run"],
    "plan": [MONTH],
    "deliveries": [MONTH],
    "demo": [],
    "dkim dns-record": None,
    "import feed": None,
    "issues list": [],
    "issues check": None,
    "preview": [MONTH, "--subscriber", "reader@example.org"],
    "scheduler": [],
    "schedule show": [],
    "schedule add": [MONTH, "--at", "2099-01-01T10:00"],
    "schedule remove": ["no-such-job"],
    "subscribers add": ["new@example.org"],
    "subscribers remove": ["reader@example.org", "--yes"],
    "subscribers set-status": ["reader@example.org", "active"],
    "subscribers unsubscribe": ["reader@example.org"],
    "subscribers forget": ["reader@example.org", "--yes"],
    "subscribers list": [],
    "subscribers import": ["{csv}", "--dry-run"],
    "subscribers export": [],
    "subscribers resend-confirmation": ["reader@example.org"],
    "subscribers send-notices": [],
    "summaries new": None,  # writes a content file; never opens the database
    "serve": ["--port", "{free}"],
    "admin hash-password": None,
    "admin add": ["ana", "--password-stdin"],
    "admin list": [],
    "admin remove": ["ana", "--yes"],
    "admin set-password": ["ana", "--password-stdin"],
    "worker": ["--once"],
}


def leaf_commands(group: click.Group = main, prefix: str = "") -> Iterator[str]:
    """Every runnable command, as the words one types after `newsletter`."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the root group imports its commands on demand
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from leaf_commands(command, f"{path} ")
        else:
            yield path


def test_tables_cover_every_command() -> None:
    commands = set(leaf_commands())
    assert commands - set(BAD_ARGUMENTS) == set(), "commands without bad-argument cases"
    assert commands - set(TYPICAL) == set(), "commands without a typical invocation"
    assert set(BAD_ARGUMENTS) | set(TYPICAL) <= commands, "cases for commands that are gone"


def assert_one_line_error(result: Result, names: str) -> None:
    """Failed with exit status 1 or 2, no traceback, and exactly one error line naming it."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        detail = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"traceback instead of an error line:\n{detail}")
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    # "Error: ..." from click; `issues check` reports its findings as "error   ..." lines.
    errors = [line for line in result.output.splitlines() if line.startswith(("Error:", "error "))]
    assert len(errors) == 1, result.output
    assert names in errors[0], errors[0]


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something is listening on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def site(tmp_path: Path, runner: CliRunner, busy_port: int) -> dict[str, str]:
    """A configured, migrated site with one subscriber, a built archive and a text file."""
    config = write_config(tmp_path)
    for args in (
        ["db", "upgrade"],
        ["subscribers", "add", "reader@example.org"],
        ["archive", "build", "--include-unsent", "--no-search", str(tmp_path / "site")],
    ):
        result = runner.invoke(main, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
    text = tmp_path / "notes.txt"
    text.write_text("Meeting notes: nothing here is mail, CSV or a key.\n", encoding="utf-8")
    return {
        "config": str(config),
        "site": str(tmp_path / "site"),
        "text": str(text),
        "busy": str(busy_port),
        "free": str(free_port()),
    }


def fill(args: list[str], values: dict[str, str]) -> list[str]:
    return [arg.format(**values) for arg in args]


@pytest.mark.parametrize(
    ("command", "args", "names"),
    [(command, args, names) for command, cases in BAD_ARGUMENTS.items() for args, names in cases],
    ids=lambda value: " ".join(value) if isinstance(value, list) else str(value),
)
def test_bad_arguments_give_one_error_line(
    runner: CliRunner, site: dict[str, str], command: str, args: list[str], names: str
) -> None:
    argv = ["--config", site["config"], *command.split(), *fill(args, site)]
    result = runner.invoke(main, argv, input="")
    assert_one_line_error(result, names.format(**site))


def unopenable_databases() -> list[object]:
    """Database URLs that cannot be opened: a SQLite file in a missing folder, a PostgreSQL
    server that is down, and (when the test server is configured) a missing database on it."""
    urls = [
        pytest.param("sqlite:///nodir/x.db", id="sqlite-nodir"),
        pytest.param("postgresql+psycopg://postgres@127.0.0.1:1/test", id="pg-down"),
    ]
    server = os.environ.get("NEWSLETTER_TEST_DATABASE_URL")
    if server:
        missing = make_url(server).set(database="newsletter_no_such_database")
        urls.append(pytest.param(missing.render_as_string(hide_password=False), id="pg-nodb"))
    return urls


@pytest.mark.parametrize("url", unopenable_databases())
@pytest.mark.parametrize(
    "command", [command for command, args in TYPICAL.items() if args is not None]
)
def test_unopenable_database_gives_one_error_line(
    runner: CliRunner, tmp_path: Path, command: str, url: str
) -> None:
    # Maildir: the demo refuses any other transport before it looks at the database.
    config = write_config(tmp_path, database={"url": url}, delivery={"transport": "maildir"})
    mbox = tmp_path / "returns.mbox"
    box = mailbox.mbox(mbox)
    box.add(b"From: mailer-daemon@example.org\nSubject: hello\n\nA message.\n")
    box.close()
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("email\nnew@example.org\n", encoding="utf-8")
    values = {"mbox": str(mbox), "csv": str(csv_file), "free": str(free_port())}
    args = fill(TYPICAL[command] or [], values)
    result = runner.invoke(main, ["--config", str(config), *command.split(), *args], input="")
    assert_one_line_error(result, "[database] url")


def test_errors_show_paths_relative_to_the_working_directory(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path)
    (tmp_path / "content" / "2031-01").mkdir()
    (tmp_path / "content" / "2031-01" / "broken.md").write_text("---\ntitle: [\n---\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["--config", str(config), "issues", "list"])
    result = runner.invoke(main, ["--config", str(config), "send", "2031-01", "--dry-run"])
    assert_one_line_error(result, "content/2031-01/broken.md")
    assert str(tmp_path) not in result.stderr


def test_relative_paths_leave_urls_and_other_folders_whole(monkeypatch, tmp_path: Path) -> None:
    from newsletter.cli.app import relative_paths

    monkeypatch.chdir(tmp_path)
    here = str(tmp_path)
    assert relative_paths(f"{here}/content/a.md: bad") == "content/a.md: bad"
    assert relative_paths(f"url sqlite:///{here}/x.db") == f"url sqlite:///{here}/x.db"
    assert relative_paths(f"{here}-other/a.md") == f"{here}-other/a.md"
    assert relative_paths(f"'{here}/a.md' and ({here}/b.md)") == "'a.md' and (b.md)"
