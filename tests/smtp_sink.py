"""A real SMTP server for tests: aiosmtpd in a thread on 127.0.0.1, recording what it receives.

`running_sink(...)` starts one and yields a `SmtpSink` with `.host`, `.port`, `.messages`,
`.connections` and `.ca_file`. Options: TLS (`"starttls"` or implicit `"ssl"`) with a test CA
made at run time, AUTH with fixed credentials, and a `fault` hook that answers a command with
an error reply instead of accepting it. The server offers PIPELINING (RFC 2920) unless
`pipelining=False`; `sink.handler.pipelined` counts the transactions a client pipelined.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from aiosmtpd.smtp import AuthResult
from aiosmtpd.smtp import Envelope
from aiosmtpd.smtp import LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

TlsMode = Literal["none", "starttls", "ssl"]

# fault(envelope, phase, address) -> reply such as "451 4.3.0 try later", or None to accept.
# phase is "MAIL", "RCPT" or "DATA"; address is the MAIL FROM / RCPT TO address ("" for DATA).
# Two special replies: "DROP" cuts the connection without answering (at DATA: after the
# message was received, before it is accepted), and "SLOW <seconds>" delays the normal answer.
Fault = Callable[[Envelope, str, str], str | None]


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: content as received (CRLF line endings, dot-stuffing undone)."""

    envelope_from: str
    recipients: tuple[str, ...]
    content: bytes
    mail_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Certificates:
    """PEM files of a throwaway CA and a server certificate for 127.0.0.1 and localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def get_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (older aiosmtpd Controllers cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def make_certificates(directory: Path, name: str = "newsletter test CA") -> Certificates:
    """Write a new CA and a server certificate signed by it into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    # Extensions as strict verifiers (VERIFY_X509_STRICT, default from Python 3.13) expect.
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    certs = Certificates(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
    )
    certs.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    certs.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certs.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certs


class RecordingHandler:
    """aiosmtpd handler that records accepted messages and can answer with injected faults."""

    def __init__(
        self,
        fault: Fault | None = None,
        credentials: tuple[str, str] | None = None,
        pipelining: bool = True,
    ) -> None:
        self.fault = fault
        self.credentials = credentials
        self.pipelining = pipelining
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._connections = 0
        # MAIL commands that arrived with their RCPT already behind them in the same read:
        # the client pipelined (it cannot have seen the MAIL reply yet).
        self.pipelined = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        # aiosmtpd accepts pipelined commands but does not say so; offer PIPELINING (RFC 2920)
        # as Postfix does, unless told not to.
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of the accepted messages, oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def connections(self) -> int:
        """How many distinct connections started a mail transaction."""
        with self._lock:
            return self._connections

    async def _fault(self, server: Any, envelope: Envelope, phase: str, address: str) -> str | None:
        reply = self.fault(envelope, phase, address) if self.fault else None
        if reply and reply.startswith("SLOW "):
            await asyncio.sleep(float(reply.split()[1]))
            return None
        if reply == "DROP":
            server.transport.abort()
            return "421 4.4.2 connection dropped"  # never reaches the client
        return reply

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # One SMTP protocol object per TCP connection (it survives STARTTLS; sessions do not).
        if not getattr(server, "_sink_counted", False):
            server._sink_counted = True
            with self._lock:
                self._connections += 1
        # Enforced here rather than with auth_required=True, which warns without TLS and
        # ignores implicit TLS.
        if self.credentials and not session.authenticated:
            return "530 5.7.0 Authentication required"
        buffered = getattr(server, "_reader", None)
        if buffered is not None and b"RCPT" in bytes(getattr(buffered, "_buffer", b"")):
            with self._lock:
                self.pipelined += 1
        reply = await self._fault(server, envelope, "MAIL", address)
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = await self._fault(server, envelope, "RCPT", address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        reply = await self._fault(server, envelope, "DATA", "")
        if reply:
            return reply
        assert isinstance(envelope.content, bytes)
        message = ReceivedMessage(
            envelope_from=envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
            content=envelope.content,
            mail_options=tuple(envelope.mail_options),
        )
        with self._lock:
            self._messages.append(message)
            number = len(self._messages)
        return f"250 2.0.0 Ok: queued as SINK{number:04d}"

    def authenticate(
        self, server: Any, session: Any, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """aiosmtpd `authenticator`: accept exactly the configured login and password."""
        ok = (
            self.credentials is not None
            and isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.credentials[0]
            and auth_data.password.decode() == self.credentials[1]
        )
        # handled=False: with the default (True) aiosmtpd sends no reply at all on failure.
        return AuthResult(success=ok, handled=False)


class _TrackedSMTP(SMTP):
    """aiosmtpd's protocol, registering itself while its connection is open."""

    def __init__(self, handler: Any, live: set[SMTP], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._live = live

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._live.discard(self)
        super().connection_lost(error)


class _Controller(Controller):
    """A Controller whose `stop()` also closes the open client connections.

    aiosmtpd's own stop() cancels the session tasks and closes the loop before the transports
    they close are torn down, so each open connection leaks a socket (ResourceWarning).
    """

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._live: set[SMTP] = set()

    def factory(self) -> SMTP:
        return _TrackedSMTP(self.handler, self._live, **self.SMTP_kwargs)

    async def _drop_connections(self) -> None:
        for smtp in list(self._live):
            # abort(), not close(): a TLS close waits for the peer's close_notify.
            if smtp._original_transport is not None:
                smtp._original_transport.abort()
            if smtp.transport is not None:
                smtp.transport.abort()
        for _ in range(500):
            if not self._live:
                break
            await asyncio.sleep(0.01)
        # Let the cancelled session tasks finish.
        await asyncio.sleep(0.01)

    def stop(self, no_assert: bool = False) -> None:
        if self._thread is not None:
            asyncio.run_coroutine_threadsafe(self._drop_connections(), self.loop).result(10)
        super().stop(no_assert)


class SmtpSink:
    """A running (or stopped) test SMTP server; `restart()` drops every open connection."""

    def __init__(
        self,
        handler: RecordingHandler,
        tls: TlsMode = "none",
        certificates: Certificates | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        if tls != "none" and certificates is None:
            raise ValueError("TLS needs certificates")
        self.handler = handler
        self.tls = tls
        self.certificates = certificates
        self.host = host
        self.port = port or get_free_port(host)
        self._controller: _Controller | None = None

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Messages accepted so far."""
        return self.handler.messages

    @property
    def connections(self) -> int:
        """Connections that started a mail transaction so far."""
        return self.handler.connections

    @property
    def ca_file(self) -> Path | None:
        """The CA that signed the server certificate (None without TLS)."""
        return self.certificates.ca_file if self.certificates else None

    def _server_context(self) -> ssl.SSLContext:
        assert self.certificates is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificates.cert_file, self.certificates.key_file)
        return context

    def start(self) -> None:
        """Listen on host:port (again, after `stop`)."""
        options: dict[str, Any] = {}
        if self.tls == "ssl":
            options["ssl_context"] = self._server_context()
        elif self.tls == "starttls":
            options["tls_context"] = self._server_context()
            options["require_starttls"] = True
        if self.handler.credentials:
            options["authenticator"] = self.handler.authenticate
            options["auth_require_tls"] = False
        self._controller = _Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            server_hostname="sink.test",
            **options,
        )
        self._controller.start()

    def stop(self) -> None:
        """Close the listener and every open connection."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def restart(self) -> None:
        """Stop and start on the same port: clients holding a connection find it dropped."""
        self.stop()
        self.start()


@contextmanager
def running_sink(
    *,
    tls: TlsMode = "none",
    credentials: tuple[str, str] | None = None,
    fault: Fault | None = None,
    certificates: Certificates | None = None,
    pipelining: bool = True,
) -> Iterator[SmtpSink]:
    """Run a recording SMTP server for the duration of the block.

    With `tls` other than "none" and no `certificates`, a fresh test CA and server certificate
    are made in a temporary folder; point the client's `ca_file` at `sink.ca_file`.
    """
    with tempfile.TemporaryDirectory(prefix="smtp-sink-") as tmp:
        if tls != "none" and certificates is None:
            certificates = make_certificates(Path(tmp))
        sink = SmtpSink(RecordingHandler(fault, credentials, pipelining), tls, certificates)
        sink.start()
        try:
            yield sink
        finally:
            sink.stop()
