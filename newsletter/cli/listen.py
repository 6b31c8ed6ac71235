"""The listening socket of `serve`, bound before the server starts.

uvicorn reports a busy port or an unknown host as a log line and exit status 3, after the app
has started; binding ourselves first gives one clear error line instead, and hands uvicorn a
socket that is already ours (no gap in which another process could take the port).
"""

from __future__ import annotations

import socket

import click


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port` and listening, or a ClickException naming them."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise click.BadParameter(
            f"{host!r} is not an address to listen on: {reason}", param_hint="--host"
        ) from None
    family, kind, proto, _name, address = infos[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(2048)
    except OSError as error:
        listener.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return listener
