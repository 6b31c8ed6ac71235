"""Preview an issue as a topic set or as a subscriber: the same code path as a real send."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from newsletter.config import Settings
from newsletter.content import Issue
from newsletter.errors import SendError
from newsletter.mime import MessageSkeleton
from newsletter.mime import Sender
from newsletter.models import utcnow
from newsletter.personalize import Recipient
from newsletter.personalize import SlotTemplate
from newsletter.personalize import choose_variant
from newsletter.personalize import slot_values
from newsletter.personalize import variant_summaries
from newsletter.render import Renderer
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer
from newsletter.transports import Transport


def preview_parts(
    settings: Settings,
    issue: Issue,
    recipient: Recipient,
    subscriber_id: int = 0,
    date: dt.datetime | None = None,
) -> dict[str, str | bytes]:
    """{'html', 'text', 'eml', 'variant'} for a recipient; SendError if they would get nothing."""
    key = choose_variant(issue, recipient.topics, settings.delivery.on_no_match)
    if key is None:
        raise SendError(
            f"none of these topics is in {issue.month}: this subscriber would get no email"
        )
    summaries = variant_summaries(issue, key)
    rendered = Renderer(settings).render(issue, summaries, personal=key.personal)
    skeleton = MessageSkeleton(Sender.from_settings(settings), rendered, date or utcnow())
    message, _ = skeleton.build(recipient, issue.month, subscriber_id, summaries)
    base = settings.newsletter.base_url
    return {
        "variant": key.encode(),
        "html": SlotTemplate(rendered.html).fill(
            slot_values(recipient, summaries, for_html=True, base_url=base)
        ),
        "text": SlotTemplate(rendered.text).fill(
            slot_values(recipient, summaries, for_html=False, base_url=base)
        ),
        "eml": message,
    }


def make_recipient(
    settings: Settings,
    email: str,
    name: str,
    topics: frozenset[str] | None,
    subscriber_id: int = 0,
) -> Recipient:
    """A recipient with real signed tokens (id 0 for test addresses: their links are inert)."""
    signer = Signer(settings.secret_key())
    return Recipient(
        email=email,
        name=name,
        topics=topics,
        unsubscribe_token=signer.make(UNSUBSCRIBE, subscriber_id, email),
        preferences_token=signer.make(PREFERENCES, subscriber_id, email),
    )


def send_single(settings: Settings, transport: Transport, recipient: str, message: bytes) -> str:
    """Send one message outside the ledger, DKIM-signed like the campaign messages."""
    from newsletter.dkim import DkimSigner

    signer = DkimSigner.from_settings(settings)
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
    from newsletter.subscribers import normalize_email

    clean = [normalize_email(address)[0] for address in addresses]
    if not clean:
        raise SendError("give at least one address to send the test to")
    test_issue = dataclasses.replace(issue, subject=f"[TEST] {issue.subject}")
    lines = []
    with transport:
        for address in clean:
            recipient = make_recipient(settings, address, "", topics)
            message = bytes(preview_parts(settings, test_issue, recipient)["eml"])
            reply = send_single(settings, transport, address, message)
            lines.append(f"test sent to {address}: {reply}")
    return lines
