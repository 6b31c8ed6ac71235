"""Message size checks: Gmail clips an HTML part past ~102 KB of encoded bytes."""

from __future__ import annotations

GMAIL_CLIP_BYTES = 102 * 1024


GMAIL_WARN_BYTES = 90 * 1024


def encoded_html_size(html: str) -> int:
    """Bytes of the HTML part as sent (quoted-printable), to compare with Gmail's clip."""
    import binascii

    return len(binascii.b2a_qp(html.encode("utf-8"), istext=True))
