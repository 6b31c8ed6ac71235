"""MIME messages built from a per-variant skeleton, so the per-message cost stays in µs.

Building a message with the stdlib `email` package costs milliseconds; a send goes to
thousands of subscribers. So each variant is serialized once by the stdlib (headers, encodings,
boundaries) with marker bodies, then split at the markers. Per subscriber we fill the slots,
quoted-printable-encode the two bodies with the C encoder in `binascii`, and splice them in
together with the few per-subscriber headers. Tests check the result parses back to exactly
what the stdlib builder produces.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.policy
import hashlib
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from email.utils import formataddr

from newsletter.config import Settings
from newsletter.content.model import Summary
from newsletter.errors import UnsafeHeader
from newsletter.message.wire import wire_lines
from newsletter.personalize import SLOT_RE
from newsletter.personalize import Recipient
from newsletter.personalize import slot_value_pair
from newsletter.render.email import RenderedVariant

# LF line endings: Maildir wants them; the SMTP transport converts to CRLF.
POLICY = email.policy.default.clone(linesep="\n")
_TEXT_MARK = "XNLBODYTEXTX"
_HTML_MARK = "XNLBODYHTMLX"


@dataclass(frozen=True)
class Sender:
    """The sender-side header values shared by every message of a newsletter."""

    from_email: str
    from_name: str
    reply_to: str
    domain: str
    list_id: str
    base_url: str
    unsubscribe_mailto: str

    @classmethod
    def from_settings(cls, settings: Settings, list_slug: str | None = None) -> Sender:
        domain = settings.sender_domain()
        slug = list_slug or settings.delivery.default_list
        name = settings.newsletter.name.replace('"', "")
        return cls(
            from_email=settings.newsletter.from_email,
            from_name=settings.newsletter.from_name or settings.newsletter.name,
            reply_to=settings.newsletter.reply_to,
            domain=domain,
            list_id=f'"{name}" <{slug}.{domain}>',
            base_url=settings.newsletter.base_url,
            unsubscribe_mailto=settings.delivery.unsubscribe_mailto
            or settings.newsletter.from_email,
        )


def message_id(month: str, subscriber_id: int, email_address: str, domain: str) -> str:
    """A Message-ID stable for one (issue, subscriber): a resend is recognizably the same."""
    digest = hashlib.sha256(f"{month}:{subscriber_id}:{email_address.lower()}".encode()).hexdigest()
    return f"<{month}.{subscriber_id}.{digest[:12]}@{domain}>"


def unsubscribe_url(sender: Sender, token: str) -> str:
    """The https one-click unsubscribe URL (RFC 8058)."""
    return f"{sender.base_url}/u/{token}"


# What urllib.parse.quote leaves as it is: a token made only of these needs no quoting.
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*")


def list_unsubscribe(sender: Sender, token: str) -> str:
    """The List-Unsubscribe value: the one-click URL first, then a mailto fallback."""
    # Signed tokens are URL-safe already: quote() walks its input a character at a time in
    # Python, which cost more per message than filling the message's slots.
    if _UNQUOTED.fullmatch(token):
        subject = f"unsubscribe%20{token}"
    else:
        subject = urllib.parse.quote(f"unsubscribe {token}")
    mailto = f"mailto:{sender.unsubscribe_mailto}?subject={subject}"
    return f"<{unsubscribe_url(sender, token)}>, <{mailto}>"


# CR and LF end a header line; the other C0 controls, DEL, NEL and the Unicode line and
# paragraph separators are refused too, since some software treats them as line breaks.
_UNSAFE_IN_HEADER = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def header_value(value: str, field: str) -> str:
    """`value` unchanged if it is safe in a header; `UnsafeHeader` naming `field` otherwise.

    The last line of defence against header injection: names are refused at entry already,
    but nothing the builder writes may ever carry a line break into the message.
    """
    if _UNSAFE_IN_HEADER.search(value):
        raise UnsafeHeader(f"{field}: refusing a header value with a control character: {value!r}")
    return value


def to_header(recipient: Recipient) -> str:
    """'Name <addr>' with RFC 2047 encoding of non-ASCII names; `UnsafeHeader` for a name or
    address with control characters or a non-ASCII address (we do not send SMTPUTF8)."""
    address = header_value(recipient.email, "To")
    if not address.isascii():
        raise UnsafeHeader(f"To: {address!r} is not an ASCII address (SMTPUTF8 is not supported)")
    if not recipient.name:
        return address
    return formataddr((header_value(recipient.name, "To"), address))


def encode_qp(text: str) -> bytes:
    """Quoted-printable with LF line breaks (binascii: C speed, lines ≤ 76 characters)."""
    return binascii.b2a_qp(text.encode("utf-8"), istext=True)


_SOFT_BREAK = b"=\n"


class EncodedTemplate:
    """A rendered body, quoted-printable-encoded once, with its slots left open.

    Encoding a 30 KB body costs ~0.4 ms even with binascii, more than everything else about a
    message. So each literal segment between slots is encoded once per variant, and a soft line
    break ("=" at the end of a line, invisible once decoded) closes every piece that does not end
    a line; per message only the short slot values are encoded. Line lengths stay under 76
    because every piece starts on a fresh line.
    """

    __slots__ = ("_names", "_pieces", "_wire_pieces")

    def __init__(self, text: str) -> None:
        parts = SLOT_RE.split(text)
        self._pieces = [_close(encode_qp(literal)) for literal in parts[0::2]]
        self._wire_pieces = [wire_lines(piece) for piece in self._pieces]
        self._names = parts[1::2]

    def fill(self, values: Mapping[str, str], wire: bool = False) -> bytes:
        """The encoded body with every slot's value encoded in place; with `wire`, in the
        form `wire_lines` gives (every piece starts a line, so each converts alone)."""
        pieces = self._wire_pieces if wire else self._pieces
        out = [pieces[0]]
        for index, name in enumerate(self._names, start=1):
            value = _close(encode_qp(values[name]))
            out.append(wire_lines(value) if wire else value)
            out.append(pieces[index])
        return b"".join(out)


def _close(encoded: bytes) -> bytes:
    return encoded if not encoded or encoded.endswith(b"\n") else encoded + _SOFT_BREAK


def stdlib_message(
    sender: Sender,
    subject: str,
    date: dt.datetime,
    html_body: str,
    text_body: str,
    headers: dict[str, str],
) -> EmailMessage:
    """The message as the stdlib builds it; the skeleton's reference (and its source)."""
    message = EmailMessage(policy=POLICY)
    for name, value in headers.items():
        message[name] = value
    message["From"] = formataddr((sender.from_name, sender.from_email))
    if sender.reply_to:
        message["Reply-To"] = sender.reply_to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["List-Id"] = sender.list_id
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text_body, subtype="plain", cte="quoted-printable")
    message.add_alternative(html_body, subtype="html", cte="quoted-printable")
    return message


class MessageSkeleton:
    """One variant's message, pre-serialized; `build` fills in one recipient."""

    def __init__(self, sender: Sender, variant: RenderedVariant, date: dt.datetime) -> None:
        self.sender = sender
        self.variant = variant
        self.summary_count = len(variant.summary_slugs)
        self._html = EncodedTemplate(variant.html)
        self._text = EncodedTemplate(variant.text)
        raw = stdlib_message(sender, variant.subject, date, _HTML_MARK, _TEXT_MARK, {}).as_bytes()
        head, rest = raw.split(_TEXT_MARK.encode() + b"\n", 1)
        middle, tail = rest.split(_HTML_MARK.encode() + b"\n", 1)
        self._head, self._middle, self._tail = head, middle, tail
        # The same pieces in SMTP DATA form (`smtp_data`), converted once per variant: per
        # message that conversion was three passes over ~50 KB.
        if not tail.endswith(b"\n"):
            tail += b"\n"
        self._wire = (wire_lines(head), wire_lines(middle), wire_lines(tail) + b".\r\n")

    def build(
        self,
        recipient: Recipient,
        month: str,
        subscriber_id: int,
        summaries: tuple[Summary, ...],
        wire: bool = False,
    ) -> tuple[bytes, str]:
        """(message bytes with LF endings, Message-ID) for one recipient; with `wire`, the
        message in SMTP DATA form instead (what `smtp_data` makes of it, built from pieces
        converted once per variant)."""
        mid = message_id(month, subscriber_id, recipient.email, self.sender.domain)
        # Folded after the comma: each URI on its own line keeps header lines short.
        unsubscribe = header_value(
            list_unsubscribe(self.sender, recipient.unsubscribe_token), "List-Unsubscribe"
        )
        unsubscribe = unsubscribe.replace(", ", ",\n ")
        headers = (
            f"To: {to_header(recipient)}\nMessage-ID: {mid}\nList-Unsubscribe: {unsubscribe}\n"
        ).encode()
        base = self.sender.base_url
        text_values, html_values = slot_value_pair(recipient, summaries, base_url=base)
        if wire:
            head, middle, tail = self._wire
            text = self._text.fill(text_values, wire=True)
            html = self._html.fill(html_values, wire=True)
            headers = wire_lines(headers)
        else:
            head, middle, tail = self._head, self._middle, self._tail
            text = self._text.fill(text_values)
            html = self._html.fill(html_values)
        return b"".join((headers, head, text, middle, html, tail)), mid
