"""Plan and write the month folders of a feed's posts: `newsletter import feed`.

`plan_import` decides every file (month folder, name, text) and which already exist;
`describe` says it in lines (the dry run is that and nothing more); `write_import` writes the
new files and never one that exists. A month gets `issue.md` with `public: true` (these issues
were published long ago; `public: false` while a summary lacks a field) and one `NN-slug.md`
per post, numbered and ordered by date.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from newsletter.backfill.convert import Converted
from newsletter.backfill.convert import convert_post
from newsletter.backfill.convert import issue_text
from newsletter.backfill.convert import summary_text
from newsletter.backfill.feed import Feed
from newsletter.backfill.feed import Post
from newsletter.content.reader import ISSUE_FILE
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import slugify
from newsletter.errors import OutputFileError

SLUG_LENGTH = 60
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class PlannedFile:
    """One file to write; `existing` names the file in the way (this one, or another with the
    same summary slug), and then it is not written."""

    path: Path
    text: str
    existing: Path | None = None
    post: Post | None = None
    summary: Converted | None = None  # None for issue.md


@dataclass(frozen=True)
class PlannedMonth:
    month: str
    folder: Path
    folder_exists: bool
    files: tuple[PlannedFile, ...]  # issue.md first, then the summaries in order


@dataclass(frozen=True)
class ImportPlan:
    """Everything an import would write, and what it leaves alone."""

    feed: Feed
    months: tuple[PlannedMonth, ...]

    @property
    def files(self) -> list[PlannedFile]:
        return [file for month in self.months for file in month.files]

    @property
    def new_files(self) -> list[PlannedFile]:
        return [file for file in self.files if file.existing is None]

    @property
    def unready(self) -> list[PlannedFile]:
        """The new summaries `issues check` will refuse until an editor fills them in."""
        return [f for f in self.new_files if f.summary is not None and not f.summary.ready]


@dataclass(frozen=True)
class ImportResult:
    written: tuple[Path, ...]
    skipped: tuple[Path, ...]  # they existed by the time they were to be written


def plan_import(feed: Feed, content_dir: Path, taxonomy: Taxonomy) -> ImportPlan:
    """The month folders and files the feed's posts make under `content_dir` (pure reading:
    nothing is written)."""
    by_month: dict[str, list[Post]] = {}
    for post in feed.posts:
        by_month.setdefault(f"{post.published:%Y-%m}", []).append(post)
    months = []
    for month in sorted(by_month):
        folder = Path(content_dir) / month
        posts = sorted(by_month[month], key=lambda p: (p.published, p.position))
        taken = _existing_slugs(folder)
        files: list[PlannedFile] = []
        slugs: list[str] = []
        for order, post in enumerate(posts, start=1):
            slug = _unique(_slug(post), slugs)
            slugs.append(slug)
            summary = convert_post(post, taxonomy)
            path = folder / f"{order:02d}-{slug}.md"
            existing = path if path.exists() else taken.get(slug)
            text = summary_text(summary, order, taxonomy.research_types)
            files.append(PlannedFile(path, text, existing, post, summary))
        ready = all(f.summary is not None and f.summary.ready for f in files)
        issue_file = folder / ISSUE_FILE
        issue = PlannedFile(
            issue_file, issue_text(month, ready), issue_file if issue_file.exists() else None
        )
        months.append(PlannedMonth(month, folder, folder.is_dir(), (issue, *files)))
    return ImportPlan(feed, tuple(months))


def _slug(post: Post) -> str:
    """The blog's own slug when it is one of ours (old links then match), else the title's,
    cut at a word to SLUG_LENGTH characters."""
    slug = post.name if _SLUG.fullmatch(post.name) else slugify(post.title)
    if len(slug) > SLUG_LENGTH:
        slug = slug[: SLUG_LENGTH + 1].rsplit("-", 1)[0]
    return slug.strip("-") or f"post-{post.position + 1}"


def _unique(slug: str, taken: list[str]) -> str:
    candidate, number = slug, 2
    while candidate in taken:
        candidate, number = f"{slug}-{number}", number + 1
    return candidate


def _existing_slugs(folder: Path) -> dict[str, Path]:
    """{slug: file} of the summaries already in the folder, by file name as the reader
    derives it ('03-some-title.md' -> 'some-title')."""
    if not folder.is_dir():
        return {}
    slugs = {}
    for path in sorted(folder.glob("*.md")):
        if path.name != ISSUE_FILE:
            stem = path.stem.lower()
            slugs[slugify(re.sub(r"^\d+[-_. ]*", "", stem) or stem)] = path
    return slugs


def write_import(plan: ImportPlan) -> ImportResult:
    """Write the plan's new files; a file that exists (even one made since the plan) is
    skipped, never overwritten. `OutputFileError` naming the path if one cannot be written."""
    written: list[Path] = []
    skipped: list[Path] = [f.path for f in plan.files if f.existing is not None]
    for month in plan.months:
        new = [file for file in month.files if file.existing is None]
        if not new:
            continue
        try:
            month.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputFileError(f"{month.folder}: cannot write: {error.strerror}") from None
        for file in new:
            if _write_new(file.path, file.text):
                written.append(file.path)
            else:
                skipped.append(file.path)
    return ImportResult(tuple(written), tuple(skipped))


def _write_new(path: Path, text: str) -> bool:
    """Write a new file; False if it exists. Mode 'x' creates it or fails, in one step, so
    no check-then-write race can overwrite an editor's file; a failed write removes it."""
    try:
        stream = path.open("x", encoding="utf-8", newline="\n")
    except FileExistsError:
        return False
    except OSError as error:
        raise OutputFileError(f"{path}: cannot write: {error.strerror}") from None
    try:
        with stream:
            stream.write(text)
    except OSError as error:
        path.unlink(missing_ok=True)
        raise OutputFileError(f"{path}: cannot write: {error.strerror}") from None
    return True


def describe(plan: ImportPlan) -> list[str]:
    """The plan in lines: the feed, then per month each file, what it takes from the post
    (topics, type of research, citation) and what the post lacks; then the categories and
    tags that map to nothing, counted."""
    feed = plan.feed
    lines = [f"{feed.path}: {feed.kind}, {_count(len(feed.posts), 'published post')}"]
    if feed.skipped:
        lines.append(f"  left out: {_skipped(feed)}")
    lines += [f"  warning: {warning}" for warning in feed.warnings]
    for month in plan.months:
        state = "exists" if month.folder_exists else "new folder"
        lines.append(f"{month.month}: {month.folder}/ ({state})")
        for file in month.files:
            lines += _describe_file(file)
    unmapped = Counter(
        name for file in plan.files if file.summary for name in file.summary.unmapped
    )
    if unmapped:
        counted = ", ".join(f'"{name}" ({_count(n, "post")})' for name, n in unmapped.items())
        lines.append(f"Not in the taxonomy (left out of `topics`): {counted}")
    return lines


def _describe_file(file: PlannedFile) -> list[str]:
    if file.existing is not None:
        why = "exists" if file.existing == file.path else f"its summary exists as {file.existing}"
        return [f"  skip  {file.path}: {why}, not overwritten"]
    summary = file.summary
    if summary is None:
        public = "true" if "public: true" in file.text else "false until `issues check` passes"
        return [f"  new   {file.path} (public: {public})"]
    lines = [f'  new   {file.path}: "{summary.title}"']
    topics = "; ".join(term.label for term in summary.topics) or "none"
    kind = summary.research_type.label if summary.research_type else "none"
    lines.append(f"          topics: {topics} | research type: {kind}")
    if summary.unmapped:
        listed = ", ".join(f'"{name}"' for name in summary.unmapped)
        lines.append(f"          not in the taxonomy: {listed}")
    if summary.citation:
        doi = f" doi: {summary.doi}" if summary.doi else ""
        lines.append(f"          citation: {summary.citation}{doi}")
    lines += [f"          note: {note}" for note in summary.notes]
    return lines


def _skipped(feed: Feed) -> str:
    """'2 attachment, 1 draft ("Working title")': attachments counted, the rest named."""
    reasons = Counter(item.reason for item in feed.skipped)
    parts = []
    for reason, count in reasons.items():
        titles = [f'"{i.title}"' for i in feed.skipped if i.reason == reason]
        named = "" if reason in ("attachment", "nav_menu_item") else f" ({', '.join(titles)})"
        parts.append(f"{count} {reason}{named}")
    return ", ".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
