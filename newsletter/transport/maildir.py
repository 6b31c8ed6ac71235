"""A transport that writes each message as one file into a Maildir folder."""

from __future__ import annotations

import mailbox
from pathlib import Path

from newsletter.errors import TemporaryFailure
from newsletter.transport.base import Transport


class MaildirTransport(Transport):
    """Writes each message as one file into a Maildir folder (created if missing)."""

    name = "maildir"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._maildir: mailbox.Maildir | None = None

    def open(self) -> None:
        """Create the Maildir folders (`tmp`, `new`, `cur`) if needed."""
        if self._maildir is None:
            try:
                self._maildir = mailbox.Maildir(self.path, create=True)
            except OSError as error:
                raise TemporaryFailure(f"cannot open Maildir {self.path}: {error}") from error

    def close(self) -> None:
        """Forget the folder handle (Maildir writes are complete after each `send`)."""
        self._maildir = None

    def send(self, envelope_from: str, recipient: str, message: bytes) -> str:
        """Add the message bytes as they are (LF endings); return "maildir <key>"."""
        self.open()
        assert self._maildir is not None
        try:
            key = self._maildir.add(message)
        except OSError as error:
            raise TemporaryFailure(f"cannot write to Maildir {self.path}: {error}") from error
        return f"maildir {key}"
