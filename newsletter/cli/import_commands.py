"""`newsletter import feed`: bring a blog's back catalogue in as month folders of summaries."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.backfill.feed import read_feed
from newsletter.backfill.importer import describe
from newsletter.backfill.importer import plan_import
from newsletter.backfill.importer import write_import
from newsletter.cli.app import App
from newsletter.cli.app import main
from newsletter.cli.app import pass_app
from newsletter.cli.app import relative_paths
from newsletter.render.environment import plural


@main.group("import")
def import_group() -> None:
    """Bring content in from elsewhere (a blog's old posts)."""


@import_group.command("feed")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--write", is_flag=True, help="Write the files (without it: only show them).")
@pass_app
def import_feed(app: App, file: Path, write: bool) -> None:
    """Turn the posts of FILE (RSS, Atom or a WordPress export) into month folders.

    One summary file per post, in the month it was published; nothing that exists is
    overwritten. Without --write it only shows what it would write.
    """
    plan = plan_import(read_feed(file), app.settings.content.dir, app.taxonomy)
    for line in describe(plan):
        click.echo(relative_paths(line))
    new, existing = len(plan.new_files), len(plan.files) - len(plan.new_files)
    months = plural(len({f.path.parent for f in plan.new_files}), "month")
    exists = f"; {plural(existing, 'file')} left alone: they exist" if existing else ""
    if not write:
        click.echo(
            f"Dry run, nothing written: --write writes {plural(new, 'file')} in {months}{exists}."
        )
    else:
        result = write_import(plan)
        raced = len(result.skipped) - existing
        late = f" ({raced} appeared since they were planned)" if raced else ""
        click.echo(f"Wrote {plural(len(result.written), 'file')} in {months}{exists}{late}.")
    unready = plan.unready
    if unready:
        click.echo(
            f"{plural(len(unready), 'summary', 'summaries')} lack what `newsletter issues check` "
            "requires (see the notes above): "
            + ", ".join(relative_paths(str(f.path)) for f in unready)
        )
