"""Transports: hand a finished message to a mail server, a Maildir folder or a list in memory.

`base.Transport` is the one interface; `smtp`, `maildir` and `memory` implement it, and
`make_transport` picks the configured one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.errors import ConfigError
from newsletter.transport.base import Transport
from newsletter.transport.maildir import MaildirTransport
from newsletter.transport.memory import MemoryTransport
from newsletter.transport.smtp import SmtpTransport

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["MaildirTransport", "MemoryTransport", "SmtpTransport", "Transport", "make_transport"]


def make_transport(settings: Settings) -> Transport:
    """The transport chosen by `settings.delivery.transport`."""
    kind = settings.delivery.transport
    if kind == "maildir":
        return MaildirTransport(settings.delivery.maildir)
    if kind == "smtp":
        return SmtpTransport.from_settings(settings)
    if kind == "memory":
        return MemoryTransport()
    raise ConfigError(f"delivery.transport: unknown transport {kind!r}")
