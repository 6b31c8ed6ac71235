"""Static web archive: read → generate → write, Pelican style.

- `reader` decides which months are published and reads only those;
- `generator` (pure) turns issues into pages, feeds, sitemap and robots.txt;
- `writer` is the only code that touches the output folder (temp build, atomic swap);
- `search` runs Pagefind over the build before the swap.

`build_site` wires them together; the CLI (`newsletter archive build`) is a thin wrapper.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import jinja2
from markupsafe import Markup

from newsletter.archive import search as search_module
from newsletter.archive.generator import Site
from newsletter.archive.generator import generate
from newsletter.archive.generator import site_info
from newsletter.archive.reader import Unpublished
from newsletter.archive.reader import read_issues
from newsletter.archive.reader import read_published
from newsletter.archive.reader import select_published
from newsletter.archive.reader import sent_months
from newsletter.archive.theme import static_files
from newsletter.archive.theme import theme_environment
from newsletter.archive.writer import Writer
from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import ArchiveError
from newsletter.render.environment import where_it_failed

__all__ = [
    "ArchiveError",
    "BuildResult",
    "build_site",
    "read_issues",
    "read_published",
    "select_published",
    "sent_months",
    "write_site",
]

NAV = (
    ("issues", "Issues", ""),
    ("topics", "Topics", "topics/"),
    ("types", "Research types", "types/"),
    ("filter", "Filter", "filter/"),
    ("search", "Search", "search/"),
    ("about", "Subscribe", "about/"),
)


@dataclass
class BuildResult:
    """What a build wrote."""

    out: Path
    pages: int
    files: int
    months: list[str]
    summaries: int
    search: str  # "indexed", "skipped" or "unavailable"
    seconds: float
    skipped_months: list[str] = field(default_factory=list)  # not published, not read
    unreadable: dict[str, str] = field(default_factory=dict)  # of those: issue.md's error


def build_site(
    settings: Settings,
    taxonomy: Taxonomy,
    out: Path | None = None,
    *,
    sent: Iterable[str] = (),
    include_unsent: bool = False,
    search: bool = True,
    issues: list[Issue] | None = None,
) -> BuildResult:
    """Read the content, generate the site, write it to `out` (default `[archive] dir`).

    `sent` is the set of months that were actually sent (see `reader.sent_months`).
    """
    started = time.perf_counter()
    if issues is None:
        published, left_out = read_published(
            settings.content.dir,
            taxonomy,
            settings.newsletter.name,
            sent,
            include_unsent=include_unsent,
        )
    else:
        published = select_published(issues, sent, include_unsent=include_unsent)
        chosen = {issue.month for issue in published}
        left_out = [Unpublished(m) for m in sorted({i.month for i in issues} - chosen)]
    site = generate(published, taxonomy, site_info(settings))
    result = write_site(
        site, Path(out or settings.archive.dir), settings.archive.templates_dir, search=search
    )
    result.skipped_months = [one.month for one in left_out]
    result.unreadable = {one.month: one.problem for one in left_out if one.problem}
    result.seconds = time.perf_counter() - started
    return result


def write_site(site: Site, out: Path, templates_dir: Path | None, *, search: bool) -> BuildResult:
    """Render every page with the theme and write the whole site through one Writer."""
    started = time.perf_counter()
    env = theme_environment(templates_dir)
    info = site.info
    nav = [{"key": key, "label": label, "url": info.url(path)} for key, label, path in NAV]
    panel = ""
    if site.panel is not None:  # rendered once: the same lists on every page
        try:
            panel = env.get_template("_panel.html").render(panel=site.panel, site=info)
            panel = re.sub(r"\n\s*", "\n", panel)  # on every page: no indentation (bytes)
        except jinja2.TemplateError as error:
            where = where_it_failed(error)
            raise ArchiveError(f"template _panel.html failed: {where}{error}") from error

    def side_panel(url: str) -> Markup:
        """The panel with the current page's own link marked (`aria-current`)."""
        needle = f'href="{url}"'
        return Markup(panel.replace(needle, needle + ' aria-current="page"', 1))

    env.globals.update(site=info, nav=nav, side_panel=side_panel)
    before_swap: Callable[[Path], None] | None = None
    if search and search_module.available():
        search_state = "indexed"

        def before_swap(folder: Path) -> None:
            search_module.index_site(folder, info.language)

    else:
        search_state = "skipped" if not search else "unavailable"
    with Writer(out) as writer:
        for page in site.pages:
            try:
                html = env.get_template(page.template).render(page=page, **page.context)
            except jinja2.TemplateError as error:
                where = where_it_failed(error)
                raise ArchiveError(
                    f"template {page.template} failed for /{page.path}: {where}{error}"
                ) from error
            writer.write(page.output, html)
        for file in site.files:
            writer.write(file.path, file.data)
        for relative, source in static_files(templates_dir).items():
            writer.copy("static/" + relative, source)
        writer.commit(before_swap)
        count = len(writer.written)
    return BuildResult(
        out=out,
        pages=len(site.pages),
        files=count,
        months=[view.month for view in site.issues],
        summaries=len(site.entries),
        search=search_state,
        seconds=time.perf_counter() - started,
    )
