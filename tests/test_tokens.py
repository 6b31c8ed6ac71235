"""The signed tokens of `newsletter.tokens`: the fast path gives itsdangerous's own tokens."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeTimedSerializer

from newsletter import tokens
from newsletter.tokens import CAMPAIGN
from newsletter.tokens import PREFERENCES
from newsletter.tokens import PURPOSES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer
from newsletter.tokens import address_hash

KEY = "a-test-secret-key-that-is-long-enough-0123456789"


@pytest.mark.parametrize("extra", [None, {CAMPAIGN: "2026-10"}, {"email": "new@example.org"}])
@pytest.mark.parametrize("stamp", [1_700_000_000, 1_800_000_123])
def test_tokens_are_the_bytes_itsdangerous_makes(monkeypatch, extra, stamp) -> None:
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: stamp + 0.5)
    signer = Signer(KEY)
    for subscriber_id, email in [(1, "ana@example.org"), (123456789, "Ben.Long@Example.NET")]:
        value = [subscriber_id, address_hash(email)] + ([dict(extra)] if extra else [])
        for purpose in PURPOSES:
            reference = URLSafeTimedSerializer(KEY, salt=f"newsletter.{purpose}").dumps(value)
            assert signer.make(purpose, subscriber_id, email, extra) == reference
        pair = signer.make_many((UNSUBSCRIBE, PREFERENCES), subscriber_id, email, extra)
        assert pair == [
            signer.make(UNSUBSCRIBE, subscriber_id, email, extra),
            signer.make(PREFERENCES, subscriber_id, email, extra),
        ]


def test_tokens_made_together_read_back_for_their_own_purpose_only() -> None:
    signer = Signer(KEY)
    unsubscribe, preferences = signer.make_many(
        (UNSUBSCRIBE, PREFERENCES), 7, "ana@example.org", {CAMPAIGN: "2026-10"}
    )
    assert signer.read(UNSUBSCRIBE, unsubscribe) == (7, address_hash("ana@example.org"))
    assert signer.campaign(PREFERENCES, preferences) == "2026-10"
    with pytest.raises(tokens.TokenError):
        signer.read(PREFERENCES, unsubscribe)
    with pytest.raises(tokens.TokenError):
        Signer(KEY + "x").read(UNSUBSCRIBE, unsubscribe)


def test_the_stamp_follows_the_clock(monkeypatch) -> None:
    signer = Signer(KEY)
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: 1_700_000_000.0)
    first = signer.make(UNSUBSCRIBE, 1, "ana@example.org")
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: 1_700_000_001.0)
    second = signer.make(UNSUBSCRIBE, 1, "ana@example.org")
    assert first != second
    assert signer.issued_at(UNSUBSCRIBE, second).timestamp() == 1_700_000_001
