"""One claimed row's message: skipped, failed, or the signed bytes with their envelope sender.

Per row only what is personal is done here (tokens, slots, the DKIM signature); the variant's
rendering and serialization happened once, in `variants.VariantCache`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.config import Settings
from newsletter.errors import UnsafeHeader
from newsletter.message.envelope import envelope_sender
from newsletter.personalize import Recipient
from newsletter.sending.variants import VariantCache
from newsletter.store import ledger
from newsletter.store.models import ACTIVE
from newsletter.store.models import FAILED
from newsletter.store.models import SKIPPED
from newsletter.tokens import CAMPAIGN
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer

if TYPE_CHECKING:
    from newsletter.message.dkim import DkimSigner

_PURPOSES = (UNSUBSCRIBE, PREFERENCES)  # the two tokens of every digest, made together


@dataclass(frozen=True)
class Built:
    """A message ready for the transport."""

    message: bytes
    message_id: str
    envelope_from: str
    wire: bool = False  # `message` is in SMTP DATA form (`message.wire.smtp_data`)


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """The `[dkim]` signer, or None when signing is off. dkimpy, dnspython and cryptography
    are imported only when it is on: ~14 MB of a sending process's memory otherwise."""
    if not settings.dkim.enabled:
        return None
    from newsletter.message.dkim import DkimSigner

    return DkimSigner.from_settings(settings)


def build_message(
    row: ledger.Claimed,
    month: str,
    settings: Settings,
    variants: VariantCache,
    signer: Signer,
    dkim: DkimSigner | None,
    wire: bool = False,
) -> Built | ledger.Result:
    """The row's message, or its result when it is not to be sent (skipped, or failed for a
    reason that would fail every try the same way). With `wire` (for SMTP) and no DKIM
    signature to add, the message comes in SMTP DATA form (`Built.wire`)."""
    if row.status != ACTIVE or not row.on_list:
        if row.status is None:
            why = "subscriber was deleted"
        elif row.status != ACTIVE:
            why = f"subscriber is {row.status}"
        else:
            why = "subscriber left the list"
        return ledger.Result(row.delivery_id, SKIPPED, error=why)
    try:
        skeleton, summaries = variants.get(row.variant)
    except KeyError:
        error = f"variant {row.variant!r} no longer matches the content of {month}"
        return ledger.Result(row.delivery_id, FAILED, error=error)
    assert row.subscriber_id is not None
    # The month rides along, so what the reader does with these links is counted for this
    # issue (`store.reports`); one short value, the same for everyone.
    unsubscribe, preferences = signer.make_many(
        _PURPOSES, row.subscriber_id, row.email, {CAMPAIGN: month}
    )
    recipient = Recipient(
        email=row.email,
        name=row.name,
        topics=row.topics,
        unsubscribe_token=unsubscribe,
        preferences_token=preferences,
    )
    wire = wire and dkim is None  # DKIM signs the message as it is stored, not on the wire
    try:
        message, mid = skeleton.build(recipient, month, row.subscriber_id, summaries, wire=wire)
    except UnsafeHeader as error:
        # The same row would fail the same way on every try: fail it now, saying why.
        return ledger.Result(row.delivery_id, FAILED, error=f"message not built: {error}")
    if dkim is not None:
        message = dkim.sign(message)
    return Built(message, mid, envelope_sender(settings, row.subscriber_id, row.email), wire)
