"""`newsletter issues ...` and `newsletter preview`: look at content before sending it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from newsletter.cli.app import App
from newsletter.cli.app import box_table
from newsletter.cli.app import console_width
from newsletter.cli.app import main
from newsletter.cli.app import pass_app
from newsletter.cli.app import relative_paths
from newsletter.content.reader import list_months
from newsletter.content.reader import misnamed_months
from newsletter.content.roundup import load_campaign_issue
from newsletter.errors import ContentError
from newsletter.errors import ContentProblems
from newsletter.paths import output_file

# Rendering, checks and the subscriber service are imported by the commands that use them:
# `issues list` runs on every shell prompt of an editor and should start in a blink.


class MonthArgument(click.ParamType):
    """A month as YYYY-MM, also as tab completion gives it: `2026-11/`, `content/2026-11`.

    A path must be a folder of the content folder (else it would name another site's month);
    the month's own form is checked where it is read (`parse_month`).
    """

    name = "month"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        text = str(value).strip()
        bare = text.rstrip("/")
        if "/" not in bare:
            return bare or text
        app = ctx.find_object(App) if ctx is not None else None
        if app is not None:
            content = Path(app.settings.content.dir).resolve()
            if Path(bare).resolve().parent != content:
                self.fail(f"{text}: not a month folder of the content folder {content}", param)
        return Path(bare).name


MONTH = click.argument("month", metavar="YYYY-MM", type=MonthArgument())


@main.group("issues")
def issues_group() -> None:
    """List the months in content/ and check one before sending."""


@issues_group.command("list")
@pass_app
def list_issues(app: App) -> None:
    """Months, summary counts and sent state."""
    settings = app.settings
    for name, meant in misnamed_months(settings.content.dir):
        folder = Path(settings.content.dir) / name
        advice = f"rename it to {meant}" if meant else "its month must be 01 to 12"
        click.secho(
            f"warning: {folder}: looks like a month but is not named YYYY-MM (e.g. 2026-11), "
            f"so it is ignored: {advice}",
            fg="yellow",
            err=True,
        )
    rows: list[list[str]] = []
    errors: dict[tuple[int, int], str] = {}
    states = _campaign_states(app)
    for month in list_months(settings.content.dir):
        try:
            issue = load_campaign_issue(
                settings.content.dir, month, app.taxonomy, settings.newsletter.name
            )
            count, subject = str(len(issue.summaries)), issue.subject
        except ContentError as error:
            count, subject = "?", _short_problem(error, month)
            errors[len(rows), 2] = "red"
        state = "not sent"
        if month in states:
            status, counts = states[month]
            done = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            state = f"{status}: {done}" if done else status
        rows.append([month, count, subject, state])
    columns = ["month", "summaries", "subject", "state"]
    for line in box_table(columns, rows, width=console_width(), styles=errors):
        click.echo(line)


def _campaign_states(app: App) -> dict[str, tuple[str, dict[str, int]]]:
    """The campaigns' states: from a SQLite file through the stdlib when that path applies
    (`store.quick`, a start without SQLAlchemy), else through the ledger."""
    from newsletter.store import quick

    states = quick.campaign_states(app.settings.database.url)
    if states is not None:
        return states
    from newsletter.store import ledger
    from newsletter.store.engine import session_factory

    with session_factory(app.db())() as session:
        return ledger.campaign_states(session)


@issues_group.command("check")
@MONTH
@pass_app
def check(app: App, month: str) -> None:
    """Content errors and the encoded HTML size against Gmail's clip (exit 1 on errors)."""
    from newsletter.render import checks
    from newsletter.render.environment import plural

    _issue, findings = checks.check_issue(app.settings, app.taxonomy, month)
    marks = {checks.OK: "ok     ", checks.WARNING: "warning", checks.ERROR: "error  "}
    for finding in findings:
        click.echo(f"{marks[finding.level]} {relative_paths(finding.message)}")
    errors = sum(f.level == checks.ERROR for f in findings)
    if errors:
        them = "it is" if errors == 1 else "they are"
        click.echo(f"{plural(errors, 'error')}: {month} cannot be sent until {them} fixed")
        raise click.exceptions.Exit(1)


def _short_problem(error: ContentError, month: str) -> str:
    """A content error for a table cell: the file and field (the detail alone can be just
    "is required"), and how many more there are."""
    problems = error.problems if isinstance(error, ContentProblems) else [error]
    first = problems[0]
    field = f"{first.field}: " if first.field else ""
    text = f"error: {Path(first.path).name}: {field}{first.detail}"
    if len(problems) > 1:
        text += f" (and {len(problems) - 1} more: `newsletter issues check {month}`)"
    return text


@main.command("preview")
@click.argument("month", metavar="YYYY-MM|YYYY-Qn", type=MonthArgument())
@click.option("--topics", help="Preview as these topics (labels or slugs, separated by ;).")
@click.option("--subscriber", "email", help="Preview as this subscriber (their topics and links).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "text", "eml"]),
    default="html",
    show_default=True,
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@pass_app
def preview(
    app: App, month: str, topics: str | None, email: str | None, fmt: str, out: Path | None
) -> None:
    """Render MONTH as one reader would get it (default: the full issue).

    A quarter (2026-Q4) previews its round-up: the summaries of its three months."""
    from newsletter.message.preview import preview_parts
    from newsletter.personalize import make_recipient
    from newsletter.sending.plan import variant_label
    from newsletter.store.engine import session_factory
    from newsletter.store.subscribers import parse_topics
    from newsletter.store.subscribers import require_subscriber

    if topics and email:
        raise click.UsageError("use --topics or --subscriber, not both")
    settings = app.settings
    issue = load_campaign_issue(settings.content.dir, month, app.taxonomy, settings.newsletter.name)
    if email:
        with session_factory(app.db())() as session:
            subscriber = require_subscriber(session, email)
            recipient = make_recipient(
                settings, subscriber.email, subscriber.name, subscriber.topic_choice, subscriber.id
            )
            parts = preview_parts(settings, issue, recipient, subscriber.id)
    else:
        chosen = parse_topics(topics, app.taxonomy) if topics else None
        recipient = make_recipient(settings, "preview@example.org", "", chosen)
        parts = preview_parts(settings, issue, recipient)
    payload = parts.as_bytes(fmt)
    if out is None:
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
    else:
        with output_file(out, "wb") as stream:
            stream.write(payload)
        label = variant_label(issue, parts.variant)
        click.echo(f"wrote {out} ({len(payload):,} bytes; {label})", err=True)
