"""Transactional single emails (confirmations, welcome, alerts): built with the stdlib, one at a
time.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.utils import format_datetime
from email.utils import formataddr
from email.utils import make_msgid

from newsletter.config import Settings
from newsletter.message.skeleton import POLICY


def notice_message(
    settings: Settings,
    *,
    to_email: str,
    subject: str,
    text: str,
    html: str | None = None,
    to_name: str = "",
) -> bytes:
    """One message outside a campaign (confirmation, welcome, admin alert), LF line endings.

    No List-Unsubscribe: these answer something the person just did, or go to the admin.
    Built with the stdlib: one message at a time, so its few milliseconds do not matter.
    """
    message = EmailMessage(policy=POLICY)
    newsletter = settings.newsletter
    message["From"] = formataddr((newsletter.from_name or newsletter.name, newsletter.from_email))
    message["To"] = formataddr((to_name, to_email)) if to_name else to_email
    if newsletter.reply_to:
        message["Reply-To"] = newsletter.reply_to
    message["Subject"] = subject
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = make_msgid(domain=settings.sender_domain())
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    message.set_content(text, subtype="plain", cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message.as_bytes()
