"""DKIM: signed digests verify with dkimpy against a stub DNS; tampering makes them fail."""

from __future__ import annotations

import base64
import email
import email.policy
import shutil
import subprocess
from pathlib import Path

import dkim
import pytest
from conftest import make_config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import rsa
from dkim.canonicalization import CanonicalizationPolicy
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from outside_tools import require_module
from outside_tools import require_tool
from test_dkim_support import DOMAIN
from test_dkim_support import PREPENDED
from test_dkim_support import SELECTOR
from test_dkim_support import dkim_settings
from test_dkim_support import pem
from test_dkim_support import signature_tags
from test_dkim_support import stub_dns

from newsletter.config import settings_from_dict
from newsletter.errors import ConfigError
from newsletter.errors import RenderError
from newsletter.message.dkim import OVERSIGNED_HEADERS
from newsletter.message.dkim import DkimSigner
from newsletter.message.dkim import canonical_body
from newsletter.message.dkim import hashed_fields
from newsletter.message.dkim import load_private_key
from newsletter.message.dkim import select_headers
from newsletter.message.dkim import split_message

pytest_plugins = ["test_dkim_support"]


def test_signed_digest_verifies(signer: DkimSigner, message: bytes) -> None:
    signed = signer.sign(message)
    dnsfunc = stub_dns(signer)
    assert dkim.verify(signed, dnsfunc=dnsfunc)
    assert dnsfunc.asked == [b"nl2025._domainkey.example.org."]
    # What the SMTP transport puts on the wire (CRLF) verifies too.
    assert dkim.verify(signed.replace(b"\n", b"\r\n"), dnsfunc=stub_dns(signer))


def test_signature_is_prepended_in_lf_form(signer: DkimSigner, message: bytes) -> None:
    signed = signer.sign(message)
    assert signed.startswith(b"DKIM-Signature: ")
    assert signed.endswith(message)
    assert b"\r" not in signed
    header = signed[: len(signed) - len(message)]
    assert all(len(line) <= 78 for line in header.split(b"\n"))


def test_crlf_input_stays_crlf(signer: DkimSigner, message: bytes) -> None:
    crlf = message.replace(b"\n", b"\r\n")
    signed = signer.sign(crlf)
    assert signed.endswith(crlf)
    assert b"\n" not in signed.replace(b"\r\n", b"")
    assert dkim.verify(signed, dnsfunc=stub_dns(signer))


def header_counts(message: bytes) -> dict[str, int]:
    """How often each (lowercased) header field name occurs in `message`."""
    counts: dict[str, int] = {}
    for name, _ in split_message(message)[0]:
        counts[name.decode().lower()] = counts.get(name.decode().lower(), 0) + 1
    return counts


def test_tags_and_every_required_header_signed(signer: DkimSigner, message: bytes) -> None:
    tags = signature_tags(signer.sign(message, timestamp=1_700_000_000))
    assert tags["a"] == "rsa-sha256"
    assert tags["c"] == "relaxed/relaxed"
    assert tags["d"] == DOMAIN
    assert tags["s"] == SELECTOR
    assert tags["t"] == "1700000000"
    signed = tags["h"].split(":")
    present = header_counts(message)
    # The digest has every one of them, once.
    assert all(present.get(name) == 1 for name in OVERSIGNED_HEADERS)
    # Over-signed: each listed once more than it occurs, so no copy can be added.
    for name in OVERSIGNED_HEADERS:
        assert signed.count(name) == present[name] + 1, name
    assert len(signed) == 2 * len(OVERSIGNED_HEADERS)


def test_absent_headers_listed_once(signer: DkimSigner) -> None:
    bare = b"From: a@example.org\nTo: b@example.net\nSubject: hi\n\nbody\n"
    signed = signer.sign(bare)
    signed_names = signature_tags(signed)["h"].split(":")
    for name in ("from", "to", "subject"):
        assert signed_names.count(name) == 2
    for name in ("reply-to", "content-type", "list-unsubscribe", "list-unsubscribe-post"):
        assert signed_names.count(name) == 1  # absent but signed: cannot be added later
    dnsfunc = stub_dns(signer)
    assert dkim.verify(signed, dnsfunc=dnsfunc)
    added = signed.replace(b"\nSubject:", b"\nReply-To: evil@example.com\nSubject:", 1)
    assert not dkim.verify(added, dnsfunc=dnsfunc)


def test_header_list_counts_repeats_in_any_case(signer: DkimSigner) -> None:
    names = [b"Received", b"From", b"TO", b"to", b"X-Other", b"subject"]
    listed = signer.header_list(names)
    assert listed.count(b"from") == 2
    assert listed.count(b"to") == 3
    assert listed.count(b"subject") == 2
    assert listed.count(b"date") == 1
    assert b"received" not in listed and b"x-other" not in listed


def test_every_oversigned_header_has_a_prepended_copy() -> None:
    assert set(PREPENDED) == set(OVERSIGNED_HEADERS)


@pytest.mark.parametrize("name", OVERSIGNED_HEADERS)
def test_prepended_copy_fails(
    signer: DkimSigner, message: bytes, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed = signer.sign(message)
    dnsfunc = stub_dns(signer)
    assert dkim.verify(signed, dnsfunc=dnsfunc)
    tampered = PREPENDED[name] + b"\n" + signed
    assert not dkim.verify(tampered, dnsfunc=dnsfunc)
    assert not dkim.verify(tampered.replace(b"\n", b"\r\n"), dnsfunc=dnsfunc)
    # The control: signed with each field listed only as often as it occurs (the old h=), the
    # same copy verifies, so it is the over-signing that stops it. dkimpy is stricter for From
    # (it hashes one From more than h= lists), so there is no control for From.
    if name != "from":
        monkeypatch.setattr(signer, "header_list", lambda names: sorted({n.lower() for n in names}))
        assert dkim.verify(PREPENDED[name] + b"\n" + signer.sign(message), dnsfunc=dnsfunc)


def test_mail_dkim_verifies_the_signed_digest(signer: DkimSigner, message: bytes, mail_dkim):
    signed = signer.sign(message)
    assert mail_dkim(signed, signer) == ["pass", f"{SELECTOR} rsa-sha256 pass"]
    altered = signed.replace(b"Dear Ana", b"Dear Bob", 1)
    assert mail_dkim(altered, signer)[0] == "fail (body has been altered)"
    other = DkimSigner(SELECTOR, DOMAIN, rsa.generate_private_key(65537, 1024))
    assert mail_dkim(signed, other)[0].startswith("fail")


@pytest.mark.parametrize("name", OVERSIGNED_HEADERS)
def test_prepended_copy_fails_in_mail_dkim(
    signer: DkimSigner, message: bytes, name: str, mail_dkim, monkeypatch: pytest.MonkeyPatch
) -> None:
    tampered = PREPENDED[name] + b"\n" + signer.sign(message)
    assert mail_dkim(tampered, signer) == [
        "fail (message has been altered)",
        f"{SELECTOR} rsa-sha256 fail (message has been altered)",
    ]
    # The control: Mail::DKIM passes the same copy when h= lists each field only as often as
    # it occurs (From included: unlike dkimpy, it hashes exactly what h= lists).
    monkeypatch.setattr(signer, "header_list", lambda names: sorted({n.lower() for n in names}))
    assert mail_dkim(PREPENDED[name] + b"\n" + signer.sign(message), signer)[0] == "pass"


@pytest.mark.parametrize(
    ("header", "replacement"),
    [
        ("Subject", "Subject: You won a prize"),
        ("List-Unsubscribe", "List-Unsubscribe: <https://evil.example/u/x>"),
        ("To", "To: someone-else@example.net"),
        ("List-Unsubscribe-Post", "List-Unsubscribe-Post: nothing"),
    ],
)
def test_tampered_header_fails(
    signer: DkimSigner, message: bytes, header: str, replacement: str
) -> None:
    signed = signer.sign(message)
    lines = signed.split(b"\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(header.encode() + b":"))
    end = start + 1
    while lines[end][:1] in (b" ", b"\t"):
        end += 1  # the header's folded continuation lines
    tampered = b"\n".join([*lines[:start], replacement.encode(), *lines[end:]])
    assert tampered != signed
    assert not dkim.verify(tampered, dnsfunc=stub_dns(signer))


def test_added_header_instance_fails(signer: DkimSigner, message: bytes) -> None:
    signed = signer.sign(message)
    assert not dkim.verify(b"From: attacker@example.com\n" + signed, dnsfunc=stub_dns(signer))
    injected = signed.replace(b"\n\n", b"\nList-Unsubscribe: <https://evil.example/>\n\n", 1)
    assert not dkim.verify(injected, dnsfunc=stub_dns(signer))


def test_tampered_body_fails(signer: DkimSigner, message: bytes) -> None:
    signed = signer.sign(message)
    assert not dkim.verify(signed.replace(b"Dear Ana", b"Dear Bob", 1), dnsfunc=stub_dns(signer))


def test_whitespace_changes_survive_relaxed_canonicalization(
    signer: DkimSigner, message: bytes
) -> None:
    signed = signer.sign(message)
    relaxed = signed.replace(b"\nSubject: ", b"\nSubject:    ", 1)
    assert dkim.verify(relaxed, dnsfunc=stub_dns(signer))


def test_wrong_public_key_fails(signer: DkimSigner, message: bytes) -> None:
    other = DkimSigner(SELECTOR, DOMAIN, rsa.generate_private_key(65537, 1024))
    assert not dkim.verify(signer.sign(message), dnsfunc=stub_dns(other))


def test_byte_identical_to_dkimpy(
    signer: DkimSigner, message: bytes, rsa_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our fast path (OpenSSL signature) produces exactly what dkimpy's own sign produces."""
    stamp = 1_750_000_000
    monkeypatch.setattr(dkim.time, "time", lambda: stamp)
    include = signer.header_list(name for name, _ in split_message(message)[0])
    assert include.count(b"subject") == include.count(b"list-unsubscribe") == 2  # over-signed
    theirs = dkim.sign(
        message,
        SELECTOR.encode(),
        DOMAIN.encode(),
        pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL),
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=include,
        linesep=b"\n",
    )
    assert signer.sign(message, timestamp=stamp) == theirs + message


def test_ed25519_key(tmp_path: Path, message: bytes) -> None:
    require_module("nacl", "dkimpy verifies ed25519 with PyNaCl")
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "dkim.pem").write_bytes(pem(key))
    signer = DkimSigner.from_settings(dkim_settings(tmp_path))
    assert signer is not None
    assert signer.algorithm == "ed25519-sha256"
    assert signer.dns_record().startswith("v=DKIM1; k=ed25519; p=")
    signed = signer.sign(message)
    assert signature_tags(signed)["a"] == "ed25519-sha256"
    assert dkim.verify(signed, dnsfunc=stub_dns(signer))
    assert not dkim.verify(
        signed.replace(b"Subject: ", b"Subject: Re: ", 1), dnsfunc=stub_dns(signer)
    )


def test_ed25519_dknewkey_format() -> None:
    seed = bytes(range(32))
    key = load_private_key(base64.b64encode(seed) + b"\n")
    assert isinstance(key, ed25519.Ed25519PrivateKey)


def test_pkcs1_rsa_key_accepted(rsa_key) -> None:
    key = load_private_key(pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL))
    assert isinstance(key, rsa.RSAPrivateKey)


# --- configuration -----------------------------------------------------------------------


def test_disabled_by_default(settings) -> None:
    assert settings.dkim.enabled is False
    assert DkimSigner.from_settings(settings) is None


def test_key_file_resolves_against_config_folder(tmp_path: Path, key_file: Path) -> None:
    settings = dkim_settings(tmp_path)
    assert settings.dkim.key_file == key_file.resolve()


def test_domain_defaults_to_from_domain(signer: DkimSigner, tmp_path: Path, key_file) -> None:
    assert signer.domain == DOMAIN
    other = DkimSigner.from_settings(dkim_settings(tmp_path, domain="mail.example.org"))
    assert other is not None
    assert other.dns_name == "nl2025._domainkey.mail.example.org"


def test_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dkim.key_file .*dkim.pem: no such file"):
        DkimSigner.from_settings(dkim_settings(tmp_path))


def test_unreadable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dkim.pem").mkdir()  # a folder cannot be read as a file, even by root
    with pytest.raises(ConfigError, match=r"dkim.key_file .*cannot read it"):
        DkimSigner.from_settings(dkim_settings(tmp_path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a key", "not a PEM private key"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "cannot read"),
    ],
)
def test_garbage_key_file_is_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "dkim.pem").write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        DkimSigner.from_settings(dkim_settings(tmp_path))


def test_encrypted_key_is_a_clear_error(tmp_path: Path, rsa_key) -> None:
    encrypted = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    (tmp_path / "dkim.pem").write_bytes(encrypted)
    with pytest.raises(ConfigError, match="encrypted"):
        DkimSigner.from_settings(dkim_settings(tmp_path))


def test_short_rsa_key_rejected() -> None:
    # cryptography will not generate keys under 1024 bits; openssl still does.
    require_tool(shutil.which("openssl"), "needs the openssl command")
    small = subprocess.run(["openssl", "genrsa", "512"], capture_output=True, check=True).stdout
    with pytest.raises(ConfigError, match="at least 1024"):
        load_private_key(small)


def test_missing_selector_and_key_file(tmp_path: Path, key_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"dkim\.selector"):
        DkimSigner.from_settings(dkim_settings(tmp_path, selector=""))
    settings = settings_from_dict(
        make_config(tmp_path, dkim={"enabled": True, "selector": "s"}), tmp_path
    )
    with pytest.raises(ConfigError, match=r"dkim\.key_file is not set"):
        DkimSigner.from_settings(settings)


def test_selector_cannot_inject_tags(tmp_path: Path, key_file: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid DNS name"):
        DkimSigner.from_settings(dkim_settings(tmp_path, selector="s; b=x"))


# --- the fast canonicalization equals dkimpy's ---------------------------------------------

_BODY_BYTES = st.lists(
    st.sampled_from([b"a", b"Z", b"=", b" ", b"  ", b"\t", b"\r", b"\n", b"\r\n", b"\xc3\xa9"]),
    max_size=60,
).map(b"".join)


@hypothesis_settings(max_examples=400, deadline=None)
@given(body=_BODY_BYTES)
def test_canonical_body_matches_dkimpy(body: bytes) -> None:
    _, expected_input = dkim.rfc822_parse(b"From: a@example.org\n\n" + body)
    expected = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed").canonicalize_body(
        expected_input
    )
    assert canonical_body(body) == expected


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    names=st.lists(st.sampled_from(["From", "To", "Subject", "X-A"]), min_size=1, max_size=5),
    value=st.sampled_from(["v", " spaced  value", "folded\n continued", "t\tab"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    body=_BODY_BYTES,
)
def test_split_message_matches_dkimpy(names, value: str, newline: str, body: bytes) -> None:
    head = "".join(f"{name}:{value}\n" for name in names).replace("\n", newline).encode()
    message = head + newline.encode() + body
    headers, rest = split_message(message)
    expected_headers, expected_body = dkim.rfc822_parse(message)
    assert headers == expected_headers
    assert canonical_body(rest) == canonical_body(expected_body)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    names=st.lists(st.sampled_from([b"From", b"to", b"TO", b"Subject", b"X-A"]), max_size=8),
    include=st.lists(st.sampled_from([b"from", b"to", b"subject", b"date"]), max_size=10),
)
def test_select_headers_matches_dkimpy(names: list[bytes], include: list[bytes]) -> None:
    headers = [(name, b" %d" % index) for index, name in enumerate(names)]
    assert select_headers(headers, include) == dkim.select_headers(headers, include)
    # The hash input: what dkim.hash_headers feeds the hasher before the signature field.
    fed: list[bytes] = []

    class Recorder:
        def update(self, data: bytes) -> None:
            fed.append(data)

    sig_value = b" v=1; b="
    relaxed = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    dkim.hash_headers(Recorder(), relaxed, headers, include, (b"DKIM-Signature", sig_value), {})
    assert b"".join(fed) == hashed_fields(headers, include) + b"dkim-signature:v=1; b="


def test_unparsable_message_is_a_render_error(signer: DkimSigner) -> None:
    with pytest.raises(RenderError, match="cannot DKIM-sign"):
        signer.sign(b"From: a@example.org\nnot a header line\n\nbody\n")


def test_single_messages_are_signed_too(tmp_path: Path, key_file: Path, signer) -> None:
    """Confirmations, welcomes, admin alerts and test sends go through `send_single`."""
    from newsletter.message.notice import notice_message
    from newsletter.sending.single import send_single
    from newsletter.transport.memory import MemoryTransport

    settings = dkim_settings(tmp_path)
    notice = notice_message(
        settings, to_email="ana@example.net", to_name="Ana", subject="Confirm", text="Hello\n"
    )
    transport = MemoryTransport()
    send_single(settings, transport, "ana@example.net", notice)
    (sent,) = transport.outbox
    assert sent.envelope_from == "digest@example.org"
    assert dkim.verify(sent.message.replace(b"\n", b"\r\n"), dnsfunc=stub_dns(signer))
    parsed = email.message_from_bytes(sent.message, policy=email.policy.default)
    assert parsed["Auto-Submitted"] == "auto-generated" and "List-Unsubscribe" not in parsed
