"""Workers: processes that send whatever campaigns have open ledger rows.

Any number of workers on any number of hosts can share a PostgreSQL database: each claims its
own batches (`SELECT … FOR UPDATE SKIP LOCKED`), so none sends a row another holds. SQLite
serializes writers; one worker at a time is enforced with a lock file next to the database.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.content.roundup import load_campaign_issue
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import NewsletterError
from newsletter.errors import SendError
from newsletter.sending.campaign import send_month
from newsletter.sending.report import SendReport
from newsletter.store import ledger
from newsletter.store.engine import session_factory
from newsletter.store.models import PLANNED
from newsletter.store.models import RUNNING
from newsletter.store.models import Campaign
from newsletter.store.models import utcnow

log = logging.getLogger("newsletter.worker")


def due_campaigns(engine: Engine) -> list[str]:
    """Months whose campaign is not paused or done and has a row that can be sent now."""
    with session_factory(engine)() as session:
        campaigns = session.scalars(
            select(Campaign).where(Campaign.status.in_((PLANNED, RUNNING))).order_by(Campaign.month)
        ).all()
        due = []
        for campaign in campaigns:
            next_due = ledger.next_due(session, campaign.id)
            if next_due is not None and next_due <= utcnow():
                due.append(campaign.month)
        return due


@contextmanager
def single_sqlite_worker(engine: Engine):
    """On SQLite, hold an exclusive lock file so that a second worker refuses to start."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        yield
        return
    path = Path(engine.url.database + ".worker.lock")
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SendError(
                f"another worker is running on {engine.url.database} (lock {path}); SQLite "
                "allows one worker at a time: use PostgreSQL to run several"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_worker(
    engine: Engine,
    settings: Settings,
    taxonomy: Taxonomy,
    *,
    stop: threading.Event,
    once: bool = False,
    poll: float = 5.0,
    months: list[str] | None = None,
    on_report: Callable[[SendReport], None] | None = None,
) -> int:
    """Send due campaigns until `stop` is set (or, with `once`, until none is due).

    Returns the number of messages sent. A campaign whose content fails to load is logged and
    left alone; the others go on.
    """
    total = 0
    with single_sqlite_worker(engine):
        while not stop.is_set():
            due = [m for m in due_campaigns(engine) if months is None or m in months]
            for month in due:
                if stop.is_set():
                    break
                try:
                    issue = load_campaign_issue(
                        settings.content.dir, month, taxonomy, settings.newsletter.name
                    )
                    result = send_month(
                        engine,
                        settings,
                        issue,
                        plan=False,
                        stop=stop,
                        wait_for_retries=False,
                        actor="worker",
                    )
                    assert result.report is not None
                    report = result.report
                except NewsletterError as error:
                    log.error("%s: %s", month, error)
                    continue
                total += report.sent
                log.info(
                    "%s: sent %d, failed %d, skipped %d%s",
                    month,
                    report.sent,
                    report.failed,
                    report.skipped,
                    f" — paused: {report.stopped_reason}" if report.paused else "",
                )
                for line in report.leftover:  # retries not yet due: a later pass sends them
                    log.info("%s: %s", month, line)
                if on_report:
                    on_report(report)
            if once and not due:
                break
            if not due:
                stop.wait(poll)
    return total
