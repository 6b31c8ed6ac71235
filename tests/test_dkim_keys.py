"""DKIM with several keys: RSA beside Ed25519, two signatures, rotation, config errors."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dkim
import pytest
from conftest import make_config
from conftest import write_config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import rsa
from outside_tools import require_module
from test_dkim_support import DOMAIN
from test_dkim_support import PREPENDED
from test_dkim_support import pem
from test_dkim_support import signature_tags
from test_dkim_support import stub_dns

from newsletter.config import load_settings
from newsletter.config import settings_from_dict
from newsletter.errors import ConfigError
from newsletter.message.dkim import DkimSigner
from newsletter.message.dkim import split_message

pytest_plugins = ["test_dkim_support"]

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
