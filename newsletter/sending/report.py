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
    elapsed: float = 0.0
    finished: bool = False
    paused: bool = False
    stopped_reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)


ProgressCallback = Callable[[SendReport, int], None]


def tally(report: SendReport, result: ledger.Result) -> None:
    if result.status == SENT:
        report.sent += 1
    elif result.status == FAILED:
        report.failed += 1
    elif result.status == SKIPPED:
        report.skipped += 1
    elif result.status == RETRY:
        report.retried += 1
