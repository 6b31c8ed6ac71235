"""Transactional emails from a skeleton rendered once, like the digest's variants (pure).

Rendering a confirmation through Jinja2 → MJML → mjml-python → premailer and building it with
the stdlib costs ~10 ms; the subscribe form can be posted hundreds of times a second. So each
kind of email is rendered once per *shape* (everything in its template context but the
per-person strings: greeting, address, links) with plain alphanumeric slots (`XNLNOTE0X`, …)
in place of those strings, and serialized once by the stdlib with marker bodies. Per email only
the slots are filled: HTML-escaped in the HTML part (nothing goes in raw), as typed in the
text part, then quoted-printable-encoded with the C encoder; To, Date and Message-ID are the
only headers written per email, and they never carry a line break.

`NoticeTemplates` keeps the skeletons (bounded, per process and configuration). The first
email of each shape is also rendered the old way and compared: a template that transforms a
per-person value (`{{ email|upper }}`, `|wrap` over a name) would mangle a slot, so that shape
is rendered the old way from then on and nothing wrong is ever sent.
"""

from __future__ import annotations

import collections
import datetime as dt
import html
import logging
import threading
from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from email.utils import formataddr
from email.utils import make_msgid

from newsletter.errors import UnsafeHeader
from newsletter.message.skeleton import POLICY
from newsletter.message.skeleton import EncodedTemplate
from newsletter.message.skeleton import header_value
from newsletter.personalize import SLOT_RE

log = logging.getLogger("newsletter.notices")

_TEXT_MARK = "XNLNOTICETEXTX"
_HTML_MARK = "XNLNOTICEHTMLX"
SLOT_PREFIX = "NOTE"  # XNLNOTE0X, XNLNOTE1X, …: matches personalize.SLOT_RE
MAX_SKELETONS = 256  # shapes differ by the topics an email lists; keep the most recent


def slot(index: int) -> str:
    """The marker of the `index`-th per-person value."""
    return f"XNL{SLOT_PREFIX}{index}X"


@dataclass(frozen=True)
class NoticeHeaders:
    """The header values shared by every email of one kind and configuration."""

    from_header: str
    reply_to: str
    subject: str
    domain: str


def recipient_header(email: str, name: str) -> str:
    """The To value: 'Name <addr>' (RFC 2047 for a non-ASCII name) or the bare address;
    `UnsafeHeader` for a line break or other control character in either."""
    address = header_value(email, "To")
    if not name:
        return address
    return formataddr((header_value(name, "To"), address))


def _with_newline(text: str) -> str:
    # The stdlib ends every text part with a line break; so do we.
    return text if text.endswith("\n") else text + "\n"


class NoticeSkeleton:
    """One shape of one kind of email, pre-serialized; `build` fills in one person."""

    __slots__ = ("_head", "_html", "_middle", "_tail", "_text", "domain", "html", "text")

    def __init__(self, headers: NoticeHeaders, html_body: str, text_body: str) -> None:
        self.html = _with_newline(html_body)  # with their slots, for `fill_strings`
        self.text = _with_newline(text_body)
        self.domain = headers.domain
        self._html = EncodedTemplate(self.html)
        self._text = EncodedTemplate(self.text)
        message = EmailMessage(policy=POLICY)
        message["From"] = headers.from_header
        if headers.reply_to:
            message["Reply-To"] = headers.reply_to
        message["Subject"] = headers.subject
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
        message.set_content(_TEXT_MARK, subtype="plain", cte="quoted-printable")
        message.add_alternative(_HTML_MARK, subtype="html", cte="quoted-printable")
        raw = message.as_bytes()
        head, rest = raw.split(_TEXT_MARK.encode() + b"\n", 1)
        middle, tail = rest.split(_HTML_MARK.encode() + b"\n", 1)
        self._head, self._middle, self._tail = head, middle, tail

    def slot_names(self) -> set[str]:
        """The slot names (regex groups) the two bodies hold."""
        return set(SLOT_RE.findall(self.html)) | set(SLOT_RE.findall(self.text))

    def fill_strings(self, values: Mapping[str, str]) -> tuple[str, str]:
        """(html, text) with `values` (slot name → value as typed) filled in, before the
        transfer encoding: what `build` encodes, for the first email's check."""
        escaped = {name: html.escape(value) for name, value in values.items()}
        filled_html = SLOT_RE.sub(lambda m: escaped[m.group(1)], self.html)
        return filled_html, SLOT_RE.sub(lambda m: values[m.group(1)], self.text)

    def build(self, to_email: str, to_name: str, values: Mapping[str, str]) -> bytes:
        """The message bytes (LF line endings) for one person; `values` maps each slot name
        to its value as typed (escaped here for the HTML part)."""
        to = recipient_header(to_email, to_name)
        date = format_datetime(dt.datetime.now(dt.UTC))
        headers = f"To: {to}\nDate: {date}\nMessage-ID: {make_msgid(domain=self.domain)}\n"
        escaped = {name: html.escape(value) for name, value in values.items()}
        return b"".join(
            (
                headers.encode("ascii"),
                self._head,
                self._text.fill(values),
                self._middle,
                self._html.fill(escaped),
                self._tail,
            )
        )


# A shape whose first email did not come out as the old path's: render those the old way.
DIRECT = "direct"

Render = Callable[[Mapping[str, object]], tuple[str, str]]  # context -> (html, text)


class NoticeTemplates:
    """The skeletons of one configuration's transactional emails (thread-safe)."""

    def __init__(self, limit: int = MAX_SKELETONS) -> None:
        self._limit = limit
        self._skeletons: collections.OrderedDict[Hashable, NoticeSkeleton | str] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._skeletons)

    def message(
        self,
        identity: Hashable,
        context: Mapping[str, object],
        personal: tuple[str, ...],
        headers: NoticeHeaders,
        render: Render,
        to: tuple[str, str],
    ) -> tuple[bytes | None, tuple[str, str] | None]:
        """(the message bytes, None) from the shape's skeleton, or (None, (html, text)) when
        the shape is rendered the old way (`render(context)` was called: build from it).

        `identity` names the kind and its template objects (a changed template is a new
        one); `personal` are the context keys filled per person (only non-empty strings are
        slots: a template may test one for being empty, so emptiness is part of the shape).
        """
        slotted = tuple(k for k in personal if isinstance(context.get(k), str) and context[k])
        values = {f"{SLOT_PREFIX}{i}": str(context[k]) for i, k in enumerate(slotted)}
        shape = tuple(sorted((k, _frozen(v)) for k, v in context.items() if k not in slotted))
        key = (identity, headers, slotted, shape)
        with self._lock:
            skeleton = self._skeletons.get(key)
            if skeleton is not None:
                self._skeletons.move_to_end(key)
        if skeleton is None:
            placeholders = {k: slot(i) for i, k in enumerate(slotted)}
            html_body, text_body = render({**context, **placeholders})
            candidate = NoticeSkeleton(headers, html_body, text_body)
            reference = render(context)
            checked = self._checked(candidate, values, reference, identity)
            with self._lock:
                self._skeletons[key] = checked
                while len(self._skeletons) > self._limit:
                    self._skeletons.popitem(last=False)
            if isinstance(checked, str):
                return None, reference
            skeleton = checked
        if isinstance(skeleton, str):
            return None, render(context)
        return skeleton.build(to[0], to[1], values), None

    @staticmethod
    def _checked(
        candidate: NoticeSkeleton,
        values: Mapping[str, str],
        reference: tuple[str, str],
        identity: Hashable,
    ) -> NoticeSkeleton | str:
        """`candidate` if filling it gives what the old path rendered, else DIRECT."""
        if candidate.slot_names() != set(values):
            # A slot mangled or dropped twice over, or a marker in the configuration's text.
            same = False
        else:
            filled_html, filled_text = candidate.fill_strings(values)
            same = filled_text == _with_newline(reference[1]) and html.unescape(
                filled_html
            ) == html.unescape(_with_newline(reference[0]))
        if same:
            return candidate
        log.warning(
            "the transactional email %s does not keep its per-person values apart "
            "(a filter over the name, address or a link?): rendering it in full for each email",
            identity,
        )
        return DIRECT


def _frozen(value: object) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, set | frozenset):
        return tuple(sorted(_frozen(v) for v in value))  # type: ignore[type-var]
    return value


__all__ = [
    "DIRECT",
    "NoticeHeaders",
    "NoticeSkeleton",
    "NoticeTemplates",
    "UnsafeHeader",
    "recipient_header",
    "slot",
]
