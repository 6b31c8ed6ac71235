"""The listening socket of `serve` and `archive serve`, bound before either server starts.

uvicorn and http.server report a busy port or a bad host as a log line or a traceback once
they run; binding here first gives one line naming the host or port, and hands the server a
socket that is already ours (no gap in which another program could take the port).
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket

from newsletter.errors import CannotListen


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port` and listening (port 0 picks a free one).

    `CannotListen` naming the host or port when it cannot listen there: in use, not an
    address of this machine, not a host at all, a port below 1024 without root.
    """
    if not 0 <= port <= 65535:
        raise CannotListen(f"port {port}: a port is 0 to 65535 (0 picks a free one)")
    if re.fullmatch(r"[\d.]+", host) and not _is_ip(host):
        raise CannotListen(f"host {host!r}: not an IP address (each of its 4 numbers is 0-255)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise CannotListen(f"host {host!r}: unknown host ({reason})") from None
    family, kind, proto, _name, address = infos[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(1024)
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            problem = f"port {port} on {host} is in use by another program: choose another port"
        elif error.errno == errno.EADDRNOTAVAIL:
            problem = f"host {host!r}: not an address of this machine"
        elif error.errno == errno.EACCES:
            problem = f"port {port}: not allowed (ports below 1024 need root): choose another"
        else:
            problem = f"cannot listen on {host} port {port}: {error.strerror or error}"
        raise CannotListen(problem) from None
    return listener


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
