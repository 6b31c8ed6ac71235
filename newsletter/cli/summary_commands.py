"""`newsletter summaries new`: start a summary file from a reference manager's export or a DOI."""

from __future__ import annotations

import re
from pathlib import Path

import click

from newsletter.cli.app import App
from newsletter.cli.app import main
from newsletter.cli.app import pass_app
from newsletter.content.article import bare_doi
from newsletter.content.drafts import csl_for_doi
from newsletter.content.drafts import draft_article
from newsletter.content.drafts import draft_slug
from newsletter.content.drafts import next_file_name
from newsletter.content.drafts import summary_draft
from newsletter.content.model import parse_month
from newsletter.content.reference_formats import REFERENCE_SUFFIXES
from newsletter.content.reference_formats import parse_reference
from newsletter.errors import ContentError
from newsletter.errors import OutputFileError


@main.group("summaries")
def summaries_group() -> None:
    """Start summary files."""


@summaries_group.command("new")
@click.argument("month", metavar="YYYY-MM")
@click.option(
    "--from",
    "source",
    metavar="FILE",
    help="A reference exported from a reference manager: .bib, .ris or .json (CSL-JSON).",
)
@click.option("--doi", metavar="DOI", help="Only a DOI: the other fields are left to fill in.")
@click.option("--slug", metavar="SLUG", help="The file's slug (default: from the title).")
@pass_app
def new_summary(
    app: App, month: str, source: str | None, doi: str | None, slug: str | None
) -> None:
    """Write content/YYYY-MM/NN-<slug>.md with the article filled in and empty summary and
    Practice Implications sections; never overwrites. `--from` also takes a bare DOI."""
    parse_month(month)
    if (source is None) == (doi is None):
        raise click.UsageError("give one of --from FILE or --doi DOI")
    if source is not None and not Path(source).exists() and bare_doi(source):
        source, doi = None, source  # `--from 10.1037/...`: a DOI, not a file
    if doi is not None:
        raw = csl_for_doi(doi)
        where = "--doi"
    else:
        assert source is not None
        path = Path(source)
        if path.suffix.lower() not in REFERENCE_SUFFIXES:
            raise ContentError(path, "a reference must be a .bib, .ris or .json (CSL-JSON) file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise ContentError(path, f"not UTF-8 text (byte {error.start})") from None
        except OSError as error:
            raise ContentError(path, f"cannot be read: {error.strerror or error}") from None
        raw = parse_reference(text, path.suffix, str(path))
        where = str(path)
    article = draft_article(raw, where)
    slug = slug or draft_slug(article)
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", slug):
        message = f"{slug!r}: use lowercase letters, digits and '-'"
        raise click.BadParameter(message, param_hint="--slug")
    folder = Path(app.settings.content.dir) / month
    existing = sorted(p.name for p in folder.glob("*.md")) if folder.is_dir() else []
    # The slug a file has by its name (the reader's rule: its number dropped).
    taken = [name for name in existing if re.sub(r"^\d+[-_. ]*", "", Path(name).stem) == slug]
    if taken:
        raise ContentError(folder / taken[0], f"already has the slug {slug!r}: give another --slug")
    target = folder / next_file_name(existing, slug)
    _write_new(target, summary_draft(article))
    click.echo(f"wrote {target}: fill in the title, topics, research type and the two sections")
    click.echo(f"then: newsletter issues check {month}")


def _write_new(path: Path, text: str) -> None:
    """Create `path` with `text`; never over an existing file, and no part-written file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as stream:
            try:
                stream.write(text)
            except OSError:
                path.unlink(missing_ok=True)
                raise
    except FileExistsError:
        raise ContentError(path, "already exists: nothing was written") from None
    except OSError as error:
        raise OutputFileError(f"{path}: cannot write: {error.strerror or error}") from None
