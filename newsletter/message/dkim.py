"""DKIM signatures (RFC 6376, RFC 8463) for outgoing messages, with the key from `[dkim]`.

dkimpy does the parsing, the relaxed/relaxed canonicalization, the header hashing and the
folding; the signature itself is made with `cryptography` (OpenSSL). dkimpy's own RSA is pure
Python: about 9 ms a signature against 0.4 ms, which would cap a sender at ~100 messages/s.
The result is byte-identical to `dkim.sign` (a test checks it) and verifies with `dkim.verify`.

Several keys (RSA beside Ed25519: RFC 8463 §1, since not every verifier knows Ed25519) give one
DKIM-Signature each, over the same header fields; the body hash and the header canonicalization
are computed once for all of them.

Signing is pure and thread-safe: `DkimSigner.sign(message)` reads only the clock (the t= tag).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Iterable
from collections.abc import Sequence
from pathlib import Path

import dkim
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import CanonicalizationPolicy
from dkim.canonicalization import correct_empty_body
from dkim.canonicalization import strip_trailing_lines

from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.errors import RenderError

# Over-signed: each is in h= once more than the message has it (RFC 6376 §5.4.2, §8.15). The
# verifier hashes the listed copies from the bottom up and an extra listing hashes as empty, so
# a copy added anywhere later (a second Subject or List-Unsubscribe above the signed one, which
# is what mail readers show) breaks the signature, and so does adding a field the message lacks.
OVERSIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "reply-to",
    "mime-version",
    "content-type",
)
_OVERSIGNED = tuple(name.encode("ascii") for name in OVERSIGNED_HEADERS)
MIN_RSA_BITS = 1024  # verifiers (dkimpy included) reject shorter keys

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

_HEADER = b"DKIM-Signature"
_CANON = b"relaxed/relaxed"
_POLICY = CanonicalizationPolicy.from_c_value(_CANON)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_SPACES = re.compile(rb"  +")
_TOKEN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")


def load_private_key(data: bytes, source: str = "the DKIM key") -> PrivateKey:
    """An RSA or Ed25519 private key from PEM (PKCS#1 or PKCS#8), or an Ed25519 key in
    dkimpy's `dknewkey` format (base64 of the 32-byte seed). ConfigError naming `source`."""
    text = data.strip()
    if not text.startswith(b"-----BEGIN"):
        try:
            seed = base64.b64decode(text, validate=True)
        except binascii.Error:
            seed = b""
        if len(seed) != 32:
            raise ConfigError(f"{source}: not a PEM private key (expected -----BEGIN ...)")
        return ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    try:
        key = serialization.load_pem_private_key(text, password=None)
    except TypeError:
        raise ConfigError(
            f"{source}: the key is encrypted; store it unencrypted, readable only by the sender"
        ) from None
    except (ValueError, UnsupportedAlgorithm) as error:
        raise ConfigError(f"{source}: cannot read the private key ({error})") from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"{source}: RSA key of {key.key_size} bits; DKIM needs at least {MIN_RSA_BITS} "
                "(use 2048)"
            )
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise ConfigError(f"{source}: unsupported key type {type(key).__name__}; use RSA or Ed25519")


class DkimKey:
    """One signing key: the selector and domain it is published under, and the private key."""

    def __init__(self, selector: str, domain: str, key: PrivateKey) -> None:
        _check_dns_name(selector, "dkim.selector")
        _check_dns_name(domain, "dkim.domain")
        self.selector = selector
        self.domain = domain.lower()
        self.key = key
        self.algorithm = "rsa-sha256" if isinstance(key, rsa.RSAPrivateKey) else "ed25519-sha256"
        self._selector = selector.encode("ascii")
        self._domain = self.domain.encode("ascii")
        self._algorithm = self.algorithm.encode("ascii")

    @property
    def dns_name(self) -> str:
        """Where the public key is published: `<selector>._domainkey.<domain>`."""
        return f"{self.selector}._domainkey.{self.domain}"

    def dns_record(self) -> str:
        """The TXT record value publishing the public key (`v=DKIM1; k=...; p=...`)."""
        public = self.key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            der = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode("ascii")
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "v=DKIM1; k=ed25519; p=" + base64.b64encode(raw).decode("ascii")

    def sign_digest(self, digest: bytes) -> bytes:
        """The signature (b=) of the SHA-256 `digest` of the canonicalized header fields."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        # RFC 8463: Ed25519 over the SHA-256 of the canonicalized headers.
        return self.key.sign(digest)

    def signature(
        self,
        signed_fields: bytes,
        include: list[bytes],
        body_hash: bytes,
        stamp: bytes,
        linesep: bytes,
    ) -> bytes:
        """This key's DKIM-Signature header field (name, value, line end). `signed_fields`
        is what the header hash starts with: the canonicalized fields that `include` (h=)
        selects, each as `name:value` (`hashed_fields`)."""
        # The same tags, in the same order, as dkimpy's DKIM.sign.
        fields = [
            (b"v", b"1"),
            (b"a", self._algorithm),
            (b"c", _CANON),
            (b"d", self._domain),
            (b"i", b"@" + self._domain),
            (b"q", b"dns/txt"),
            (b"s", self._selector),
            (b"t", stamp),
            (b"h", b" : ".join(include)),
            (b"bh", body_hash),
            # A placeholder b= long enough to fold onto its own line: refolding after the
            # real value goes in then leaves the other tags' whitespace alone.
            (b"b", b"0" * 60),
        ]
        unsigned = dkim.fold(_join(fields), namelen=len(_HEADER), linesep=b"\r\n")
        unsigned = dkim.RE_BTAG.sub(b"\\1", unsigned)
        # As dkim.hash_headers: the signature field last, canonicalized, with no line end.
        ((name, value),) = _POLICY.canonicalize_headers([(_HEADER, b" " + unsigned)])
        digest = hashlib.sha256(signed_fields + name + b":" + value.rstrip()).digest()
        fields[-1] = (b"b", base64.b64encode(self.sign_digest(digest)))
        value = dkim.fold(_join(fields) + linesep, namelen=len(_HEADER), linesep=linesep)
        return _HEADER + b": " + bytes(value)


class DkimSigner:
    """Signs messages for one domain with one key, or several (one DKIM-Signature each).

    `DkimSigner(selector, domain, key)` signs with one key; `also=[(selector, key), ...]` adds
    more keys under the same domain, whose signatures follow the first one's. `keys` holds them
    all; `selector`, `key`, `algorithm`, `dns_name` and `dns_record()` are the first key's.
    """

    def __init__(
        self,
        selector: str,
        domain: str,
        key: PrivateKey,
        *,
        also: Sequence[tuple[str, PrivateKey]] = (),
    ) -> None:
        first = DkimKey(selector, domain, key)
        self.keys = (first, *(DkimKey(name, domain, other) for name, other in also))
        self.domain = first.domain
        self.selector = first.selector
        self.key = first.key
        self.algorithm = first.algorithm

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        """The signer configured in `[dkim]`, or None when `enabled` is false.

        The keys are `selector` + `key_file`, or every `[[dkim.keys]]` table (the config loader
        resolves relative key files against the configuration's folder). ConfigError naming
        the key when enabled but a selector or key file is missing, or a key file cannot be
        read or parsed.
        The domain defaults to that of `newsletter.from_email`.
        """
        config = settings.dkim
        if not config.enabled:
            return None
        domain = config.domain.strip() or settings.sender_domain()
        if config.keys:
            loaded = []
            for index, entry in enumerate(config.keys):
                name = f"dkim.keys.{index}"
                _check_dns_name(entry.selector, f"{name}.selector")
                loaded.append((entry.selector, _read_key(entry.key_file, f"{name}.key_file")))
            (selector, key), *rest = loaded
            return cls(selector, domain, key, also=rest)
        if not config.selector.strip():
            raise ConfigError(
                "dkim.selector is empty (the key is published at <selector>._domainkey.<domain>)"
            )
        if config.key_file is None:
            raise ConfigError("dkim.key_file is not set: name the PEM private key file")
        # Names before files: a bad selector is the error to fix, whatever the key file holds.
        _check_dns_name(config.selector.strip(), "dkim.selector")
        _check_dns_name(domain, "dkim.domain")
        key = _read_key(config.key_file, "dkim.key_file")
        return cls(config.selector.strip(), domain, key)

    @property
    def dns_name(self) -> str:
        """Where the first key is published: `<selector>._domainkey.<domain>`."""
        return self.keys[0].dns_name

    def dns_record(self) -> str:
        """The TXT record value publishing the first key (`v=DKIM1; k=...; p=...`)."""
        return self.keys[0].dns_record()

    def header_list(self, names: Iterable[bytes]) -> list[bytes]:
        """The h= fields for a message whose header field names, in any case, are `names`
        (one per field, repeats included): each of OVERSIGNED_HEADERS once more than it
        occurs, so a field that is absent is listed once."""
        counts: dict[bytes, int] = {}
        for name in names:
            lower = name.lower()
            counts[lower] = counts.get(lower, 0) + 1
        return [name for name in _OVERSIGNED for _ in range(counts.get(name, 0) + 1)]

    def sign(self, message: bytes, timestamp: int | None = None) -> bytes:
        """The message with a DKIM-Signature header per key prepended (the first key's on
        top), in the message's own line endings (LF for ours; CRLF input stays CRLF).
        RenderError for a message whose header dkimpy cannot parse (never one we built)."""
        headers, body = split_message(message)
        include = self.header_list(name for name, _ in headers)
        signed_fields = hashed_fields(_POLICY.canonicalize_headers(headers), include)
        body_hash = base64.b64encode(hashlib.sha256(canonical_body(body)).digest())
        stamp = str(int(time.time()) if timestamp is None else timestamp).encode("ascii")
        # The first line's ending tells the message's style (no scan of the whole body).
        first = message.find(b"\n")
        linesep = b"\r\n" if first > 0 and message[first - 1] == 13 else b"\n"
        signatures = [
            key.signature(signed_fields, include, body_hash, stamp, linesep) for key in self.keys
        ]
        return b"".join(signatures) + message


def select_headers(
    headers: list[tuple[bytes, bytes]], include: list[bytes]
) -> list[tuple[bytes, bytes]]:
    """The fields that h= `include` signs, in its order: for each name the next instance not
    yet taken, from the bottom of the header up; none once they are used up (RFC 6376 §5.4.2).
    The same as `dkim.select_headers`, in one pass over the header instead of one a name."""
    positions: dict[bytes, list[int]] = {}
    for index, (name, _) in enumerate(headers):
        positions.setdefault(name.lower(), []).append(index)
    selected = []
    for name in include:
        found = positions.get(name)
        if found:
            selected.append(headers[found.pop()])
    return selected


def hashed_fields(canonical: list[tuple[bytes, bytes]], include: list[bytes]) -> bytes:
    """The start of the header hash input, as `dkim.hash_headers` feeds it: each field that
    `include` selects from the canonicalized header, as `name:value`. The same for every key."""
    return b"".join(name + b":" + value for name, value in select_headers(canonical, include))


def _check_dns_name(value: str, name: str) -> None:
    if not _TOKEN.match(value):
        raise ConfigError(f"{name} {value!r} is not a valid DNS name")


def _read_key(path: Path, name: str) -> PrivateKey:
    """The private key in the file `path`, configured as `name`; ConfigError naming both."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{name} {path}: no such file") from None
    except OSError as error:
        raise ConfigError(f"{name} {path}: cannot read it ({error.strerror or error})") from None
    return load_private_key(data, f"{name} {path}")


def split_message(message: bytes) -> tuple[list[list[bytes]], bytes]:
    """(headers, body) as `dkim.rfc822_parse` gives them, without splitting the body into
    lines: the body keeps its line endings here (`canonical_body` makes them CRLF)."""
    match = _BLANK_LINE.search(message)
    if match is None or match.start() == 0 or message.startswith((b"\n", b"\r\n")):
        headers, body = _parse(message)
        return headers, body
    headers, _ = _parse(message[: match.start()])
    return headers, message[match.end() :]


def canonical_body(body: bytes) -> bytes:
    """The relaxed body canonicalization of RFC 6376 §3.4.4, as dkimpy computes it, with
    C-speed bytes methods where dkimpy uses three regular expressions (~1.5 ms a digest).

    `body` may use LF or CRLF line endings.
    """
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
    # Every run of tabs and spaces becomes one space; then a space before a line end goes.
    if b"\t" in body:
        body = body.replace(b"\t", b" ")
    if b"  " in body:
        body = _SPACES.sub(b" ", body)
    if b" \n" in body:
        body = body.replace(b" \n", b"\n")
    body = body.replace(b"\n", b"\r\n")
    return bytes(correct_empty_body(strip_trailing_lines(body)))


def _parse(data: bytes) -> tuple[list[list[bytes]], bytes]:
    try:
        headers, body = dkim.rfc822_parse(data)
        return [list(field) for field in headers], bytes(body)
    except dkim.MessageFormatError as error:
        raise RenderError(f"cannot DKIM-sign this message: {error}") from None


def _join(fields: list[tuple[bytes, bytes]]) -> bytes:
    return b"; ".join(b"=".join(field) for field in fields)
