"""Envelope sender/VERP, bounce reports (RFC 3464 DSNs) from a Maildir or an mbox, the policy."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from conftest import make_config
from test_bounce_support import FLUFL
from test_bounce_support import NOW
from test_bounce_support import sample
from test_bounce_support import verp_settings

from newsletter.config import settings_from_dict
from newsletter.errors import ConfigError
from newsletter.message.envelope import envelope_sender
from newsletter.message.envelope import read_verp
from newsletter.returns.dsn import parse_bounce
from newsletter.store.bounces import HARD
from newsletter.store.bounces import SOFT

pytest_plugins = ["test_bounce_support"]

# --- envelope sender and VERP ------------------------------------------------------------


def test_envelope_sender_defaults_to_from(settings) -> None:
    assert envelope_sender(settings, 7, "ana@example.net") == "digest@example.org"


def test_envelope_sender_uses_envelope_from(tmp_path: Path) -> None:
    data = make_config(tmp_path, delivery={"envelope_from": "returns@example.org"})
    settings = settings_from_dict(data, tmp_path)
    assert envelope_sender(settings, 7, "ana@example.net") == "returns@example.org"


def parse_verp(address: str, settings) -> int | None:
    """The subscriber id in a VERP address, or None."""
    found = read_verp(address, settings)
    return found[0] if found else None


def test_verp_address_names_the_subscriber(tmp_path: Path) -> None:
    settings = verp_settings(tmp_path)
    address = envelope_sender(settings, 1234567, "Ana@Example.net")
    local, _, domain = address.partition("@")
    assert local.startswith("bounces+")
    assert domain == "example.org"
    assert len(local) <= 64  # RFC 5321 limit for a local part
    assert parse_verp(address, settings) == 1234567
    assert parse_verp(f"<{address}>", settings) == 1234567
    assert parse_verp(address.replace("bounces+", "BOUNCES+"), settings) == 1234567
    assert envelope_sender(settings, 8, "ana@example.net") != envelope_sender(
        settings, 9, "ana@example.net"
    )


def test_verp_domain_and_local_part(tmp_path: Path) -> None:
    settings = verp_settings(tmp_path, verp_local="rtn", verp_domain="bounce.example.org")
    address = envelope_sender(settings, 5, "ana@example.net")
    assert address.startswith("rtn+")
    assert address.endswith("@bounce.example.org")
    assert parse_verp(address, settings) == 5
    data = make_config(
        tmp_path, bounces={"verp": True}, delivery={"envelope_from": "r@mail.example.org"}
    )
    assert envelope_sender(settings_from_dict(data, tmp_path), 5, "a@x.org").endswith(
        "@mail.example.org"
    )


def test_verp_rejects_forged_and_foreign_addresses(tmp_path: Path) -> None:
    settings = verp_settings(tmp_path)
    address = envelope_sender(settings, 5, "ana@example.net")
    local, _, domain = address.partition("@")
    forged = local.replace("+5.", "+6.") + "@" + domain
    assert parse_verp(forged, settings) is None
    assert parse_verp(address.replace("bounces+", "other+"), settings) is None
    assert parse_verp("digest@example.org", settings) is None
    assert parse_verp("bounces+garbage@example.org", settings) is None
    assert parse_verp("", settings) is None


def test_verp_local_part_must_be_plain(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="verp_local"):
        envelope_sender(verp_settings(tmp_path, verp_local="a+b"), 1, "ana@example.net")


def test_bounce_settings_defaults(settings) -> None:
    assert settings.bounces.verp is False
    assert settings.bounces.hard_threshold == 1
    assert settings.bounces.soft_threshold == 3
    assert settings.bounces.soft_window_days == 30


# --- reading reports ---------------------------------------------------------------------


def test_parse_failed_dsn_is_hard(settings) -> None:
    parsed = parse_bounce(sample("failed-5.1.1.eml", original="<orig@example.org>"), settings)
    (failure,) = parsed.failures
    assert failure.address == "ana@example.net"
    assert failure.kind == HARD
    assert failure.status == "5.1.1"
    assert "User unknown" in failure.diagnostic
    assert parsed.original_message_id == "<orig@example.org>"
    assert parsed.received_at == NOW - dt.timedelta(days=1)
    assert parsed.message_id.startswith("<dsn.")


def test_parse_delayed_dsn_is_soft(settings) -> None:
    (failure,) = parse_bounce(sample("delayed-4.2.2.eml"), settings).failures
    assert (failure.kind, failure.status) == (SOFT, "4.2.2")
    assert "over quota" in failure.diagnostic


def test_failed_with_temporary_status_is_soft(settings) -> None:
    parsed = parse_bounce(sample("failed-4.4.7.eml", original="<o447@example.org>"), settings)
    (failure,) = parsed.failures
    assert (failure.kind, failure.status) == (SOFT, "4.4.7")
    assert parsed.original_message_id == "<o447@example.org>"  # from message/rfc822


def test_non_dsn_formats_through_flufl_bounce(settings) -> None:
    (failure,) = parse_bounce(sample("qmail-failure.eml"), settings).failures
    assert (failure.address, failure.kind) == ("ana@example.net", HARD)


def test_ordinary_mail_is_not_a_bounce(settings) -> None:
    assert parse_bounce(sample("not-a-bounce.eml"), settings).failures == ()
    assert parse_bounce(sample("auto-reply.eml"), settings).failures == ()
    assert parse_bounce(b"\x00\xff garbage without headers", settings).failures == ()


def without_header(data: bytes, *names: str) -> bytes:
    """The message with the named top-level headers (and their continuation lines) left out."""
    head, blank, body = data.partition(b"\n\n")
    kept: list[bytes] = []
    dropping = False
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        name = line.partition(b":")[0].strip().decode("ascii", "replace").lower()
        dropping = name in {n.lower() for n in names}
        if not dropping:
            kept.append(line)
    return b"\n".join(kept) + blank + body


def test_report_without_from_is_read(settings) -> None:
    # simple_13 of flufl.bounce's corpus: an RFC 3464 report whose delivery-status part names
    # no recipient, and no From header; only flufl.bounce's reading of the text finds the address.
    data = (FLUFL / "simple_13.txt").read_bytes()
    assert b"\nFrom:" not in data.partition(b"\n\n")[0]
    (failure,) = parse_bounce(data, settings).failures
    assert (failure.address, failure.kind) == ("userx@example.fr", HARD)


def test_non_dsn_report_without_from_is_read(settings, caplog) -> None:
    # A qmail report (found by flufl.bounce's detectors, not by the DSN fields) without From:
    # flufl.bounce's Yale detector, run before the qmail one, must not stop the others.
    data = without_header(sample("qmail-failure.eml"), "From")
    with caplog.at_level(logging.INFO, logger="flufl.bounce"):
        (failure,) = parse_bounce(data, settings).failures
    assert (failure.address, failure.kind) == ("ana@example.net", HARD)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_ordinary_mail_without_from_is_not_a_bounce(settings, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="flufl.bounce"):
        for name in ("not-a-bounce.eml", "auto-reply.eml"):
            data = without_header(sample(name), "From")
            assert b"From:" not in data
            assert parse_bounce(data, settings).failures == ()
            data = without_header(data, "Subject", "Auto-Submitted")
            assert parse_bounce(data, settings).failures == ()
    # No detector raised (flufl.bounce logs a traceback for each one that does).
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_report_without_message_id_gets_a_stable_key(settings) -> None:
    data = sample("failed-5.1.1.eml").replace(b"Message-Id:", b"X-Old-Id:")
    assert parse_bounce(data, settings).message_id == parse_bounce(data, settings).message_id
    assert parse_bounce(data, settings).message_id.startswith("sha256:")
