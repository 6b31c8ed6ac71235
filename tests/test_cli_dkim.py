"""`newsletter dkim dns-record`: the TXT record for the configured key, through CliRunner."""

from __future__ import annotations

import re
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from conftest import write_config
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import rsa
from test_dkim_support import pem

from newsletter.cli import main
from newsletter.config import load_settings
from newsletter.message.dkim import DkimSigner

SELECTOR = "nl2025"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def configure(tmp_path: Path, key, **dkim_section) -> Path:
    (tmp_path / "dkim.pem").write_bytes(pem(key))
    values = {"enabled": True, "selector": SELECTOR, "key_file": "dkim.pem", **dkim_section}
    return write_config(tmp_path, dkim=values)


def run(runner: CliRunner, config: Path, *args: str):
    return runner.invoke(main, ["--config", str(config), "dkim", "dns-record", *args])


def strings_of(line: str) -> tuple[str, str]:
    """(owner name, joined value) of a zone-file TXT line."""
    name, rest = line.split(None, 1)
    assert re.match(r"IN\s+TXT\s+\"", rest), line
    parts = re.findall(r'"([^"]*)"', rest)
    assert all(len(part) <= 255 for part in parts)
    return name, "".join(parts)


def test_prints_the_record_of_the_configured_key(tmp_path: Path, runner, rsa_key) -> None:
    config = configure(tmp_path, rsa_key)
    result = run(runner, config)
    assert result.exit_code == 0, result.output
    name, value = strings_of(result.output.strip())
    assert name == f"{SELECTOR}._domainkey.example.org."
    assert value.startswith("v=DKIM1; k=rsa; p=MIIB")
    assert len(value) > 255  # a 2048-bit key needs two strings
    signer = DkimSigner.from_settings(load_settings(config))
    assert value == signer.dns_record()
    # A message signed with the key verifies against exactly what the command printed.
    message = b"From: a@example.org\nTo: b@example.net\nSubject: hi\n\nHello.\n"
    published = {name.encode(): value.encode()}
    assert dkim.verify(signer.sign(message), dnsfunc=lambda qname, timeout=5: published.get(qname))


def test_value_only(tmp_path: Path, runner, rsa_key) -> None:
    config = configure(tmp_path, rsa_key, domain="news.example.org")
    result = run(runner, config, "--value")
    assert result.exit_code == 0, result.output
    signer = DkimSigner.from_settings(load_settings(config))
    assert result.output == signer.dns_record() + "\n"
    assert signer.dns_name == f"{SELECTOR}._domainkey.news.example.org"


def test_signing_need_not_be_enabled_yet(tmp_path: Path, runner, rsa_key) -> None:
    config = configure(tmp_path, rsa_key, enabled=False)
    result = run(runner, config)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{SELECTOR}._domainkey.example.org.  IN  TXT  ")


def test_ed25519_key(tmp_path: Path, runner) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    result = run(runner, configure(tmp_path, key), "--value")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("v=DKIM1; k=ed25519; p=")


def test_a_new_key_to_rotate_to(tmp_path: Path, runner, rsa_key) -> None:
    config = configure(tmp_path, rsa_key)
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "new.pem").write_bytes(pem(new_key))
    result = run(runner, config, "--selector", "nl2026", "--key-file", str(tmp_path / "new.pem"))
    assert result.exit_code == 0, result.output
    name, value = strings_of(result.output.strip())
    assert name == "nl2026._domainkey.example.org."
    old = DkimSigner.from_settings(load_settings(config))
    assert value == DkimSigner("nl2026", "example.org", new_key).dns_record() != old.dns_record()


def test_not_configured_is_a_clear_error(tmp_path: Path, runner) -> None:
    result = run(runner, write_config(tmp_path))
    assert result.exit_code == 1
    assert "Error: DKIM is not configured: set [dkim] selector and key_file" in result.output


def test_unreadable_key_is_a_clear_error(tmp_path: Path, runner, rsa_key) -> None:
    config = configure(tmp_path, rsa_key)
    (tmp_path / "dkim.pem").unlink()
    result = run(runner, config)
    assert result.exit_code == 1
    assert "Error: dkim.key_file" in result.output
    assert "no such file" in result.output
    (tmp_path / "dkim.pem").write_text("not a key")
    result = run(runner, config)
    assert result.exit_code == 1
    assert "not a PEM private key" in result.output
