"""DKIM test support: keys, a signer, a digest message, a stub DNS and Mail::DKIM's verifier.

A plugin module (`pytest_plugins = ["test_dkim_support"]`) shared by test_dkim and test_dkim_keys.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import make_config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from outside_tools import require_tool

from newsletter.config import settings_from_dict
from newsletter.content.reader import load_issue
from newsletter.message.dkim import DkimSigner
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
