"""Sending rate limits: a token bucket per second plus hourly and daily quotas.

Providers cap how fast and how much we may send (e.g. 14 messages/s, 50,000/day). The limiter
is shared by the sending threads of one process; quotas start from what the ledger says was
already sent in the window, so a restart does not reset them.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from newsletter.store import ledger
from newsletter.store.engine import session_factory
from newsletter.store.models import utcnow

HOUR = 3600.0
DAY = 86400.0


class Window:
    """Messages sent in the last `span` seconds, counted in one-second buckets."""

    def __init__(self, span: float, limit: int, already: int = 0, now: float = 0.0) -> None:
        self.span = span
        self.limit = limit
        self._buckets: collections.deque[list] = collections.deque()
        self._total = 0
        if already:
            self._buckets.append([int(now), already])
            self._total = already

    def _expire(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - self.span:
            self._total -= self._buckets.popleft()[1]

    def wait_time(self, now: float) -> float:
        """Seconds until one more message fits (0 if it fits now)."""
        if not self.limit:
            return 0.0
        self._expire(now)
        if self._total < self.limit:
            return 0.0
        # The oldest bucket has to leave the window first.
        return max(0.0, self._buckets[0][0] + self.span - now) if self._buckets else 0.0

    def add(self, now: float) -> None:
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += 1
        else:
            self._buckets.append([second, 1])
        self._total += 1


class RateLimiter:
    """Blocks senders so that per-second, per-hour and per-day limits hold (0 = no limit)."""

    def __init__(
        self,
        per_second: float = 0.0,
        per_hour: int = 0,
        per_day: int = 0,
        *,
        sent_last_hour: int = 0,
        sent_last_day: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.per_second = per_second
        self._rate = per_second
        now = clock()
        self._tokens = max(1.0, per_second)
        self._stamp = now
        self._slow_until = 0.0
        self._last_cut = -1e9
        self.hour = Window(HOUR, per_hour, sent_last_hour, now)
        self.day = Window(DAY, per_day, sent_last_day, now)
        self._lock = threading.Lock()

    @classmethod
    def with_quotas(
        cls, rates: tuple[float, int, int], engine: Engine | None = None
    ) -> RateLimiter:
        """A limiter for (per second, per hour, per day); with `engine`, the hour and day
        quotas start from what this installation already sent in them, any campaign."""
        per_second, per_hour, per_day = rates
        hour = day = 0
        if engine is not None and (per_hour or per_day):
            now = utcnow()
            with session_factory(engine)() as session:
                hour = ledger.sent_since(session, now - dt.timedelta(hours=1))
                day = ledger.sent_since(session, now - dt.timedelta(days=1))
        return cls(per_second, per_hour, per_day, sent_last_hour=hour, sent_last_day=day)

    @property
    def rate(self) -> float:
        """The per-second rate in force (lowered for a while after throttling)."""
        return self._rate

    def reserve(self) -> float:
        """Take a slot if one is free now and return 0, else return how long to wait."""
        with self._lock:
            now = self.clock()
            if self._slow_until and now >= self._slow_until:
                self._rate, self._slow_until = self.per_second, 0.0
            wait = max(self.hour.wait_time(now), self.day.wait_time(now))
            if wait:
                return wait
            if self._rate:
                self._tokens = min(
                    max(1.0, self._rate), self._tokens + (now - self._stamp) * self._rate
                )
                self._stamp = now
                if self._tokens < 1.0 - 1e-9:  # float rounding must not leave a 1e-16 s wait
                    return (1.0 - self._tokens) / self._rate
                self._tokens = max(0.0, self._tokens - 1.0)
            self.hour.add(now)
            self.day.add(now)
            return 0.0

    def throttled(self, observed_rate: float, cooldown: float = 60.0) -> None:
        """The server asked us to slow down: halve the rate for `cooldown` seconds.

        Replies that arrive together (one per connection) count as one signal: the rate is
        cut at most once a second, so a burst does not collapse it to the floor.
        """
        with self._lock:
            now = self.clock()
            self._slow_until = now + cooldown
            if now - self._last_cut < 1.0:
                return
            self._last_cut = now
            current = self._rate or max(observed_rate, 2.0)
            self._rate = max(0.2, current / 2)
            self._tokens = min(self._tokens, 1.0)
