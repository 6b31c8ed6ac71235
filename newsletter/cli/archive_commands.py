"""`newsletter archive ...`: build the static web archive and preview it."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter import archive
from newsletter.archive.serve import make_server
from newsletter.cli.app import App
from newsletter.cli.app import main
from newsletter.cli.app import pass_app
from newsletter.config import Settings
from newsletter.config import normalize_base_path
from newsletter.render.environment import plural


@main.group("archive")
def archive_group() -> None:
    """Build the static web archive of every published issue."""


def _sent_months(app: App) -> set[str]:
    """Months sent according to the database; empty (with a note) when there is none yet."""
    url = app.settings.database.url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        click.echo(
            "note: no database yet: only issues marked `public: true` are published", err=True
        )
        return set()
    return archive.sent_months(app.engine)


@archive_group.command("build")
@click.argument("out", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--include-unsent", is_flag=True, help="Publish every month, sent or not (for previews)."
)
@click.option("--no-search", is_flag=True, help="Skip the Pagefind search index.")
@pass_app
def build(app: App, out: Path | None, include_unsent: bool, no_search: bool) -> None:
    """Build the site into OUT (default: [archive] dir, `site/`).

    Only months that were sent (a finished campaign or a sent delivery) or whose issue.md says
    `public: true` are published. The old site is replaced only when the build succeeds.
    """
    settings = app.settings
    sent = set() if include_unsent else _sent_months(app)
    result = archive.build_site(
        settings,
        app.taxonomy,
        out or settings.archive.dir,
        sent=sent,
        include_unsent=include_unsent,
        search=not no_search,
    )
    click.echo(
        f"wrote {result.pages} pages ({result.files} files) for "
        f"{plural(len(result.months), 'issue')} and "
        f"{plural(result.summaries, 'summary', 'summaries')} to {result.out} "
        f"in {result.seconds:.2f} s"
    )
    if result.skipped_months:
        click.echo(
            f"not published (never sent, not public): {', '.join(result.skipped_months)}; "
            "these were not read; use --include-unsent to preview them"
        )
    for month, problem in result.unreadable.items():
        click.secho(
            f"warning: {month} is not published: its issue.md (which may say `public: true`) "
            f"cannot be read: {problem}",
            fg="yellow",
            err=True,
        )
    if result.search == "unavailable":
        click.echo("search: Pagefind is not installed, the search page will say so")
    elif result.search == "skipped":
        click.echo("search: skipped (--no-search)")
    click.echo(f"preview: newsletter archive serve {result.out}  →  {_preview_url(settings)}")


def _preview_url(settings: Settings, port: int = 8001) -> str:
    return f"http://127.0.0.1:{port}{normalize_base_path(settings.archive.base_path)}"


@archive_group.command("serve")
@click.argument(
    "folder", required=False, type=click.Path(file_okay=False, exists=True, path_type=Path)
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", default=8001, show_default=True, type=click.IntRange(0, 65535), help="0: any free."
)
@pass_app
def serve(app: App, folder: Path | None, host: str, port: int) -> None:
    """Preview a built site locally at its [archive] base_path (not for production)."""
    settings = app.settings
    folder = folder or settings.archive.dir
    if not (folder / "index.html").exists():
        raise click.ClickException(f"{folder}: no site here; run `newsletter archive build` first")
    base_path = normalize_base_path(settings.archive.base_path)
    server = make_server(folder, base_path, host, port)
    click.echo(
        f"serving {folder} at http://{host}:{server.server_address[1]}{base_path} (Ctrl-C stops)"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
