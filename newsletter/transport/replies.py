"""SMTP replies read and commands written for the pipelined path, with less Python per line.

smtplib's `getreply` checks its debug level, strips and joins for every line it reads, and
a pipelined transaction reads four replies per message: per message that was more Python
than the rest of the transaction. `read_reply` reads the same file object smtplib keeps for
the connection (so nothing buffered is lost between the two), with smtplib's rules: a reply
is a run of lines `NNN-text` ended by one `NNN text` (RFC 5321 4.2.1), an unparsable code is
-1, a closed connection or an error reading closes the SMTP object and raises
`SMTPServerDisconnected`, a line too long raises `SMTPResponseException(500, ...)`.
"""

from __future__ import annotations

import smtplib
import sys

_MAXLINE = smtplib._MAXLINE  # what smtplib reads of a line at most


def read_reply(smtp: smtplib.SMTP) -> tuple[int, bytes]:
    """(code, text) of the server's next reply, as `smtp.getreply()` gives it."""
    file = smtp.file
    if file is None:
        if smtp.sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        file = smtp.file = smtp.sock.makefile("rb")
    lines = []
    while True:
        try:
            line = file.readline(_MAXLINE + 1)
        except OSError as error:
            smtp.close()
            raise smtplib.SMTPServerDisconnected(
                "Connection unexpectedly closed: " + str(error)
            ) from None
        if not line:
            smtp.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if len(line) > _MAXLINE:
            smtp.close()
            raise smtplib.SMTPResponseException(500, "Line too long.")
        lines.append(line[4:].strip(b" \t\r\n"))
        try:
            code = int(line[:3])
        except ValueError:
            return -1, b"\n".join(lines)
        if line[3:4] != b"-":
            break
    if len(lines) == 1:
        return code, lines[0]
    return code, b"\n".join(lines)


def send_bytes(smtp: smtplib.SMTP, data: bytes) -> None:
    """`smtp.send(data)` for bytes: one `sendall`; an error closes and raises as smtplib's."""
    sock = smtp.sock
    if sock is None:
        raise smtplib.SMTPServerDisconnected("please run connect() first")
    sys.audit("smtplib.send", smtp, data)
    try:
        sock.sendall(data)
    except OSError:
        smtp.close()
        raise smtplib.SMTPServerDisconnected("Server not connected") from None
