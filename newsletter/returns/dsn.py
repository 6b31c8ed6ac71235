"""Reading bounce reports: flufl.bounce for the failed recipients (RFC 3464 DSNs and many older
formats) plus our own reading of the DSN fields (status, diagnostic, delayed vs failed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.message
import email.utils
import hashlib
from dataclasses import dataclass
from email.message import Message

from newsletter.config import Settings
from newsletter.message.envelope import VERP_HEADERS
from newsletter.message.envelope import read_verp
from newsletter.store.bounces import HARD
from newsletter.store.bounces import SOFT


@dataclass(frozen=True)
class Failure:
    """One failed recipient in a report. `address` is "" when the report names none."""

    address: str
    kind: str  # HARD or SOFT
    status: str = ""  # the DSN status code, e.g. "5.1.1"
    diagnostic: str = ""


@dataclass(frozen=True)
class ParsedBounce:
    """What one message says: its failures, its VERP token, and when it was written."""

    message_id: str
    failures: tuple[Failure, ...]
    verp: tuple[int, str] | None = None
    received_at: dt.datetime | None = None
    original_message_id: str = ""  # Message-ID of the message that bounced, if returned


@dataclass(frozen=True)
class _Block:
    address: str
    action: str
    status: str
    diagnostic: str


def _recipient(block: Message) -> str:
    # Original-Recipient is the address we sent to (when the MTA kept it); Final-Recipient
    # may be the address after forwarding. Both read "rfc822; address".
    for name in ("Original-Recipient", "Final-Recipient", "X-Actual-Recipient"):
        value = str(block.get(name, "")).strip()
        kind, semicolon, address = value.partition(";")
        if semicolon and kind.strip().lower() == "rfc822" and "@" in address:
            return address.strip().strip("<>")
        if not semicolon and value.startswith("<") and value.endswith(">"):
            return value[1:-1]
    return ""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:1000]


def _delivery_status(message: Message) -> tuple[list[_Block], str]:
    """The per-recipient blocks of every message/delivery-status part, and the Arrival-Date."""
    blocks: list[_Block] = []
    arrival = ""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        payload = part.get_payload()
        if not isinstance(payload, list):
            continue
        for index, block in enumerate(payload):
            if index == 0:
                arrival = arrival or str(block.get("Arrival-Date", ""))
            action = str(block.get("Action", "")).strip().lower()
            if not action:
                continue
            blocks.append(
                _Block(
                    _recipient(block),
                    action,
                    str(block.get("Status", "")).strip().split(" ")[0],
                    _one_line(block.get("Diagnostic-Code", "")),
                )
            )
    return blocks, arrival


def _kind(action: str, status: str) -> str | None:
    if action.startswith("delayed"):
        return SOFT
    if action.startswith(("fail", "error")):  # opensmtpd writes "error"
        # Failed after retrying a temporary condition (mailbox full, host down): soft.
        return SOFT if status.startswith("4") else HARD
    return None  # delivered, relayed, expanded: not a failure


def _original_message_id(message: Message) -> str:
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            value = inner.get("Message-ID", "") if isinstance(inner, Message) else ""
        elif kind == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            headers = text if isinstance(text, bytes) else b""
            value = email.message_from_bytes(headers).get("Message-ID", "")
        else:
            continue
        if value:
            return str(value).strip()[:500]
    return ""


def _when(message: Message, arrival: str) -> dt.datetime | None:
    for text in (message.get("Date", ""), arrival):
        try:
            when = email.utils.parsedate_to_datetime(str(text))
        except (TypeError, ValueError, IndexError):
            continue
        # "-0000" (time zone unknown) parses as naive: RFC 5322 says it is UTC.
        return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    return None


def _verp_of(message: Message, settings: Settings) -> tuple[int, str] | None:
    for name in VERP_HEADERS:
        for value in message.get_all(name, []):
            for _, address in email.utils.getaddresses([str(value)]):
                found = read_verp(address, settings)
                if found:
                    return found
    return None


def _flufl_failures(data: bytes, message: Message) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """flufl.bounce's temporary and permanent failures, for any message whatever its headers.

    No header decides whether a message is a report: real ones come without a From (simple_13
    of flufl.bounce's corpus) or forwarded by a person, with that person's From and Subject.
    Ordinary mail is told apart by its content: flufl.bounce's detectors (and our reading of
    the DSN fields) find no failed recipient in it.
    """
    # Imported here: it is heavy, and the sending engine imports this module only for the
    # envelope sender and send-time bounces.
    from flufl.bounce import all_failures

    view = message
    if not email.utils.getaddresses([str(message.get("From", ""))]):
        # flufl.bounce's Yale detector takes getaddresses(From)[0], an IndexError when that
        # is empty (no From, or an empty one, on the Python 3.11 we run): all_failures logs
        # a traceback and stops before the qmail, SimpleMatch, ... detectors run after it.
        # A null From reads, to every detector, as the no-sender it is.
        view = email.message_from_bytes(data)
        del view["From"]
        view["From"] = "<>"
    # A heuristic detector tripping on odd mail must not stop a scan.
    with contextlib.suppress(Exception):
        return all_failures(view)
    return frozenset(), frozenset()


def parse_bounce(data: bytes, settings: Settings) -> ParsedBounce:
    """The failures a message reports (none for a message that is not a bounce)."""
    # compat32 parsing: what flufl.bounce's detectors are written for.
    message = email.message_from_bytes(data)
    temporary, permanent = _flufl_failures(data, message)
    blocks, arrival = _delivery_status(message)
    failures: dict[str, Failure] = {}
    for block in blocks:
        kind = _kind(block.action, block.status)
        key = block.address.lower()
        if kind and key not in failures:
            failures[key] = Failure(block.address, kind, block.status, block.diagnostic)
    # flufl.bounce also reads non-DSN formats (qmail, Exim, Exchange, ...).
    for found, kind in ((permanent, HARD), (temporary, SOFT)):
        for raw in found:
            address = raw.decode("ascii", "replace")
            failures.setdefault(address.lower(), Failure(address, kind))
    message_id = str(message.get("Message-ID", "")).strip()[:500]
    if not message_id:
        message_id = "sha256:" + hashlib.sha256(data).hexdigest()[:40]
    return ParsedBounce(
        message_id=message_id,
        failures=tuple(failures.values()),
        verp=_verp_of(message, settings),
        received_at=_when(message, arrival),
        original_message_id=_original_message_id(message),
    )
