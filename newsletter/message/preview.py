"""An issue as one recipient gets it (HTML, text, raw message): the same code path as a real send,
no I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.errors import NoMatchingVariant
from newsletter.message.skeleton import MessageSkeleton
from newsletter.message.skeleton import Sender
from newsletter.personalize import Recipient
from newsletter.personalize import SlotTemplate
from newsletter.personalize import choose_variant
from newsletter.personalize import slot_values
from newsletter.personalize import variant_summaries
from newsletter.render.email import Renderer


@dataclass(frozen=True)
class PreviewParts:
    """One reader's message: its variant key, filled HTML and text, and the raw message."""

    variant: str
    html: str
    text: str
    eml: bytes

    def as_bytes(self, part: str) -> bytes:
        """'html', 'text' or 'eml' as bytes (UTF-8 for the text parts)."""
        value: str | bytes = getattr(self, part)
        return value if isinstance(value, bytes) else value.encode("utf-8")


def preview_parts(
    settings: Settings,
    issue: Issue,
    recipient: Recipient,
    subscriber_id: int = 0,
    date: dt.datetime | None = None,
    *,
    lead_in_md: str = "",
) -> PreviewParts:
    """The issue as `recipient` gets it; `lead_in_md` (Markdown), when given, replaces the
    intro (the welcome email's opening).

    Raises NoMatchingVariant when none of their topics is in the issue (they would get nothing).
    """
    key = choose_variant(issue, recipient.topics, settings.delivery.on_no_match)
    if key is None:
        raise NoMatchingVariant(
            f"none of these topics is in {issue.month}: this subscriber would get no email"
        )
    summaries = variant_summaries(issue, key)
    rendered = Renderer(settings).render(
        issue, summaries, personal=key.personal, lead_in_md=lead_in_md
    )
    date = date or dt.datetime.now(dt.UTC)
    skeleton = MessageSkeleton(Sender.from_settings(settings), rendered, date)
    message, _ = skeleton.build(recipient, issue.month, subscriber_id, summaries)
    base = settings.newsletter.base_url
    return PreviewParts(
        variant=key.encode(),
        html=SlotTemplate(rendered.html).fill(
            slot_values(recipient, summaries, for_html=True, base_url=base)
        ),
        text=SlotTemplate(rendered.text).fill(
            slot_values(recipient, summaries, for_html=False, base_url=base)
        ),
        eml=message,
    )
