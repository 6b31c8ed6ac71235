"""Publishing: rebuild the archive from what was sent, one rebuild at a time.

Called after every completed send (the one send path, `sending.campaign.send_month`, when
`[archive] rebuild_after_send` is on) and on demand (the admin's "Rebuild archive" button,
`POST /api/archive/rebuild`, `newsletter archive build`). The build itself is `build_site`:
it writes into a sibling folder and swaps it in atomically, so readers see the old site or the
new one, never half of one. Two rebuilds at once (a send finishing while an admin clicks) take
turns on a lock file beside the site, so an older build never lands after a newer one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine

from newsletter.archive import BuildResult
from newsletter.archive import build_site
from newsletter.archive.reader import sent_months
from newsletter.config import Settings
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import taxonomy_from_settings
from newsletter.errors import ArchiveError
from newsletter.errors import NewsletterError
from newsletter.store import audit
from newsletter.store.engine import transaction

log = logging.getLogger("newsletter.archive")


@dataclasses.dataclass
class Rebuild:
    """The outcome of one rebuild: the build's result, or why it failed (never both)."""

    result: BuildResult | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.result is not None

    def summary(self) -> str:
        """One line for logs, pages and the audit log."""
        if self.result is None:
            return f"archive not rebuilt: {self.error}"
        result = self.result
        return (
            f"archive rebuilt: {result.pages} pages for {len(result.months)} issues "
            f"in {result.seconds:.1f} s ({result.out})"
        )


@contextlib.contextmanager
def _one_at_a_time(out: Path) -> Iterator[None]:
    """Hold an exclusive lock file next to OUT (same folder, so the same machine's builds)."""
    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def rebuild(
    engine: Engine,
    settings: Settings,
    taxonomy: Taxonomy | None = None,
    *,
    actor: str = "cli",
    search: bool = True,
) -> BuildResult:
    """Rebuild `[archive] dir` from the sent (and public) months and record it in the audit log.

    Raises ArchiveError (or another NewsletterError, e.g. a sent month whose content no longer
    reads); the old site is then left as it was, and the failure is in the audit log too.
    """
    taxonomy = taxonomy or taxonomy_from_settings(settings)
    out = Path(settings.archive.dir)
    try:
        with _one_at_a_time(out):
            result = build_site(settings, taxonomy, out, sent=sent_months(engine), search=search)
    except OSError as error:  # the lock file's folder cannot be written
        failure = ArchiveError(f"{out}: cannot rebuild: {error.strerror or error}")
        _record(engine, actor, f"failed: {failure}")
        raise failure from error
    except NewsletterError as error:
        _record(engine, actor, f"failed: {error}")
        raise
    _record(engine, actor, Rebuild(result).summary())
    return result


def rebuild_quietly(engine: Engine, settings: Settings, *, actor: str, month: str = "") -> Rebuild:
    """`rebuild`, with any failure logged and returned instead of raised (after a send: a
    failing rebuild must never make a finished send look failed)."""
    try:
        outcome = Rebuild(rebuild(engine, settings, actor=actor))
    except NewsletterError as error:
        outcome = Rebuild(error=str(error))
    except Exception as error:  # an unforeseen bug: the send still stands
        log.exception("rebuilding the archive after %s failed", month or "a send")
        outcome = Rebuild(error=f"{type(error).__name__}: {error}")
    if outcome.ok:
        log.info("%s: %s", month or "archive", outcome.summary())
    else:
        log.error("%s: %s", month or "archive", outcome.summary())
    return outcome


def _record(engine: Engine, actor: str, detail: str) -> None:
    try:
        with transaction(engine) as session:
            audit.record(session, actor, "archive-rebuild", "archive", detail)
    except Exception:  # the log is a record, not a reason for a build to fail
        log.exception("could not record the archive rebuild in the audit log")
