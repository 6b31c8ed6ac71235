"""The pipelined path's reply reader gives exactly what smtplib's getreply gives."""

from __future__ import annotations

import smtplib
import socket

import pytest

from newsletter.transport.replies import read_reply
from newsletter.transport.replies import send_bytes

STREAMS = [
    b"250 2.1.0 Ok\r\n",
    b"250-first\r\n250-second line\r\n250 last\r\n",
    b"354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued\r\n",
    b"550 5.1.1 <x@example.net>: Recipient address rejected\r\n",
    b"421-going\r\n421 away\r\n",
    b"250\r\n",
    b"xyz not a code\r\n250 after\r\n",
    b"250 ok with trailing spaces   \r\n250-a\n250 b\n",
]


def _connected(data: bytes) -> tuple[smtplib.SMTP, socket.socket]:
    ours, theirs = socket.socketpair()
    theirs.sendall(data)
    theirs.shutdown(socket.SHUT_WR)
    smtp = smtplib.SMTP()
    smtp.sock = ours
    return smtp, theirs


def _all_replies(read, data: bytes) -> list:
    smtp, peer = _connected(data)
    replies: list = []
    try:
        while True:
            try:
                replies.append(read(smtp))
            except smtplib.SMTPResponseException as error:
                replies.append(("response", error.smtp_code, error.smtp_error))
                break
            except smtplib.SMTPServerDisconnected as error:
                replies.append(("closed", str(error), smtp.sock is None))
                break
    finally:
        peer.close()
        smtp.close()
    return replies


@pytest.mark.parametrize("data", [*STREAMS, b"".join(STREAMS), b"250-" + b"x" * 9000 + b"\r\n"])
def test_replies_as_smtplib_reads_them(data: bytes) -> None:
    assert _all_replies(read_reply, data) == _all_replies(smtplib.SMTP.getreply, data)


def test_a_reply_read_after_smtplib_read_from_the_same_buffer() -> None:
    smtp, peer = _connected(b"250-EHLO\r\n250 PIPELINING\r\n250 2.1.0 Ok\r\n354 go\r\n")
    try:
        assert smtp.getreply() == (250, b"EHLO\nPIPELINING")  # buffers what follows
        assert read_reply(smtp) == (250, b"2.1.0 Ok")
        assert read_reply(smtp) == (354, b"go")
    finally:
        peer.close()
        smtp.close()


def test_sending_on_a_closed_connection_says_disconnected() -> None:
    smtp, peer = _connected(b"")
    peer.close()
    received = []
    try:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            for _ in range(50):  # the first writes may still land in the socket buffer
                send_bytes(smtp, b"x" * 65536)
                received.append(1)
        assert smtp.sock is None
        with pytest.raises(smtplib.SMTPServerDisconnected, match="connect"):
            send_bytes(smtp, b"MAIL FROM:<a@example.org>\r\n")
    finally:
        smtp.close()
