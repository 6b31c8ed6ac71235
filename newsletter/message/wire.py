"""A message as it goes on the wire after SMTP's DATA command (RFC 5321 4.5.2).

Pure and import-free, so the SMTP transport and the message skeletons share it without the
transport importing the rendering stack.
"""

from __future__ import annotations


def wire_lines(piece: bytes) -> bytes:
    """A piece of a message that starts a line, as it goes on the wire after SMTP's DATA:
    CRLF line endings, and a "." doubled at the start of a line (RFC 5321 4.5.2). Pieces
    that each start a line can be converted one by one and joined: the result is the whole
    message converted (what `smtp_data` does)."""
    if b"\r" in piece:
        piece = piece.replace(b"\r\n", b"\n")
    piece = piece.replace(b"\n.", b"\n..")
    if piece.startswith(b"."):
        piece = b"." + piece
    return piece.replace(b"\n", b"\r\n")


def smtp_data(message: bytes) -> bytes:
    """A message (LF or CRLF line endings) as it goes on the wire after DATA's 354: CRLF,
    dot-stuffed and terminated.

    bytes.replace passes in C; smtplib's data() runs a regular expression over the whole
    message, which cost more than everything else per message. `MessageSkeleton.build` gives
    this form directly from pieces converted once per variant.
    """
    wire = wire_lines(message)
    if not wire.endswith(b"\r\n"):
        wire += b"\r\n"
    return wire + b".\r\n"
