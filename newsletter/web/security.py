"""CSRF tokens, in-memory rate limits, admin password tags and security headers.

Admin sessions and login attempts live in the database (`store.admin_auth`). The subscribe
and link rate limiters keep their counters in this process's memory: they reset on restart and are
not shared between several `newsletter serve` processes. That is enough for one process behind
a reverse proxy (the deployment the docs describe); with several processes each one enforces
its own limits.
"""

from __future__ import annotations

import collections
import hmac
import secrets
import threading
import time
from collections.abc import Callable

from itsdangerous import BadData
from itsdangerous import URLSafeTimedSerializer
from starlette.requests import Request

CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE = 12 * 3600
_SESSION_CSRF_KEY = "csrf"


def derive_key(secret_key: str, purpose: str) -> str:
    """A separate key per use of the one configured secret (session cookie, CSRF, ...)."""
    return hmac.new(secret_key.encode(), f"newsletter.web.{purpose}".encode(), "sha256").hexdigest()


# --- CSRF ----------------------------------------------------------------------------------


class Csrf:
    """Form tokens bound to a random value kept in the signed session cookie.

    The token is that value signed with a timestamp (itsdangerous): a page from another site
    cannot read the cookie, so it cannot produce a token that matches it.
    """

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeTimedSerializer(derive_key(secret_key, "csrf"), salt="csrf")

    def token(self, request: Request) -> str:
        """The token to put in a form's hidden `csrf_token` field (creates the session value)."""
        value = request.session.get(_SESSION_CSRF_KEY)
        if not isinstance(value, str):
            value = secrets.token_urlsafe(18)
            request.session[_SESSION_CSRF_KEY] = value
        return self._serializer.dumps(value)

    def valid(self, request: Request, token: object) -> bool:
        """Whether `token` matches this browser's session and is recent enough."""
        expected = request.session.get(_SESSION_CSRF_KEY)
        if not isinstance(token, str) or not isinstance(expected, str) or len(token) > 500:
            return False
        try:
            value = self._serializer.loads(token, max_age=CSRF_MAX_AGE)
        except BadData:
            return False
        return isinstance(value, str) and hmac.compare_digest(value, expected)


# --- rate limits ---------------------------------------------------------------------------


class SlidingWindow:
    """At most `limit` events per key in any `window` seconds (per process, in memory)."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._events: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        events = self._events.get(key)
        if events is None:
            events = collections.deque()
            self._events[key] = events
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)  # forget the least recently seen key
        else:
            self._events.move_to_end(key)
        while events and events[0] <= now - self.window:
            events.popleft()
        return events

    def hit(self, key: str) -> bool:
        """Record one event for `key`; False (and not recorded) if over the limit."""
        with self._lock:
            now = self.clock()
            events = self._recent(key, now)
            if len(events) >= self.limit:
                return False
            events.append(now)
            return True

    def record(self, key: str) -> None:
        """Record one event without checking the limit (e.g. a failed login)."""
        with self._lock:
            now = self.clock()
            self._recent(key, now).append(now)

    def blocked(self, key: str) -> bool:
        """Whether the next event for `key` would go over the limit."""
        with self._lock:
            return len(self._recent(key, self.clock())) >= self.limit

    def count(self, key: str) -> int:
        """Events for `key` within the window."""
        with self._lock:
            return len(self._recent(key, self.clock()))

    def retry_after(self, key: str) -> int:
        """Seconds until the oldest event of `key` leaves the window (0 when not limited)."""
        with self._lock:
            now = self.clock()
            events = self._recent(key, now)
            if len(events) < self.limit:
                return 0
            return max(1, int(events[0] + self.window - now + 0.999))

    def reset(self, key: str) -> None:
        """Forget the events of `key` (e.g. after a successful login)."""
        with self._lock:
            self._events.pop(key, None)


def client_ip(request: Request) -> str:
    """The client's address as the server sees it (uvicorn applies trusted proxy headers)."""
    return request.client.host if request.client else "unknown"


# --- admin password ------------------------------------------------------------------------


def password_tag(secret_key: str, stored_hash: str) -> str:
    """Names the current admin password hash in session rows without storing it: another
    password (a changed hash) has another tag, and its sessions end."""
    return derive_key(secret_key, "password:" + stored_hash.strip())[:32]


# --- headers -------------------------------------------------------------------------------

CSP = (
    "default-src 'self'; img-src 'self' https: data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-src 'self'; frame-ancestors 'self'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # links carry tokens: never leak them in Referer
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": CSP,
}
