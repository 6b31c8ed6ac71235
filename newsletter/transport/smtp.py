"""Transports: hand a finished message to a mail server, a Maildir folder or a list in memory.

All transports share one small interface (in the spirit of django-anymail's backends): `open`,
`send`, `close`, usable as a context manager. `send` takes the envelope sender, one recipient
and a complete RFC 5322 message as bytes with LF line endings, and returns a short receipt
for the ledger. Every failure is a `TemporaryFailure` (retry later) or a `PermanentFailure`
(do not retry); both carry the server's reply code and text when there is one.

A transport object is not thread-safe: give each worker thread its own.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Literal

from newsletter.errors import ConfigError
from newsletter.errors import PermanentFailure
from newsletter.errors import TemporaryFailure
from newsletter.errors import TransportError
from newsletter.message.wire import smtp_data
from newsletter.transport.base import Transport

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.config import SmtpSection

Security = Literal["none", "starttls", "ssl"]


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _reply_failure(what: str, code: int, reply: bytes | str) -> TransportError:
    """The failure for an SMTP error reply: 4xx is temporary, anything else permanent."""
    text = _text(reply)
    kind = TemporaryFailure if 400 <= code < 500 else PermanentFailure
    return kind(f"{what}: {code} {text}", code=code, reply=text)


# The SMTP DATA form of a message: CRLF, dot-stuffed, terminated (`message.wire`; the
# message skeletons build it per variant).
wire_data = smtp_data


def _quoted(address: str) -> str:
    """`<address>` as smtplib.quoteaddr gives it; a plain address skips its parser, which
    cost more per message than the rest of the transaction's Python."""
    if address and not any(c in address for c in '<>()" \t,;[]\\'):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def _commands(envelope_from: str, recipient: str, options: list[str]) -> bytes:
    """MAIL, RCPT and DATA of one transaction, for one pipelined write."""
    encoding = "utf-8" if "SMTPUTF8" in options else "ascii"
    parameters = "".join(" " + option for option in options)
    return (
        f"MAIL FROM:{_quoted(envelope_from)}{parameters}\r\n"
        f"RCPT TO:{_quoted(recipient)}\r\nDATA\r\n"
    ).encode(encoding)


def _send_data(smtp: smtplib.SMTP, wire: bytes) -> tuple[int, bytes]:
    """smtplib's data(), with the message already on-the-wire (see `wire_data`)."""
    smtp.putcmd("data")
    code, reply = smtp.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    smtp.send(wire)
    return smtp.getreply()


class _Dropped(Exception):
    """The server closed the connection (or said 421) before the message data was sent."""

    def __init__(self, detail: str, code: int | None = None, reply: str = "") -> None:
        super().__init__(detail)
        self.code = code
        self.reply = reply


class SmtpTransport(Transport):
    """Sends through one SMTP server with smtplib, reusing one connection across messages.

    TLS always verifies the server certificate and host name (`ca_file` adds a trusted CA).
    A connection found dropped when a message starts is reopened and the message retried once.
    """

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        security: Security = "none",
        username: str = "",
        password: str = "",
        timeout: float = 30.0,
        ca_file: Path | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if security not in ("none", "starttls", "ssl"):
            raise ConfigError(f"smtp.security: unknown value {security!r} (none, starttls, ssl)")
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.ca_file = ca_file
        self.local_hostname = local_hostname or None
        self._smtp: smtplib.SMTP | None = None
        # The next transaction (envelope sender, recipient, data), announced along with the
        # last message's data: its three replies are still to be read (see `send`).
        self._ahead: tuple[str, str, bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpTransport:
        """Build from `settings.smtp`; the password comes from the environment."""
        return cls.from_server(settings.smtp)

    @classmethod
    def from_server(cls, smtp: SmtpSection) -> SmtpTransport:
        """Build from one `[smtp]` or `[[smtp_servers]]` entry (password from its env variable)."""
        return cls(
            host=smtp.host,
            port=smtp.port,
            security=smtp.security,
            username=smtp.username,
            password=os.environ.get(smtp.password_env, ""),
            timeout=smtp.timeout,
            ca_file=smtp.ca_file,
            local_hostname=smtp.local_hostname or None,
        )

    def __repr__(self) -> str:
        return f"<SmtpTransport {self.host}:{self.port} {self.security}>"

    @property
    def _where(self) -> str:
        return f"SMTP server {self.host}:{self.port}"

    def open(self) -> None:
        """Connect, secure the connection and log in, unless already connected."""
        if self._smtp is None:
            self._smtp = self._connect()

    @property
    def pipelining(self) -> bool:
        """Whether the open connection's server offers PIPELINING (RFC 2920)."""
        smtp = self._smtp
        return smtp is not None and bool(smtp.does_esmtp) and smtp.has_extn("pipelining")

    def close(self) -> None:
        """Say QUIT and close the connection, if any."""
        if self._ahead is not None:
            self._discard()  # the server may be waiting for a message's data: no QUIT
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()

    def _discard(self) -> None:
        """Close the connection without a QUIT (it is broken or the server is closing it).
        A transaction announced on it ends unfinished: the server delivers nothing of it."""
        self._ahead = None
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _connect(self) -> smtplib.SMTP:
        context = None
        if self.security != "none":
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        # Host and port go to the constructor: smtplib takes the TLS server_hostname from it
        # (connect() alone leaves it empty). On failure the constructor closes its socket.
        try:
            if self.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    local_hostname=self.local_hostname,
                    timeout=self.timeout,
                    context=context,
                )
            else:
                smtp = smtplib.SMTP(
                    self.host,
                    self.port,
                    local_hostname=self.local_hostname,
                    timeout=self.timeout,
                )
        except Exception as error:
            raise self._connect_failure(error) from error
        try:
            self._start_session(smtp, context)
        except BaseException as error:
            smtp.close()
            if isinstance(error, Exception) and not isinstance(error, TransportError):
                raise self._connect_failure(error) from error
            raise
        return smtp

    def _start_session(self, smtp: smtplib.SMTP, context: ssl.SSLContext | None) -> None:
        smtp.ehlo_or_helo_if_needed()
        if self.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise PermanentFailure(
                    f"{self._where} does not offer STARTTLS "
                    "(configuration problem: check smtp.security)"
                )
            code, reply = smtp.starttls(context=context)
            if code != 220:
                raise _reply_failure(f"{self._where} refused STARTTLS", code, reply)
            smtp.ehlo()
        if self.username:
            self._login(smtp)

    def _login(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.login(self.username, self.password)
        except smtplib.SMTPAuthenticationError as error:
            text = _text(error.smtp_error)
            if 400 <= error.smtp_code < 500:
                raise TemporaryFailure(
                    f"{self._where}: login failed for the time being: {error.smtp_code} {text}",
                    code=error.smtp_code,
                    reply=text,
                ) from error
            raise PermanentFailure(
                f"{self._where} rejected the login of {self.username!r} (configuration "
                f"problem: check smtp.username and the password): {error.smtp_code} {text}",
                code=error.smtp_code,
                reply=text,
            ) from error
        except smtplib.SMTPNotSupportedError as error:
            raise PermanentFailure(
                f"{self._where} does not offer AUTH (configuration problem: check smtp.security "
                "and smtp.username)"
            ) from error
        except (smtplib.SMTPResponseException, smtplib.SMTPServerDisconnected):
            raise  # mapped by _connect_failure
        except smtplib.SMTPException as error:
            # "No suitable authentication method found."
            raise PermanentFailure(
                f"{self._where}: cannot log in: {error} (configuration problem)"
            ) from error

    def _connect_failure(self, error: Exception) -> TransportError:
        if isinstance(error, ssl.SSLCertVerificationError):
            return PermanentFailure(
                f"{self._where}: TLS certificate verification failed: "
                f"{error.verify_message or error} (configuration problem: check smtp.host "
                "and smtp.ca_file)"
            )
        if isinstance(error, smtplib.SMTPResponseException):
            return _reply_failure(
                f"{self._where} failed during setup", error.smtp_code, error.smtp_error
            )
        if isinstance(error, smtplib.SMTPNotSupportedError):
            return PermanentFailure(f"{self._where}: {error} (configuration problem)")
        if isinstance(error, smtplib.SMTPServerDisconnected):
            return TemporaryFailure(f"{self._where} closed the connection: {error}")
        if isinstance(error, TimeoutError):
            return TemporaryFailure(f"{self._where}: timed out connecting")
        if isinstance(error, ssl.SSLError):
            return TemporaryFailure(f"{self._where}: TLS error: {error}")
        if isinstance(error, OSError):
            return TemporaryFailure(f"{self._where}: cannot connect: {error}")
        return TemporaryFailure(f"{self._where}: {type(error).__name__}: {error}")

    def send(
        self,
        envelope_from: str,
        recipient: str,
        message: bytes,
        *,
        wire: bool = False,
        then: tuple[str, str, bytes] | None = None,
    ) -> str:
        """Run one SMTP transaction; return the server's reply to the message data.

        With `wire`, `message` is already in SMTP DATA form (`message.wire.smtp_data`: CRLF,
        dot-stuffed, terminated), as `MessageSkeleton.build(..., wire=True)` makes it.

        `then` is the message the caller sends next on this connection (envelope sender,
        recipient, data in that form). With PIPELINING its MAIL, RCPT and DATA go out in the
        same write as this message's data (RFC 2920 3.1 lets message content start a group),
        so each message costs one round trip instead of two. The next `send` must then be
        for that same message (the same bytes); any other call, or `close`, drops the
        connection instead: a DATA the server has answered with 354 cannot be taken back, and
        a transaction cut off in its data delivers nothing.

        Where the server offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go out in one write
        and their three replies are read after it; the message then goes out in one more.
        If the connection turns out to be dropped (or the server says 421) before the data
        was sent, reconnect and try once more. A drop during the data is not retried here:
        the server may have accepted the message, so the caller's retry policy decides.
        """
        ahead, self._ahead = self._ahead, None
        announced = (
            ahead is not None
            and ahead[2] is message
            and ahead[:2]
            == (
                envelope_from,
                recipient,
            )
        )
        if ahead is not None and not announced:
            self._discard()  # another message was announced: the server waits for its data
        for address in (envelope_from, recipient):
            if "\r" in address or "\n" in address:
                raise PermanentFailure(f"address {address!r} contains a line break")
        if then is not None and any("\r" in a or "\n" in a for a in then[:2]):
            then = None  # refused when it is sent on its own
        data = message if wire else wire_data(message)
        try:
            return self._transaction(envelope_from, recipient, data, announced, then)
        except _Dropped:
            self._discard()
        try:
            return self._transaction(envelope_from, recipient, data, False, then)
        except _Dropped as dropped:
            self._discard()
            raise TemporaryFailure(
                f"{self._where} closed the connection: {dropped}",
                code=dropped.code,
                reply=dropped.reply,
            ) from None

    def _options(self, smtp: smtplib.SMTP, envelope_from: str, recipient: str, wire: bytes):
        """MAIL FROM parameters: BODY=8BITMIME and SMTPUTF8 where the message needs them."""
        options = []
        if not wire.isascii() and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if not (envelope_from.isascii() and recipient.isascii()):
            if not smtp.has_extn("smtputf8"):
                raise PermanentFailure(
                    f"{self._where} does not offer SMTPUTF8, needed for "
                    f"{envelope_from!r} -> {recipient!r}"
                )
            options.append("SMTPUTF8")
        return options

    def _transaction(
        self,
        envelope_from: str,
        recipient: str,
        wire: bytes,
        announced: bool = False,
        then: tuple[str, str, bytes] | None = None,
    ) -> str:
        self.open()
        smtp = self._smtp
        assert smtp is not None
        options = self._options(smtp, envelope_from, recipient, wire)
        if smtp.does_esmtp and smtp.has_extn("pipelining"):
            return self._pipelined(smtp, envelope_from, recipient, wire, options, announced, then)
        phase = "MAIL FROM"
        try:
            code, reply = smtp.mail(envelope_from, options)
            if code == 421:
                raise _Dropped(f"421 {_text(reply)}", code, _text(reply))
            if code != 250:
                self._reset(code)
                raise _reply_failure(f"sender <{envelope_from}> refused", code, reply)
            phase = "RCPT TO"
            code, reply = smtp.rcpt(recipient)
            if code == 421:
                raise _Dropped(f"421 {_text(reply)}", code, _text(reply))
            if code not in (250, 251):
                self._reset(code)
                raise _reply_failure(f"recipient <{recipient}> refused", code, reply)
            phase = "DATA"
            code, reply = _send_data(smtp, wire)
        except smtplib.SMTPServerDisconnected as error:
            if phase != "DATA":
                raise _Dropped(f"{error} (at {phase})") from error
            self._discard()
            raise TemporaryFailure(
                f"{self._where} closed the connection during DATA: {error}"
            ) from error
        except smtplib.SMTPResponseException as error:
            # data() raises SMTPDataError when the DATA command itself is refused.
            self._reset(error.smtp_code)
            raise _reply_failure(
                f"message to <{recipient}> refused", error.smtp_code, error.smtp_error
            ) from error
        except OSError as error:
            # smtplib wraps most socket errors as SMTPServerDisconnected; this is the rest.
            self._discard()
            raise TemporaryFailure(f"{self._where}: {type(error).__name__}: {error}") from error
        return self._accepted(recipient, code, reply)

    def _pipelined(
        self,
        smtp: smtplib.SMTP,
        envelope_from: str,
        recipient: str,
        wire: bytes,
        options: list[str],
        announced: bool = False,
        then: tuple[str, str, bytes] | None = None,
    ) -> str:
        """One transaction in two round trips: MAIL, RCPT and DATA in one write, then (after
        354) the message in one `sendall`. Every reply is read, in order, before deciding.
        `announced`: the commands went out with the last message's data (only the replies
        are left to read); `then`: the next transaction's go out with this one's data."""
        sent_data = False
        try:
            if not announced:
                smtp.send(_commands(envelope_from, recipient, options))
            replies = [smtp.getreply() for _ in range(3)]
            (
                (mail_code, mail_reply),
                (rcpt_code, rcpt_reply),
                (data_code, data_reply),
            ) = replies
            if 421 in (mail_code, rcpt_code, data_code):
                text = _text(next(reply for code, reply in replies if code == 421))
                raise _Dropped(f"421 {text}", 421, text)
            if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
                # DATA accepted although the envelope was not (RFC 2920 §3.1): end it empty.
                smtp.send(b".\r\n")
                data_code, data_reply = smtp.getreply()
            if mail_code != 250:
                self._reset(mail_code)
                raise _reply_failure(f"sender <{envelope_from}> refused", mail_code, mail_reply)
            if rcpt_code not in (250, 251):
                self._reset(rcpt_code)
                raise _reply_failure(f"recipient <{recipient}> refused", rcpt_code, rcpt_reply)
            if data_code != 354:
                self._reset(data_code)
                raise _reply_failure(f"message to <{recipient}> refused", data_code, data_reply)
            sent_data = True
            following = b""
            if then is not None:
                try:
                    following = _commands(then[0], then[1], self._options(smtp, *then))
                except (PermanentFailure, UnicodeError):
                    following = b""  # refused when it is sent on its own
            smtp.send(wire + following if following else wire)
            if following:
                assert then is not None
                self._ahead = then  # its replies follow this message's
            code, reply = smtp.getreply()
        except smtplib.SMTPServerDisconnected as error:
            if not sent_data:  # the server cannot have accepted a message it never received
                raise _Dropped(f"{error} (before the message data)") from error
            self._discard()
            raise TemporaryFailure(
                f"{self._where} closed the connection during DATA: {error}"
            ) from error
        except OSError as error:
            self._discard()
            raise TemporaryFailure(f"{self._where}: {type(error).__name__}: {error}") from error
        return self._accepted(recipient, code, reply)

    def _accepted(self, recipient: str, code: int, reply: bytes | str) -> str:
        """The receipt for the reply to the message data, or its failure."""
        if code != 250:
            self._reset(code)
            raise _reply_failure(f"message to <{recipient}> refused", code, reply)
        return f"{code} {_text(reply)}"

    def _reset(self, code: int) -> None:
        """After a refused command: RSET, so the next message starts a clean transaction.

        On 421 the server is closing the connection, so drop it instead. After refused
        message data with the next transaction announced, nothing: the end of the data ended
        this transaction, and an RSET would arrive after the announced DATA.
        """
        smtp = self._smtp
        if smtp is None:
            return
        if code == 421:
            self._discard()
            return
        if self._ahead is not None:
            return
        try:
            code, _ = smtp.rset()
        except (smtplib.SMTPException, OSError):
            code = 0
        if code != 250:
            self._discard()
