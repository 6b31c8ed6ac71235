"""One transport kept open across the transactional emails of a process.

Opening an SMTP connection (TCP, EHLO, STARTTLS, AUTH) for every confirmation cost more than
composing it. `KeptTransport` opens the configured transport once and reuses it, one email
at a time (a lock: the outbox thread and a flush may share it). A temporary failure closes it,
so the next email starts on a fresh connection (the outbox retries the failed one later, a
bounded number of times). Rather than NOOPs to keep an idle connection alive, it is closed
after `idle_seconds` without mail: servers drop idle clients after a few minutes anyway
(RFC 5321 §4.5.3.2.7), and a silent drop before a message is already retried once by
`SmtpTransport`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from newsletter.errors import TemporaryFailure
from newsletter.transport.base import Transport

IDLE_SECONDS = 60.0


class KeptTransport(Transport):
    """A `Transport` over one long-lived transport from `factory`; thread-safe."""

    name = "kept"

    def __init__(
        self,
        factory: Callable[[], Transport],
        idle_seconds: float = IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self._idle = idle_seconds
        self._clock = clock
        self._transport: Transport | None = None
        self._last_used = 0.0
        self._lock = threading.Lock()
        self.opened = 0  # connections opened so far (for the figures and tests)

    def open(self) -> None:
        """Nothing here: the connection opens with the first email (and after a failure)."""

    def close(self) -> None:
        """Close the kept connection, if open (QUIT over SMTP)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def send(self, envelope_from: str, recipient: str, message: bytes) -> str:
        """Send over the kept connection, opening it if needed; failures as raised by the
        transport (a temporary one also closes the connection)."""
        with self._lock:
            now = self._clock()
            if self._transport is not None and now - self._last_used > self._idle:
                self._close()  # idle too long: the server may have dropped it
            if self._transport is None:
                transport = self._factory()
                transport.open()
                self._transport = transport
                self.opened += 1
            try:
                reply = self._transport.send(envelope_from, recipient, message)
            except TemporaryFailure:
                self._close()
                raise
            self._last_used = self._clock()
            return reply

    def close_if_idle(self) -> None:
        """Close the connection when it has been idle for `idle_seconds` (the outbox thread
        calls this when it wakes up with nothing to send)."""
        with self._lock:
            if self._transport is not None and self._clock() - self._last_used > self._idle:
                self._close()
