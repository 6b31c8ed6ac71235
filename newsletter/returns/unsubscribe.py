"""Unsubscribe by mail: the requests sent to the List-Unsubscribe `mailto:` address
(`newsletter inbound scan PATH`).

Every digest carries `List-Unsubscribe: <https://…/u/TOKEN>, <mailto:ADDR?subject=unsubscribe
%20TOKEN>`. A mail client that uses the mailto half sends a message to ADDR whose Subject is
`unsubscribe TOKEN`. Here we read such messages and unsubscribe:

- the subscriber named by a valid token (Subject, or the first line of the plain-text body),
  provided the token still matches their address (like the one-click link); else
- the sender, when the From address is a subscriber and the message asks to unsubscribe (the
  word "unsubscribe" in the Subject or first line). RFC 8058 clients send the mailto request
  from the subscriber's own address, and people who write "unsubscribe" by hand do too.

Automatic mail (auto-replies, bounces) is never acted on, and a message that does not ask to
unsubscribe is left alone, so the address may be a person's inbox too. From can be forged, but
all a forger can do is unsubscribe someone — what the one-click link in any forwarded copy of
the digest allows anyway.

Re-reading a mailbox is harmless: unsubscribing twice changes nothing.

An unsubscribe by mail counts for an issue in its report (`store.responses`): the campaign
named in the token, else the most recent issue the ledger says the reader was sent within 30
days (`responses.last_sent_campaign`), else none.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass
from dataclasses import field
from email.message import EmailMessage

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.errors import LinkProblem
from newsletter.returns.mailbox import MailItem
from newsletter.returns.mailbox import finish_scan
from newsletter.returns.mailbox import from_address
from newsletter.returns.mailbox import header_text
from newsletter.returns.mailbox import is_automatic
from newsletter.returns.mailbox import parse_message
from newsletter.returns.mailbox import read_mailbox
from newsletter.store import responses
from newsletter.store.engine import session_factory
from newsletter.store.models import Subscriber
from newsletter.store.registrar import subscriber_for_token
from newsletter.store.subscribers import get_subscriber
from newsletter.store.subscribers import is_subscribed
from newsletter.store.subscribers import unsubscribe
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer

# "unsubscribe" and, optionally, what follows it: a token is URL-safe base64 with dots.
_REQUEST = re.compile(r"\bunsubscribe\b[\s:]*([A-Za-z0-9_.-]{20,400})?", re.IGNORECASE)


@dataclass(frozen=True)
class Request:
    """What a message to the unsubscribe address asks for."""

    sender: str  # the From address
    asks: bool  # "unsubscribe" in the Subject or first body line
    token: str | None
    automatic: str  # why it is automatic mail, or ""


def first_text_line(message: EmailMessage) -> str:
    """The first non-empty line of the plain-text body ("" if there is none)."""
    try:
        part = message.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
    except (KeyError, LookupError, ValueError, UnicodeError):  # odd charsets and encodings
        return ""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def parse_request(data: bytes) -> Request:
    """Read an unsubscribe request from a message (pure: no database)."""
    message = parse_message(data)
    asks = False
    token = None
    # The mailto subject is percent-encoded in the header; clients decode it, naive ones not.
    for text in (header_text(message, "Subject"), first_text_line(message)):
        match = _REQUEST.search(urllib.parse.unquote(text))
        if match:
            asks = True
            token = token or match.group(1)
    return Request(from_address(message), asks, token, is_automatic(message))


@dataclass
class InboundReport:
    """What a scan of the unsubscribe mailbox did (or, with `dry_run`, would do)."""

    path: str
    dry_run: bool = False
    messages: int = 0
    # (message key, address, how: "token" or "sender")
    unsubscribed: list[tuple[str, str, str]] = field(default_factory=list)
    # (message key, address, status): already unsubscribed, bounced or complained
    already: list[tuple[str, str, str]] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (message key, reason)


# Why a token was refused (`LinkProblem.kind`), as the scan report says it.
_TOKEN_PROBLEMS = {
    "invalid": "the token is not valid",
    "expired": "the token has expired",
    "test": "the token comes from a test message",
    "gone": "the token no longer matches a subscription",
}


def _by_token(session: Session, signer: Signer, token: str) -> tuple[Subscriber | None, str]:
    """(subscriber, "") for a valid token, else (None, why not): the check of the one-click
    link (`subscriber_for_token`)."""
    try:
        return subscriber_for_token(session, signer, UNSUBSCRIBE, token), ""
    except LinkProblem as problem:
        return None, _TOKEN_PROBLEMS.get(problem.kind, str(problem))


def handle_request(
    session: Session, signer: Signer, request: Request
) -> tuple[Subscriber | None, str, str]:
    """(subscriber to unsubscribe, how, "") or (None, "", why the message is ignored)."""
    if request.automatic:
        return None, "", request.automatic
    if not request.asks:
        return None, "", "not an unsubscribe request"
    problem = ""
    if request.token:
        subscriber, problem = _by_token(session, signer, request.token)
        if subscriber is not None:
            return subscriber, "token", ""
    if request.sender:
        subscriber = get_subscriber(session, request.sender)
        if subscriber is not None:
            return subscriber, "sender", ""
        reason = f"the sender {request.sender} is not a subscriber"
    else:
        reason = "the message has no From address"
    return None, "", f"{problem}; {reason}" if problem else reason


def scan(
    path: str | os.PathLike,
    settings: Settings,
    engine: Engine,
    *,
    dry_run: bool = False,
    mark_processed: bool = True,
) -> InboundReport:
    """Process the unsubscribe requests in a Maildir or mbox (see the module docstring).

    With `dry_run` nothing changes. Otherwise the Maildir messages acted on are marked seen
    (moved to cur/ with the S flag) when `mark_processed`; others are left as they are.
    """
    report = InboundReport(str(path), dry_run=dry_run)
    signer = Signer(settings.secret_key())
    acted: list[MailItem] = []
    with session_factory(engine)() as session:
        for item in read_mailbox(path):
            report.messages += 1
            try:
                request = parse_request(item.data)
            except Exception as error:  # one mangled message must not stop the scan
                report.ignored.append((item.key, f"cannot read it ({error.__class__.__name__})"))
                continue
            subscriber, how, reason = handle_request(session, signer, request)
            if subscriber is None:
                report.ignored.append((item.key, reason))
                continue
            acted.append(item)
            if is_subscribed(subscriber):
                if not dry_run and unsubscribe(session, subscriber):
                    campaign = (
                        signer.campaign(UNSUBSCRIBE, request.token or "") if how == "token" else ""
                    )
                    campaign = campaign or responses.last_sent_campaign(session, subscriber.id)
                    responses.record(session, campaign, responses.UNSUBSCRIBED)
                report.unsubscribed.append((item.key, subscriber.email, how))
            else:
                report.already.append((item.key, subscriber.email, subscriber.status))
        finish_scan(session, acted, dry_run=dry_run, mark=mark_processed)
    return report
