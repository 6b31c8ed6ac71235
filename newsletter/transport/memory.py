"""A transport that keeps messages in a list: for tests and previews."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from newsletter.transport.base import Transport


@dataclass(frozen=True)
class SentMessage:
    """One message kept by `MemoryTransport`."""

    envelope_from: str
    recipient: str
    message: bytes


class MemoryTransport(Transport):
    """Keeps messages in `outbox`. `fail(recipient)` may return an exception to raise instead."""

    name = "memory"

    def __init__(self, fail: Callable[[str], Exception | None] | None = None) -> None:
        self.outbox: list[SentMessage] = []
        self.fail = fail

    def open(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close; the outbox is kept."""

    def send(self, envelope_from: str, recipient: str, message: bytes) -> str:
        """Append the message to `outbox`, unless the `fail` hook returns an exception."""
        self.open()
        if self.fail is not None:
            error = self.fail(recipient)
            if error is not None:
                raise error
        self.outbox.append(SentMessage(envelope_from, recipient, bytes(message)))
        return f"memory {len(self.outbox)}"
