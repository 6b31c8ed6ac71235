"""The retry policy: which failures are retried, when, and which count as a hard bounce."""

from __future__ import annotations

import datetime as dt
import random
import re

from newsletter.config import DeliverySection
from newsletter.errors import PermanentFailure
from newsletter.errors import TemporaryFailure
from newsletter.errors import TransportError
from newsletter.store import ledger
from newsletter.store.models import FAILED
from newsletter.store.models import RETRY
from newsletter.store.models import utcnow

# A provider asking us to slow down ("454 Throttling failure", "421 4.7.0 Try again later,
# too many messages"): slow the whole send instead of spending the row's retries.
THROTTLE_RE = re.compile(r"throttl|rate.?limit|too many|slow down|4\.7\.\d", re.I)


def is_throttle(error: TransportError) -> bool:
    """Whether a temporary failure is the provider asking us to slow down."""
    return isinstance(error, TemporaryFailure) and bool(THROTTLE_RE.search(error.reply or ""))


def is_hard_bounce(error: PermanentFailure) -> bool:
    """A refusal that says the address itself is bad (5.1.x, or 550/551/553 without detail)."""
    reply = error.reply or ""
    if re.search(r"\b5\.1\.\d+\b", reply):
        return True
    return error.code in (550, 551, 553) and not re.search(r"\b5\.[2-7]\.\d+\b", reply)


def reply_text(error: TransportError) -> str:
    """The server's reply with its code, e.g. '550 5.1.1 mailbox unavailable'."""
    reply = error.reply or ""
    if error.code and not reply.startswith(str(error.code)):
        return f"{error.code} {reply}".strip()
    return reply


def retry_or_fail(
    row: ledger.Claimed, error: TemporaryFailure, delivery: DeliverySection
) -> ledger.Result:
    """What a temporary failure does to a row: retry later, or fail after `max_attempts`.

    A throttling reply is not the row's fault: it retries soon without using up an attempt
    (the runner slows that server down instead). Other retries back off exponentially, with
    jitter so that the retries of many rows do not arrive together.
    """
    if is_throttle(error):
        due = utcnow() + dt.timedelta(seconds=delivery.throttle_backoff_seconds)
        return ledger.Result(
            row.delivery_id,
            RETRY,
            reply=reply_text(error),
            error=str(error),
            next_attempt_at=due,
            throttled=True,
        )
    if row.attempts >= delivery.max_attempts:
        message = f"gave up after {row.attempts} attempts: {error}"
        return ledger.Result(row.delivery_id, FAILED, reply=reply_text(error), error=message)
    delay = delivery.retry_base_seconds * (2 ** (row.attempts - 1)) * random.uniform(0.8, 1.2)
    due = utcnow() + dt.timedelta(seconds=delay)
    return ledger.Result(
        row.delivery_id, RETRY, reply=reply_text(error), error=str(error), next_attempt_at=due
    )


def internal_error(
    row: ledger.Claimed, error: Exception, delivery: DeliverySection
) -> ledger.Result:
    """An unexpected error: retried like a temporary failure, so it too ends in `failed`
    after `max_attempts` instead of retrying without bound."""
    error_text = f"internal error: {error!r}"
    if row.attempts >= delivery.max_attempts:
        message = f"gave up after {row.attempts} attempts: {error_text}"
        return ledger.Result(row.delivery_id, FAILED, error=message)
    later = utcnow() + dt.timedelta(seconds=60)
    return ledger.Result(row.delivery_id, RETRY, error=error_text, next_attempt_at=later)
