"""The rate limiter with a controllable clock: no sleeping."""

from __future__ import annotations

import pytest

from newsletter.sending.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drain(limiter: RateLimiter, clock: Clock, seconds: float, step: float = 0.01) -> int:
    """How many messages the limiter lets through in `seconds` of simulated time."""
    sent = 0
    end = clock.now + seconds
    while clock.now < end:
        wait = limiter.reserve()
        if wait:
            clock.now += min(wait, step) if wait < step else wait
        else:
            sent += 1
    return sent


def test_unlimited_never_waits() -> None:
    limiter = RateLimiter(clock=Clock())
    assert all(limiter.reserve() == 0 for _ in range(10_000))


@pytest.mark.parametrize("rate", [1, 5, 14, 100])
def test_per_second_rate_holds(rate: int) -> None:
    clock = Clock()
    limiter = RateLimiter(per_second=rate, clock=clock)
    sent = drain(limiter, clock, 10)
    assert rate * 10 <= sent <= rate * 10 + rate  # the bucket may start full


def test_hourly_quota_counts_what_was_already_sent() -> None:
    clock = Clock()
    limiter = RateLimiter(per_hour=100, sent_last_hour=90, clock=clock)
    allowed = 0
    while limiter.reserve() == 0:
        allowed += 1
    assert allowed == 10
    wait = limiter.reserve()
    assert 3500 < wait <= 3600
    clock.now += wait
    assert limiter.reserve() == 0


def test_daily_quota_waits_for_the_window() -> None:
    clock = Clock()
    limiter = RateLimiter(per_day=3, clock=clock)
    for _ in range(3):
        assert limiter.reserve() == 0
        clock.now += 60
    assert limiter.reserve() == pytest.approx(86400 - 180)


def test_throttling_halves_the_rate_then_recovers() -> None:
    clock = Clock()
    limiter = RateLimiter(per_second=20, clock=clock)
    limiter.throttled(observed_rate=20, cooldown=60)
    assert limiter.rate == 10
    limiter.throttled(observed_rate=20, cooldown=60)  # the same burst: no second cut
    assert limiter.rate == 10
    assert drain(limiter, clock, 10) <= 10 * 10 + 20
    clock.now += 60
    limiter.reserve()
    assert limiter.rate == 20


def test_throttling_without_a_configured_rate_uses_the_observed_one() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.throttled(observed_rate=300, cooldown=30)
    assert limiter.rate == 150
    assert 1400 <= drain(limiter, clock, 10) <= 1700
    limiter.throttled(observed_rate=150, cooldown=30)  # a second signal, seconds later
    assert limiter.rate == 75
