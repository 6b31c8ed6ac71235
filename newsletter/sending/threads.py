"""The sending threads of a `CampaignRunner`: each takes the next row from one shared queue,
builds its message, sends it over its own connection and hands the result back to the main
thread, which claims rows and records results (`sending.runner`).

Split from the runner as a mixin because both sides share the run's state (the queues, the
stop flag, the pause reason, the connections); the attributes below are set by
`CampaignRunner.__init__` and `run`.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.errors import NewsletterError
from newsletter.errors import PermanentFailure
from newsletter.errors import TemporaryFailure
from newsletter.sending.build import Built
from newsletter.sending.build import build_message
from newsletter.sending.durable import AcceptanceRecorder
from newsletter.sending.pools import Pool
from newsletter.sending.retry import internal_error
from newsletter.sending.retry import is_hard_bounce
from newsletter.sending.retry import reply_text
from newsletter.sending.retry import retry_or_fail
from newsletter.sending.variants import VariantCache
from newsletter.store import ledger
from newsletter.store.models import FAILED
from newsletter.store.models import SENT
from newsletter.store.models import utcnow
from newsletter.tokens import Signer
from newsletter.transport.base import Transport
from newsletter.transport.smtp import SmtpTransport

# A row taken from the queue and built, to be sent next on the same connection.
Ahead = tuple[ledger.Claimed, Built]
# Waiting longer than this for a quota ends the run; re-running later picks the rest up.
MAX_QUOTA_WAIT = 300.0
# Consecutive failures to (re)open one server's connection after which a send pauses.
CONNECT_TRIES = 3


class SendingThreads:
    """What runs on the sending threads, and the stop and pause state they read."""

    settings: Settings
    issue: Issue
    variants: VariantCache
    signer: Signer
    dkim: Any
    _local: threading.local
    _opened: list[Transport]
    _opened_lock: threading.Lock
    _spares: dict[str, list[Transport]]
    _connect_failures: dict[str, int]
    _pause_reason: str
    _stop: threading.Event
    _stop_requested: threading.Event | None
    _work: queue.SimpleQueue
    _results: queue.SimpleQueue
    _recorder: AcceptanceRecorder | None

    @property
    def stopping(self) -> bool:
        """Whether this run should stop: it stopped itself, or the caller asked it to."""
        requested = self._stop_requested
        return self._stop.is_set() or (requested is not None and requested.is_set())

    def request_stop(self) -> None:
        """Drain and stop this run (messages in flight finish and are recorded)."""
        self._stop.set()

    def _wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True as soon as a stop is due (own flag or the caller's)."""
        if self._stop_requested is None:
            return self._stop.wait(seconds)
        deadline = time.monotonic() + seconds
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._stop.wait(min(left, 0.1))
        return True

    def _sending_thread(self, pool: Pool) -> None:
        # Every thread takes the next row from one shared queue: a faster server gets more.
        # A sent row's commit runs while the next message is built; `_settle` waits for it
        # before that message goes out, and before this thread waits for work.
        self._local.pool = pool
        self._local.committing = None
        carry: Ahead | None = None  # the next message, announced on this connection
        while True:
            built = None
            if carry is not None:
                (row, built), carry = carry, None
            else:
                try:
                    row = self._work.get_nowait()
                except queue.Empty:
                    self._settle()
                    row = self._work.get()
                if row is None:
                    break
            result = None  # None: not attempted (stopping, paused, or waiting on a quota)
            try:
                # A carried message is in flight already (its envelope may be announced).
                if built is not None or (
                    not self.stopping and not self._pause_reason and self._take_slot(pool)
                ):
                    result, carry = self._send_one(row, built)
            except Exception as error:  # never lose a row: report it to the main thread
                result = internal_error(row, error, self.settings.delivery)
            ticket = self._recorder.submit(result) if self._recorder is not None else None
            if ticket is None:
                self._results.put((row, result, pool, False))
            else:
                self._settle()
                self._local.committing = (row, result, pool, ticket)
        self._settle()

    def _settle(self) -> None:
        """Wait for this thread's sent row to be committed, then hand it to the main thread
        (marked durable, or not if the commit failed: the main thread's batch records it)."""
        committing, self._local.committing = self._local.committing, None
        if committing is not None:
            row, result, pool, ticket = committing
            self._results.put((row, result, pool, ticket.wait()))

    def _cannot_connect(self, error: NewsletterError) -> None:
        """A connection that cannot be (re)opened mid-send is not the row's fault: the row goes
        back to the queue untried. A permanent cause (a rejected login, no STARTTLS) or
        `CONNECT_TRIES` failures in a row pause the send; a passing one is waited out."""
        pool = self._local.pool
        failures = self._connect_failures.get(pool.name, 0) + 1
        self._connect_failures[pool.name] = failures
        if isinstance(error, TemporaryFailure) and failures < CONNECT_TRIES:
            self._wait(2.0 * failures)
        elif not self._pause_reason:
            self._pause_reason = f"cannot connect to {pool.name}: {error}"

    def _take_slot(self, pool: Pool) -> bool:
        """Wait for the pool's rate limiter; False if stopped or if a quota wait is too long."""
        assert pool.limiter is not None
        while True:
            delay = pool.limiter.reserve()
            if not delay:
                return True
            if delay > MAX_QUOTA_WAIT:
                self._pause_reason = ""  # not an error: the rest goes out on a later run
                self._stop.set()
                return False
            if self._wait(delay):
                return False

    def _transport(self) -> Transport:
        """This thread's connection, opened (again, after a drop) before a message is given to
        it; a failure here is about the connection, never about the message."""
        transport = getattr(self._local, "transport", None)
        if transport is None:
            pool = self._local.pool
            with self._opened_lock:
                spares = self._spares.get(pool.name)
                transport = spares.pop() if spares else None
            if transport is None:
                transport = pool.factory()
                with self._opened_lock:
                    self._opened.append(transport)
            self._local.transport = transport
        transport.open()
        return transport

    def _close_transports(self) -> None:
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for transport in opened:
            transport.close()

    def _build(self, row: ledger.Claimed) -> Built | ledger.Result:
        # SMTP takes the message in its on-the-wire form, built from per-variant pieces; the
        # thread's first message goes the plain way (its connection is not made yet).
        smtp = isinstance(getattr(self._local, "transport", None), SmtpTransport)
        return build_message(
            row,
            self.issue.month,
            self.settings,
            self.variants,
            self.signer,
            self.dkim,
            smtp,
        )

    def _send_one(
        self, row: ledger.Claimed, built: Built | None = None
    ) -> tuple[ledger.Result | None, Ahead | None]:
        """The row's result (None when it was not attempted: no connection could be opened),
        and the next message, if one was taken from the queue to go out with it (the
        caller sends that one next)."""
        if built is None:
            made = self._build(row)
            if isinstance(made, ledger.Result):
                return made, None
            built = made
        try:
            transport = self._transport()
        except NewsletterError as error:
            self._cannot_connect(error)
            return None, None
        self._connect_failures[self._local.pool.name] = 0
        ahead = self._look_ahead(transport) if built.wire else None
        try:
            return self._transmit(transport, row, built, ahead), ahead
        except BaseException:
            if ahead is not None:  # not attempted: given back at the end of the batch
                self._results.put((ahead[0], None, self._local.pool, False))
            raise

    def _look_ahead(self, transport: Transport) -> Ahead | None:
        """The connection's next message, taken from the queue and built now, so that its
        MAIL, RCPT and DATA go out with this message's data: one round trip per message
        instead of two (`SmtpTransport.send`'s `then`). None without PIPELINING, with rate
        limits (the next slot is not taken ahead), when stopping or when nothing is queued."""
        pool = self._local.pool
        if (
            not isinstance(transport, SmtpTransport)
            or not transport.pipelining
            or any(pool.rates)
            or self.stopping
            or self._pause_reason
        ):
            return None
        try:
            row = self._work.get_nowait()
        except queue.Empty:
            return None
        if row is None:
            self._work.put(None)  # the end of the work: this thread takes it in its turn
            return None
        try:
            built = self._build(row)
        except Exception as error:
            self._results.put(
                (row, internal_error(row, error, self.settings.delivery), pool, False)
            )
            return None
        if isinstance(built, ledger.Result):  # skipped or failed: nothing to send
            self._results.put((row, built, pool, False))
            return None
        return row, built

    def _transmit(
        self,
        transport: Transport,
        row: ledger.Claimed,
        built: Built,
        ahead: Ahead | None,
    ) -> ledger.Result:
        self._settle()  # the previous acceptance is durable before this message goes out
        try:
            if built.wire:
                assert isinstance(transport, SmtpTransport)
                then = None
                if ahead is not None and ahead[1].wire:
                    then = (ahead[1].envelope_from, ahead[0].email, ahead[1].message)
                reply = transport.send(
                    built.envelope_from, row.email, built.message, wire=True, then=then
                )
            else:
                reply = transport.send(built.envelope_from, row.email, built.message)
        except PermanentFailure as error:
            bounce = None
            if is_hard_bounce(error):
                assert row.subscriber_id is not None
                bounce = ledger.Bounce(
                    row.subscriber_id, row.email, built.message_id, reply_text(error)
                )
            return ledger.Result(
                row.delivery_id,
                FAILED,
                reply=reply_text(error),
                error=str(error),
                bounce=bounce,
            )
        except TemporaryFailure as error:
            return retry_or_fail(row, error, self.settings.delivery)
        return ledger.Result(row.delivery_id, SENT, reply=reply, sent_at=utcnow())
