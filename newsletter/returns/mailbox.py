"""Reading inbound mail: a Maildir or an mbox, its messages and the headers we act on.

Shared by the bounce scan and the unsubscribe-by-mail scan. Reading never changes a message;
`mark_seen` does, once it has been handled.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import mailbox
import os
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

from sqlalchemy.orm import Session

from newsletter.errors import MailboxError

# Precedence values of automatic mail (RFC 3834 recommends Auto-Submitted; older software).
_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")


# --- reading a mailbox -------------------------------------------------------------------


@dataclass(frozen=True)
class MailItem:
    """One message of a mailbox: its key (Maildir file name or `#n` in an mbox) and bytes."""

    key: str
    data: bytes
    path: Path | None = None  # the Maildir file; None in an mbox

    @property
    def seen(self) -> bool:
        """Whether a Maildir message is already in cur/ with the S (seen) flag."""
        if self.path is None or self.path.parent.name != "cur":
            return False
        _, _, flags = self.path.name.partition(":2,")
        return "S" in flags


def is_maildir(path: Path) -> bool:
    """A folder with cur/, new/ and tmp/ in it."""
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def read_mailbox(path: str | os.PathLike) -> Iterator[MailItem]:
    """Every message of a Maildir (new/ then cur/, by file name) or of an mbox file.

    MailboxError for a path that is neither. An mbox is read, never rewritten.
    """
    folder = Path(path)
    if folder.is_dir():
        if not is_maildir(folder):
            raise MailboxError(f"{folder} is a folder but not a Maildir (no cur/, new/, tmp/)")
        yield from _read_maildir(folder)
    elif folder.is_file():
        yield from _read_mbox(folder)
    else:
        raise MailboxError(f"{folder}: no such Maildir or mbox file")


def _read_maildir(folder: Path) -> Iterator[MailItem]:
    for sub in ("new", "cur"):
        for entry in sorted(os.scandir(folder / sub), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            try:
                data = Path(entry.path).read_bytes()
            except FileNotFoundError:
                continue  # moved by a mail client since we listed the folder
            yield MailItem(entry.name.partition(":")[0], data, Path(entry.path))


def _read_mbox(path: Path) -> Iterator[MailItem]:
    # The mbox parser takes any file for a mailbox of zero or one message: an empty file is an
    # empty mbox, anything else must start with a "From " separator line.
    with path.open("rb") as handle:
        start = handle.read(5)
    if start and start != b"From ":
        raise MailboxError(
            f"{path} is not an mbox file (it does not start with a 'From ' line) nor a Maildir"
        )
    box = mailbox.mbox(path, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            yield MailItem(f"#{number}", box.get_bytes(key))
    finally:
        box.close()


def mark_seen(item: MailItem) -> None:
    """Move a Maildir message to cur/ with the S flag, as a mail client does on reading it.

    Nothing for mbox messages (the file is never rewritten) or messages already seen.
    """
    if item.path is None or item.seen:
        return
    base, _, flags = item.path.name.partition(":2,")
    target = item.path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(set(flags + 'S')))}"
    with contextlib.suppress(FileNotFoundError):  # another reader moved it first
        item.path.rename(target)


def parse_message(data: bytes) -> EmailMessage:
    """A message parsed with the modern policy (decoded headers)."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # the modern policy makes EmailMessage objects
    return message


def header_text(message: EmailMessage, name: str) -> str:
    """A header's decoded value, or "" when it is absent or cannot be decoded."""
    try:
        value = message.get(name)
        return "" if value is None else str(value)
    except Exception:  # the header parser raises assorted errors on malformed headers
        return ""


def from_address(message: EmailMessage) -> str:
    """The bare address of the From header, or ""."""
    addresses = [address for _, address in getaddresses([header_text(message, "From")])]
    return addresses[0].strip() if addresses else ""


def is_automatic(message: EmailMessage) -> str:
    """Why a message looks machine-generated (auto-reply, bounce), or "" when it does not."""
    if message.get_content_type() == "multipart/report":
        return "a delivery or read report"
    auto = header_text(message, "Auto-Submitted").strip().lower()
    if auto and auto != "no":
        return f"automatic message (Auto-Submitted: {auto})"
    precedence = header_text(message, "Precedence").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"automatic message (Precedence: {precedence})"
    for name in _AUTO_HEADERS:
        if message.get(name) is not None:
            return f"automatic message ({name})"
    return ""


# --- unsubscribe requests ----------------------------------------------------------------


def finish_scan(session: Session, handled: list[MailItem], *, dry_run: bool, mark: bool) -> None:
    """End a mailbox scan: keep its changes (roll them back for a dry run), then mark the
    handled Maildir messages seen, only once the changes are committed."""
    if dry_run:
        session.rollback()
        return
    session.commit()
    if mark:
        for item in handled:
            mark_seen(item)
