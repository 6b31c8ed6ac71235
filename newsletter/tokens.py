"""Signed, URL-safe tokens for the links in emails (itsdangerous, one salt per purpose).

A token carries the subscriber id and a short hash of their address, so a token cannot be
used for another address; ids are never recycled (migration 0011), so a deleted record's token
names nobody, even when the same address subscribes again. Unsubscribe and preference
links never expire (old emails must keep working, as RFC 8058 expects); confirmation links do,
and so do privacy links (download my data, forget me), which are short-lived and emailed on
request, and address-change links (mailed to the new address, carrying it). A confirmation
token may also carry the choices of the request it answers (a small JSON object), applied
only when the link is used; the unsubscribe and preference links of a digest carry its month
(`{"c": "2025-01"}`), so an unsubscribe or a dropped topic is counted for the issue it came
from (tokens without it, made before, keep working).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from itsdangerous import TimestampSigner
from itsdangerous import URLSafeSerializer
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.encoding import int_to_bytes

from newsletter.errors import TokenError
from newsletter.errors import TokenExpired

UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"
CONFIRM = "confirm"
PRIVACY = "privacy"
ADDRESS = "address"  # confirms a change of address: carries the new one, mailed to it
PURPOSES = (UNSUBSCRIBE, PREFERENCES, CONFIRM, PRIVACY, ADDRESS)
CONFIRM_MAX_AGE = 7 * 24 * 3600
PRIVACY_MAX_AGE = 3600  # when the caller gives none ([web] privacy_link_max_age is the setting)
_MAX_AGES = {CONFIRM: CONFIRM_MAX_AGE, PRIVACY: PRIVACY_MAX_AGE, ADDRESS: CONFIRM_MAX_AGE}
ADDRESS_HASH_LENGTH = 10  # hex digits of the address hash in a token
# The `extra` key naming the digest (YYYY-MM) an unsubscribe or preferences link was sent in.
CAMPAIGN = "c"
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2]|Q[1-4])")  # a month, or a round-up quarter


def address_hash(email: str, length: int = ADDRESS_HASH_LENGTH) -> str:
    """A short stable hash of a lowercased address (bound into tokens)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:length]


class Signer:
    """Makes and checks tokens for each purpose with one secret key."""

    def __init__(self, secret_key: str) -> None:
        self._serializers = {
            purpose: URLSafeTimedSerializer(secret_key, salt=f"newsletter.{purpose}")
            for purpose in PURPOSES
        }
        # What itsdangerous's `dumps` derives again for every token (the salted key, an HMAC
        # set up from it), done once: a send makes two tokens per message, and deriving
        # them cost more than building the rest of the message. The tokens are the same
        # bytes `dumps` gives (tests/test_tokens.py compares them).
        self._macs = {}
        for purpose, serializer in self._serializers.items():
            signer = serializer.make_signer()
            algorithm = signer.algorithm
            digest = getattr(algorithm, "digest_method", hashlib.sha1)
            self._macs[purpose] = (hmac.new(signer.derive_key(), digestmod=digest), signer.sep)
        # The clock is TimestampSigner's own `get_timestamp`, which `dumps` would ask.
        self._clock = TimestampSigner(secret_key)
        self._stamp: tuple[int, bytes] = (0, b"")

    def make(
        self, purpose: str, subscriber_id: int, email: str, extra: Mapping[str, Any] | None = None
    ) -> str:
        """A token for `purpose` naming this subscriber, carrying `extra` (JSON) if given."""
        return self.make_many((purpose,), subscriber_id, email, extra)[0]

    def make_many(
        self,
        purposes: tuple[str, ...],
        subscriber_id: int,
        email: str,
        extra: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """`make` for several purposes at once (the payload is serialized once): the tokens
        `URLSafeTimedSerializer.dumps` gives, one per purpose, in order."""
        value: list[Any] = [subscriber_id, address_hash(email)]
        if extra:
            value.append(dict(extra))
        payload = self._serializers[purposes[0]].dump_payload(value)
        now = self._clock.get_timestamp()
        if self._stamp[0] != now:  # TimestampSigner's stamp: the same for a whole second
            self._stamp = (now, base64_encode(int_to_bytes(now)))
        stamp = self._stamp[1]
        tokens = []
        for purpose in purposes:
            template, sep = self._macs[purpose]
            signed = payload + sep + stamp
            mac = template.copy()
            mac.update(signed)
            tokens.append((signed + sep + base64_encode(mac.digest())).decode("utf-8"))
        return tokens

    def issued_at(self, purpose: str, token: str) -> dt.datetime | None:
        """When a valid token was made (aware UTC), or None if it does not verify or expired."""
        max_age = _MAX_AGES.get(purpose)
        try:
            _, stamp = self._serializers[purpose].loads(
                token, max_age=max_age, return_timestamp=True
            )
        except BadSignature:  # also SignatureExpired, its subclass
            return None
        assert isinstance(stamp, dt.datetime)
        return stamp

    def read(self, purpose: str, token: str, max_age: int | None = None) -> tuple[int, str]:
        """(subscriber id, address hash) from a token; TokenError if tampered, TokenExpired if
        too old (confirmation and privacy tokens expire; `max_age` overrides the default)."""
        subscriber_id, digest, _ = self.read_with_extra(purpose, token, max_age)
        return subscriber_id, digest

    def campaign(self, purpose: str, token: str) -> str:
        """The month (or round-up quarter) of the digest a link came in ("" when the
        token names none: links made before campaigns were named, or outside a digest).
        Only for attributing what a reader does to an issue; never checked for access."""
        try:
            _, _, extra = self.read_with_extra(purpose, token)
        except TokenError:
            return ""
        month = extra.get(CAMPAIGN) if extra else None
        return month if isinstance(month, str) and _MONTH.fullmatch(month) else ""

    def read_with_extra(
        self, purpose: str, token: str, max_age: int | None = None
    ) -> tuple[int, str, dict[str, Any] | None]:
        """(subscriber id, address hash, extra or None) from a token; errors as `read`."""
        if max_age is None:
            max_age = _MAX_AGES.get(purpose)
        try:
            value = self._serializers[purpose].loads(token, max_age=max_age)
        except SignatureExpired:
            raise TokenExpired("this link has expired") from None
        except BadSignature:
            raise TokenError("this link is not valid (it may have been cut or altered)") from None
        if (
            not isinstance(value, list)
            or len(value) not in (2, 3)
            or not isinstance(value[0], int)
            or not isinstance(value[1], str)
            or (len(value) == 3 and not isinstance(value[2], dict))
        ):
            raise TokenError("this link is not valid")
        return value[0], value[1], (value[2] if len(value) == 3 else None)


CLICK_SALT = "newsletter.click"
MAX_TRACKED_URL = 2000  # longer links are left as they are (the redirect URL would be longer)


@dataclass(frozen=True)
class ClickTarget:
    """What a click-redirect token names: an issue, a variant, a summary ('' for none), a link.
    Never a reader: every reader of a variant gets the same token."""

    month: str
    variant: str
    summary: str
    url: str


def trackable(url: str) -> bool:
    """Whether a link can go through the click redirect (http(s), not too long)."""
    return url.startswith(("https://", "http://")) and len(url) <= MAX_TRACKED_URL


class LinkSigner:
    """Signs the targets of the click redirect (`/r/{token}`). Without a timestamp, so one
    link of one variant has one token, whoever it is sent to (rendered once per variant), and
    a link in an old digest keeps working."""

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt=CLICK_SALT)

    def make(self, target: ClickTarget) -> str:
        """The token for `target`; ValueError for a link that cannot be tracked."""
        if not trackable(target.url):
            raise ValueError(f"not a trackable link: {target.url[:80]!r}")
        return self._serializer.dumps([target.month, target.variant, target.summary, target.url])

    def read(self, token: str) -> ClickTarget:
        """The target a token names; TokenError if it was not made by us (or was altered)."""
        try:
            value = self._serializer.loads(token)
        except BadSignature:
            raise TokenError("this link is not valid (it may have been cut or altered)") from None
        if (
            not isinstance(value, list)
            or len(value) != 4
            or not all(isinstance(part, str) for part in value)
            or not trackable(value[3])
        ):
            raise TokenError("this link is not valid")
        return ClickTarget(value[0], value[1], value[2], value[3])
