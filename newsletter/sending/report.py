"""What one run of the runner did, and the progress callback that watches it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

from newsletter.store import ledger
from newsletter.store.models import FAILED
from newsletter.store.models import RETRY
from newsletter.store.models import SENT
from newsletter.store.models import SKIPPED


@dataclass
class SendReport:
    """What one run did."""

    month: str
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    throttled: int = 0
    variants_rendered: int = 0
    elapsed: float = 0.0  # wall time of the run
    render_seconds: float = 0.0  # of which rendering the variants
    wait_seconds: float = 0.0  # of which waiting for retries and other senders' leases
    # Progress: rows finished (sent, failed, skipped) out of `total`, the rows this run could
    # take when it started; `total` grows if more come (never done > total).
    total: int = 0
    done: int = 0
    finished: bool = False
    paused: bool = False
    stopped_reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    leftover: list[str] = field(default_factory=list)  # rows left open, and how to continue


ProgressCallback = Callable[[SendReport, int], None]


def tally(report: SendReport, result: ledger.Result) -> None:
    """Count one result; a retry is not progress (the row comes back, and counts then)."""
    if result.status != RETRY:
        report.done += 1
        report.total = max(report.total, report.done)
    if result.status == SENT:
        report.sent += 1
    elif result.status == FAILED:
        report.failed += 1
    elif result.status == SKIPPED:
        report.skipped += 1
    elif result.status == RETRY:
        report.retried += 1
