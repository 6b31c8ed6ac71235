"""Preview an issue as a topic set or as a subscriber: the same code path as a real send."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.errors import SendError
from newsletter.message.preview import preview_parts
from newsletter.personalize import make_recipient
from newsletter.transport.base import Transport


def send_single(settings: Settings, transport: Transport, recipient: str, message: bytes) -> str:
    """Send one message outside the ledger, DKIM-signed like the campaign messages."""
    from newsletter.sending.build import dkim_signer

    signer = dkim_signer(settings)
    if signer is not None:
        message = signer.sign(message)
    sender = settings.delivery.envelope_from or settings.newsletter.from_email
    return transport.send(sender, recipient, message)


def send_tests(
    settings: Settings,
    issue: Issue,
    addresses: Sequence[str],
    topics: frozenset[str] | None,
    transport: Transport,
) -> list[str]:
    """Send the issue marked [TEST] to each address, outside the ledger; one line per address.

    The messages are built, DKIM-signed and sent exactly like the real ones.
    """
    from newsletter.store.subscribers import normalize_email

    clean = [normalize_email(address)[0] for address in addresses]
    if not clean:
        raise SendError("give at least one address to send the test to")
    test_issue = dataclasses.replace(issue, subject=f"[TEST] {issue.subject}")
    lines = []
    with transport:
        for address in clean:
            recipient = make_recipient(settings, address, "", topics)
            message = preview_parts(settings, test_issue, recipient).eml
            reply = send_single(settings, transport, address, message)
            lines.append(f"test sent to {address}: {reply}")
    return lines
