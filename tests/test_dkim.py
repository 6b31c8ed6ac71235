"""DKIM: signed digests verify with dkimpy against a stub DNS; tampering makes them fail."""

from __future__ import annotations

import base64
import email
import email.policy
import re
import shutil
import subprocess
from pathlib import Path

import dkim
import pytest
from conftest import make_config
from conftest import write_config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import rsa
from dkim.canonicalization import CanonicalizationPolicy
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from outside_tools import require_module
from outside_tools import require_tool

from newsletter.config import load_settings
from newsletter.config import settings_from_dict
from newsletter.content.reader import load_issue
from newsletter.errors import ConfigError
from newsletter.errors import RenderError
from newsletter.message.dkim import OVERSIGNED_HEADERS
from newsletter.message.dkim import DkimSigner
from newsletter.message.dkim import canonical_body
from newsletter.message.dkim import hashed_fields
from newsletter.message.dkim import load_private_key
from newsletter.message.dkim import select_headers
from newsletter.message.dkim import split_message
from newsletter.message.preview import preview_parts
from newsletter.personalize import make_recipient

SELECTOR = "nl2025"
DOMAIN = "example.org"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    # 2048 bits as in production; generated once per module (a few hundred ms).
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key, fmt=serialization.PrivateFormat.PKCS8) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


@pytest.fixture
def key_file(tmp_path: Path, rsa_key) -> Path:
    path = tmp_path / "dkim.pem"
    path.write_bytes(pem(rsa_key))
    return path


def dkim_settings(tmp_path: Path, **dkim_section):
    values = {"enabled": True, "selector": SELECTOR, "key_file": "dkim.pem", **dkim_section}
    return settings_from_dict(make_config(tmp_path, dkim=values), tmp_path)


@pytest.fixture
def signer(tmp_path: Path, key_file: Path) -> DkimSigner:
    result = DkimSigner.from_settings(dkim_settings(tmp_path))
    assert result is not None
    return result


@pytest.fixture
def message(tmp_path: Path, taxonomy) -> bytes:
    """A digest message as the sender builds it (LF line endings, quoted-printable bodies)."""
    settings = settings_from_dict(
        make_config(tmp_path, delivery={"unsubscribe_mailto": "unsubscribe@example.org"}),
        tmp_path,
    )
    issue = load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)
    recipient = make_recipient(settings, "reader@example.net", "Ana Reader", None, 42)
    return preview_parts(settings, issue, recipient, subscriber_id=42).eml


def stub_dns(signer: DkimSigner):
    """A dkimpy `dnsfunc` answering only the signer's key records."""
    asked: list[bytes] = []
    records = {f"{key.dns_name}.".encode(): key.dns_record().encode() for key in signer.keys}

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        asked.append(name)
        return records.get(name)

    dnsfunc.asked = asked  # type: ignore[attr-defined]
    return dnsfunc


def signature_tags(signed: bytes, index: int = 0) -> dict[str, str]:
    """The tags of the message's DKIM-Signature number `index` (0: the topmost)."""
    parsed = email.message_from_bytes(signed, policy=email.policy.compat32)
    value = re.sub(r"\s+", "", parsed.get_all("DKIM-Signature")[index])
    return dict(part.split("=", 1) for part in value.split(";") if part)


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


# A copy of each over-signed field as a relay or a forwarder could prepend it, above the
# signature. Some carry the very value the message has: over-signing catches those too.
PREPENDED = {
    "from": b"From: Test Digest <digest@example.org.evil.example>",
    "to": b"To: someone-else@example.net",
    "subject": b"Subject: You won a prize",
    "date": b"Date: Wed, 02 Dec 2026 09:00:00 +0000",
    "message-id": b"Message-ID: <forged@evil.example>",
    "list-id": b"List-Id: <other.evil.example>",
    "list-unsubscribe": b"List-Unsubscribe: <https://evil.example/u/x>",
    "list-unsubscribe-post": b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    "reply-to": b"Reply-To: attacker@evil.example",
    "mime-version": b"MIME-Version: 1.0",
    "content-type": b"Content-Type: text/plain; charset=utf-8",
}


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


# --- Mail::DKIM (Debian's libmail-dkim-perl: SpamAssassin's and amavis's verifier) --------

# Verifies the message on stdin against the TXT records given as NAME VALUE arguments, without
# DNS (Mail::DKIM::DNS::query answers from them). Prints the overall result, then one line per
# signature: selector, algorithm, result.
MAIL_DKIM_VERIFY = r"""
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Net::DNS;

# Arguments: NAME VALUE pairs, the TXT records to answer; the message comes on stdin.
my %records;
while ( my ( $name, $value ) = splice @ARGV, 0, 2 ) { $records{ lc $name } = $value }
{
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ($name, $type) = @_;
        my $value = $records{ lc $name };
        if ( !defined $value || uc $type ne 'TXT' ) { $@ = 'NXDOMAIN'; return; }
        return Net::DNS::RR->new( name => $name, type => 'TXT',
            txtdata => [ unpack '(a255)*', $value ] );
    };
}
binmode STDIN;
my $message = do { local $/; <STDIN> };
$message =~ s/\r?\n/\r\n/g;
my $verifier = Mail::DKIM::Verifier->new;
$verifier->PRINT($message);
$verifier->CLOSE;
print $verifier->result_detail, "\n";
for my $signature ( $verifier->signatures ) {
    printf "%s %s %s\n", $signature->selector, $signature->algorithm, $signature->result_detail;
}
"""


@pytest.fixture(scope="module")
def mail_dkim():
    """verify(message, *keys) -> Mail::DKIM's result lines, with the keys' records as DNS."""
    found = (
        shutil.which("perl") is not None
        and (
            subprocess.run(["perl", "-MMail::DKIM::Verifier", "-e", "1"], capture_output=True)
        ).returncode
        == 0
    )
    require_tool(found, "needs perl's Mail::DKIM (apt-get install libmail-dkim-perl)")

    def verify(message: bytes, *keys) -> list[str]:
        records = [part for key in keys for part in (key.dns_name, key.dns_record())]
        result = subprocess.run(
            ["perl", "-e", MAIL_DKIM_VERIFY, *records],
            input=message,
            capture_output=True,
            check=True,
            timeout=60,
        )
        return result.stdout.decode().splitlines()

    return verify


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


# --- several keys: RSA beside Ed25519 ----------------------------------------------------


@pytest.fixture
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def two_key_settings(tmp_path: Path, rsa_key, ed_key, **dkim_section):
    (tmp_path / "rsa.pem").write_bytes(pem(rsa_key))
    (tmp_path / "ed.pem").write_bytes(pem(ed_key))
    values = {
        "enabled": True,
        "keys": [
            {"selector": "rsa2025", "key_file": "rsa.pem"},
            {"selector": "ed2025", "key_file": "ed.pem"},
        ],
        **dkim_section,
    }
    return settings_from_dict(make_config(tmp_path, dkim=values), tmp_path)


@pytest.fixture
def two_keys(tmp_path: Path, rsa_key, ed_key) -> DkimSigner:
    result = DkimSigner.from_settings(two_key_settings(tmp_path, rsa_key, ed_key))
    assert result is not None
    return result


def test_two_keys_two_signatures_both_verify(two_keys: DkimSigner, message: bytes) -> None:
    require_module("nacl", "dkimpy verifies ed25519 with PyNaCl")
    assert [(key.selector, key.algorithm) for key in two_keys.keys] == [
        ("rsa2025", "rsa-sha256"),
        ("ed2025", "ed25519-sha256"),
    ]
    signed = two_keys.sign(message, timestamp=1_700_000_000)
    assert signed.endswith(message)
    assert signed.count(b"DKIM-Signature: ") - message.count(b"DKIM-Signature: ") == 2
    rsa_tags, ed_tags = signature_tags(signed, 0), signature_tags(signed, 1)
    assert (rsa_tags["s"], rsa_tags["a"]) == ("rsa2025", "rsa-sha256")
    assert (ed_tags["s"], ed_tags["a"]) == ("ed2025", "ed25519-sha256")
    for tag in ("d", "t", "h", "bh", "c"):
        assert rsa_tags[tag] == ed_tags[tag]  # the same fields and body, signed twice
    assert rsa_tags["h"].split(":").count("list-unsubscribe") == 2
    for wire in (signed, signed.replace(b"\n", b"\r\n")):
        dnsfunc = stub_dns(two_keys)
        verifier = dkim.DKIM(wire)
        assert verifier.verify(idx=0, dnsfunc=dnsfunc)  # the RSA signature, on top
        assert verifier.verify(idx=1, dnsfunc=dnsfunc)  # the Ed25519 one
        assert dnsfunc.asked == [
            b"rsa2025._domainkey.example.org.",
            b"ed2025._domainkey.example.org.",
        ]


@pytest.mark.parametrize("name", ["subject", "list-unsubscribe", "list-unsubscribe-post", "from"])
def test_two_keys_prepended_copy_fails_both(
    two_keys: DkimSigner, message: bytes, name: str
) -> None:
    require_module("nacl", "dkimpy verifies ed25519 with PyNaCl")
    tampered = dkim.DKIM(PREPENDED[name] + b"\n" + two_keys.sign(message))
    assert not tampered.verify(idx=0, dnsfunc=stub_dns(two_keys))
    assert not tampered.verify(idx=1, dnsfunc=stub_dns(two_keys))


def test_two_keys_byte_identical_to_dkimpy(
    two_keys: DkimSigner, message: bytes, rsa_key, ed_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each signature is exactly what dkimpy's sign makes with that key (Ed25519 signatures
    are deterministic), the RSA one first."""
    require_module("nacl", "dkimpy signs ed25519 with PyNaCl")
    stamp = 1_750_000_000
    monkeypatch.setattr(dkim.time, "time", lambda: stamp)
    include = two_keys.header_list(name for name, _ in split_message(message)[0])
    seed = ed_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    theirs = [
        dkim.sign(
            message,
            selector,
            DOMAIN.encode(),
            private,
            signature_algorithm=algorithm,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
            linesep=b"\n",
        )
        for selector, private, algorithm in (
            (
                b"rsa2025",
                pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL),
                b"rsa-sha256",
            ),
            (b"ed2025", base64.b64encode(seed), b"ed25519-sha256"),
        )
    ]
    assert two_keys.sign(message, timestamp=stamp) == theirs[0] + theirs[1] + message


def test_two_keys_in_mail_dkim(two_keys: DkimSigner, message: bytes, mail_dkim) -> None:
    """Debian's Mail::DKIM knows no Ed25519: the RSA signature is the one it passes."""
    signed = two_keys.sign(message)
    assert mail_dkim(signed, *two_keys.keys) == [
        "pass",
        "rsa2025 rsa-sha256 pass",
        "ed2025 ed25519-sha256 invalid (unsupported algorithm ed25519-sha256)",
    ]
    tampered = PREPENDED["list-unsubscribe"] + b"\n" + signed
    assert mail_dkim(tampered, *two_keys.keys)[:2] == [
        "fail (message has been altered)",
        "rsa2025 rsa-sha256 fail (message has been altered)",
    ]


def test_two_keys_through_send_single(tmp_path: Path, rsa_key, ed_key, two_keys) -> None:
    require_module("nacl", "dkimpy verifies ed25519 with PyNaCl")
    from newsletter.message.notice import notice_message
    from newsletter.sending.single import send_single
    from newsletter.transport.memory import MemoryTransport

    settings = two_key_settings(tmp_path, rsa_key, ed_key)
    notice = notice_message(
        settings, to_email="ana@example.net", to_name="Ana", subject="Confirm", text="Hello\n"
    )
    transport = MemoryTransport()
    send_single(settings, transport, "ana@example.net", notice)
    (sent,) = transport.outbox
    verifier = dkim.DKIM(sent.message.replace(b"\n", b"\r\n"))
    assert verifier.verify(idx=0, dnsfunc=stub_dns(two_keys))
    assert verifier.verify(idx=1, dnsfunc=stub_dns(two_keys))


def test_two_keys_in_code() -> None:
    rsa_key = rsa.generate_private_key(65537, 1024)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    signer = DkimSigner("a", "Example.ORG", rsa_key, also=[("b", ed_key)])
    assert [key.dns_name for key in signer.keys] == [
        "a._domainkey.example.org",
        "b._domainkey.example.org",
    ]
    assert signer.dns_record() == signer.keys[0].dns_record()  # the first key's
    with pytest.raises(ConfigError, match=r"dkim\.selector 'b c' is not a valid DNS name"):
        DkimSigner("a", "example.org", rsa_key, also=[("b c", ed_key)])


def test_two_keys_key_files_resolve_against_config_folder(
    tmp_path: Path, rsa_key, ed_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = two_key_settings(tmp_path, rsa_key, ed_key)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    signer = DkimSigner.from_settings(settings)
    assert signer is not None and len(signer.keys) == 2


def test_two_keys_from_a_config_file(tmp_path: Path, rsa_key, ed_key) -> None:
    (tmp_path / "rsa.pem").write_bytes(pem(rsa_key))
    (tmp_path / "ed.pem").write_bytes(pem(ed_key))
    config = write_config(tmp_path, dkim={"enabled": True})
    with config.open("a", encoding="utf-8") as file:
        file.write(
            '[[dkim.keys]]\nselector = "rsa2025"\nkey_file = "rsa.pem"\n'
            '[[dkim.keys]]\nselector = "ed2025"\nkey_file = "ed.pem"\n'
        )
    signer = DkimSigner.from_settings(load_settings(config))
    assert signer is not None
    assert [key.selector for key in signer.keys] == ["rsa2025", "ed2025"]


@pytest.mark.parametrize(
    ("dkim_section", "error"),
    [
        (
            {"selector": "nl2025"},
            r"dkim: .*selector/key_file and \[\[dkim.keys\]\] both name keys",
        ),
        ({"key_file": "rsa.pem"}, r"dkim: .*both name keys"),
        (
            {
                "keys": [
                    {"selector": "a", "key_file": "rsa.pem"},
                    {"selector": "A", "key_file": "ed.pem"},
                ]
            },
            r"dkim.keys: .*keys 0 and 1 both have selector 'A'",
        ),
        ({"keys": [{"selector": "a"}]}, r"dkim.keys.0.key_file: Field required"),
        ({"keys": [{"key_file": "rsa.pem"}]}, r"dkim.keys.0.selector: Field required"),
        ({"keys": [{"selector": " ", "key_file": "rsa.pem"}]}, r"dkim.keys.0.selector: .*empty"),
        (
            {"keys": [{"selector": "a", "key_file": "rsa.pem", "domain": "x.org"}]},
            r"unknown key 'dkim.keys.0.domain'",
        ),
    ],
)
def test_two_keys_config_errors_name_the_key(
    tmp_path: Path, rsa_key, ed_key, dkim_section: dict, error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        two_key_settings(tmp_path, rsa_key, ed_key, **dkim_section)


def test_two_keys_key_file_errors_name_the_key(tmp_path: Path, rsa_key, ed_key) -> None:
    settings = two_key_settings(tmp_path, rsa_key, ed_key)
    (tmp_path / "ed.pem").unlink()
    with pytest.raises(ConfigError, match=r"dkim.keys.1.key_file .*ed.pem: no such file"):
        DkimSigner.from_settings(settings)
    (tmp_path / "ed.pem").write_bytes(b"not a key")
    with pytest.raises(ConfigError, match=r"dkim.keys.1.key_file .*ed.pem: not a PEM"):
        DkimSigner.from_settings(settings)
    bad = two_key_settings(
        tmp_path,
        rsa_key,
        ed_key,
        keys=[{"selector": "s; b=x", "key_file": "rsa.pem"}],
    )
    with pytest.raises(ConfigError, match=r"dkim.keys.0.selector 's; b=x' is not a valid DNS"):
        DkimSigner.from_settings(bad)


def test_dns_record_prints_one_record_per_key(tmp_path: Path, runner, rsa_key, ed_key) -> None:
    from newsletter.cli import main

    signer = DkimSigner.from_settings(two_key_settings(tmp_path, rsa_key, ed_key))
    assert signer is not None
    config = write_config(tmp_path)  # [dkim] enabled = false: the records come first
    with config.open("a", encoding="utf-8") as file:
        file.write(
            '[dkim]\n[[dkim.keys]]\nselector = "rsa2025"\nkey_file = "rsa.pem"\n'
            '[[dkim.keys]]\nselector = "ed2025"\nkey_file = "ed.pem"\n'
        )
    result = runner.invoke(main, ["--config", str(config), "dkim", "dns-record"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2
    for line, key in zip(lines, signer.keys, strict=True):
        name, rest = line.split(None, 1)
        assert name == f"{key.dns_name}."
        assert "".join(re.findall(r'"([^"]*)"', rest)) == key.dns_record()
    assert lines[1].startswith('ed2025._domainkey.example.org.  IN  TXT  "v=DKIM1; k=ed25519; p=')
    result = runner.invoke(main, ["--config", str(config), "dkim", "dns-record", "--value"])
    assert result.output == "".join(key.dns_record() + "\n" for key in signer.keys)
    # One key of the list (or a new one to rotate to) takes both options.
    result = runner.invoke(
        main, ["--config", str(config), "dkim", "dns-record", "--selector", "ed2025", "--value"]
    )
    assert result.exit_code == 1
    assert "give both --selector and --key-file" in result.output
    rotate = ["--selector", "ed2026", "--key-file", str(tmp_path / "ed.pem")]
    result = runner.invoke(
        main, ["--config", str(config), "dkim", "dns-record", "--value", *rotate]
    )
    assert result.exit_code == 0, result.output
    assert result.output == signer.keys[1].dns_record() + "\n"


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
