"""The web app's transactional emails: the app's name for `newsletter.sending.notices`.

Composing them is `newsletter.message.transactional` and sending them
`newsletter.sending.notices`, below the web layer, so `newsletter subscribers add --status
pending` sends the very confirmation the subscribe form sends.
"""

from __future__ import annotations

from newsletter.message.transactional import PRIVACY_LINK
from newsletter.message.transactional import WELCOME
from newsletter.message.transactional import Person
from newsletter.sending.notices import ADDRESS_CHANGE_REQUEST
from newsletter.sending.notices import LINK_REQUEST
from newsletter.sending.notices import Notices
from newsletter.sending.notices import person_of

Mailer = Notices

__all__ = [
    "ADDRESS_CHANGE_REQUEST",
    "LINK_REQUEST",
    "PRIVACY_LINK",
    "WELCOME",
    "Mailer",
    "Person",
    "person_of",
]
