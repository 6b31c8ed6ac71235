"""flufl.bounce's own sample corpus (tests/fixtures/flufl/): do we find what its tests expect?

For every sample, `parse_bounce` must report exactly the failed recipients that flufl.bounce's
tests assert (`expected.tsv`), a permanent failure as hard and a temporary one as soft, unless
`DIFFERENCES` says what we find instead, and why. A difference that stops being one fails too,
so the table stays true.
"""

from __future__ import annotations

import email
import logging

import pytest
from conftest import FIXTURES
from flufl.bounce import all_failures
from test_bounces import without_header

from newsletter.returns.dsn import parse_bounce
from newsletter.store.bounces import HARD
from newsletter.store.bounces import SOFT

CORPUS = FIXTURES / "flufl"
SAMPLES = sorted(path.name for path in CORPUS.glob("*.txt"))

Found = frozenset[tuple[str, str]]  # (address, HARD or SOFT)


def flufl_expectations() -> dict[str, Found]:
    """Per sample, the failures flufl.bounce's tests assert (the union of its assertions)."""
    expected: dict[str, set[tuple[str, str]]] = {}
    lines = (CORPUS / "expected.tsv").read_text(encoding="utf-8").splitlines()
    header, *rows = [line for line in lines if not line.startswith("#")]
    assert header.split("\t") == ["sample", "test", "detector", "kind", "addresses"]
    for row in rows:
        sample, _test, _detector, kind, addresses = row.split("\t")
        assert kind in ("permanent", "temporary"), row
        found = expected.setdefault(sample, set())
        if addresses != "-":
            found.update((a, SOFT if kind == "temporary" else HARD) for a in addresses.split())
    return {sample: frozenset(found) for sample, found in expected.items()}


EXPECTED = flufl_expectations()

# Where we knowingly find something other than flufl.bounce's tests assert.
DIFFERENCES: dict[str, tuple[Found, str]] = {
    "dsn_02.txt": (
        frozenset({("zzzzz@example.uk", SOFT)}),
        "Action: failed with Status 4.4.7 (an X.400 gateway gave up after the message timed"
        " out): flufl.bounce counts every failed action as permanent; our policy counts a"
        " failure with a 4.x.x status as soft (the server gave up retrying a temporary"
        " condition), see docs/deliverability.md",
    ),
    "simple_42.txt": (
        frozenset({("david...@gmail.com", HARD)}),
        "flufl.bounce's tests assert only that its SimpleMatch detector finds nothing here; the"
        " report is an RFC 3464 DSN (Action: failed, Status 5.0.0) for a recipient that a list"
        " archive shortened to david...@gmail.com, which flufl.bounce's own DSN detector (run"
        " first by all_failures) reports as well as we do",
    ),
}

# Samples flufl.bounce's tests say nothing about, and what we find in them.
NOT_IN_FLUFL_TESTS: dict[str, tuple[Found, str]] = {
    "bounce_01.txt": (
        frozenset(),
        "a JetMail report ('mail box space not enough') that names only the local part dylan:"
        " no address to find (flufl.bounce's all_failures finds none either)",
    ),
}

# Samples that flufl.bounce recognises only by who sent them (a detector for one provider).
KNOWN_BY_THEIR_FROM = {
    "aol_01.txt": "AOL's detector reads only mail from an aol.com sender",
    "sina_01.txt": "Sina's detector reads only mail from MAILER-DAEMON@sina.com",
    "yahoo_11.txt": "Yahoo's detector reads only mail from a Yahoo MAILER-DAEMON",
    "yahoo_13.txt": "Yahoo's detector reads only mail from a Yahoo MAILER-DAEMON",
    "yale_01.txt": "Yale's detector reads only mail from MAILER-DAEMON at yale.edu",
}


def ours(data: bytes, settings) -> Found:
    return frozenset((f.address, f.kind) for f in parse_bounce(data, settings).failures)


def test_the_corpus_is_complete_and_every_sample_accounted_for() -> None:
    assert len(SAMPLES) == 117
    assert set(EXPECTED) | set(NOT_IN_FLUFL_TESTS) == set(SAMPLES)
    assert not set(EXPECTED) & set(NOT_IN_FLUFL_TESTS)
    assert set(DIFFERENCES) <= set(EXPECTED)
    assert set(KNOWN_BY_THEIR_FROM) <= set(SAMPLES)


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_agrees_with_flufl_bounce_tests(name: str, settings) -> None:
    found = ours((CORPUS / name).read_bytes(), settings)
    if name in NOT_IN_FLUFL_TESTS:
        expected, reason = NOT_IN_FLUFL_TESTS[name]
        assert found == expected, reason
    elif name in DIFFERENCES:
        differ, reason = DIFFERENCES[name]
        assert found == differ, reason
        assert found != EXPECTED[name], f"{name} agrees now: drop it from DIFFERENCES"
    else:
        assert found == EXPECTED[name]


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_agrees_with_flufl_all_failures(name: str, settings, caplog) -> None:
    # flufl.bounce itself, run on the sample as it is: we miss no address it finds, and find
    # no other (our reading of the DSN fields only decides hard or soft).
    data = (CORPUS / name).read_bytes()
    with caplog.at_level(logging.INFO, logger="flufl.bounce"):
        temporary, permanent = all_failures(email.message_from_bytes(data))
    flufl = {raw.decode("ascii") for raw in temporary | permanent}
    assert {address for address, _ in ours(data, settings)} == flufl


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_without_from_or_subject(name: str, settings, caplog) -> None:
    # Whatever its headers: without From, Sender and Subject a report reads the same, except
    # those that flufl.bounce knows only by their sender.
    data = (CORPUS / name).read_bytes()
    stripped = without_header(data, "From", "Sender", "Subject")
    assert stripped != data
    with caplog.at_level(logging.INFO, logger="flufl.bounce"):
        found = ours(stripped, settings)
    if name in KNOWN_BY_THEIR_FROM:
        assert found == frozenset(), KNOWN_BY_THEIR_FROM[name]
        assert ours(data, settings), KNOWN_BY_THEIR_FROM[name]
    else:
        assert found == ours(data, settings)
    # No detector raised on the message without From (flufl.bounce logs each one that does).
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
