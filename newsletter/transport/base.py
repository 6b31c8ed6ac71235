"""The one interface every transport implements (in the spirit of django-anymail's backends):
`open`, `send`, `close`, usable as a context manager. `send` takes the envelope sender, one
recipient and a complete RFC 5322 message as bytes with LF line endings, and returns a short
receipt for the ledger. Every failure is a `TemporaryFailure` (retry later) or a
`PermanentFailure` (do not retry); both carry the server's reply code and text when there is
one.

A transport object is not thread-safe: give each worker thread its own.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self


class Transport(abc.ABC):
    """Delivers messages one recipient at a time; `send` opens the transport if needed."""

    name: str

    @abc.abstractmethod
    def open(self) -> None:
        """Connect or create what is needed. Calling it again while open does nothing."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection or files. Calling it again does nothing."""

    @abc.abstractmethod
    def send(self, envelope_from: str, recipient: str, message: bytes) -> str:
        """Deliver `message` (RFC 5322 bytes, LF line endings) to one recipient.

        Returns the server's reply or a short "queued as" text to store in the ledger.
        Raises `TemporaryFailure` or `PermanentFailure`.
        """

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
