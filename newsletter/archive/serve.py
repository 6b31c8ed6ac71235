"""A tiny preview server for a built site, honouring `base_path` and serving `404.html`.

For local preview only (`newsletter archive serve`); publish the folder with any static host.
"""

from __future__ import annotations

import errno
import functools
import http.server
import ipaddress
import re
import socket
from pathlib import Path

from newsletter.errors import ArchiveError


class _Handler(http.server.SimpleHTTPRequestHandler):
    base_path = "/"
    quiet = False

    def send_head(self):
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if self.base_path != "/":
            if path + "/" == self.base_path:
                self.send_response(301)
                self.send_header("Location", self.base_path)
                self.end_headers()
                return None
            if not path.startswith(self.base_path):
                return self._not_found()
            self.path = "/" + self.path[len(self.base_path) :]
        target = Path(self.translate_path(self.path))
        if not target.exists() or (target.is_dir() and not (target / "index.html").exists()):
            return self._not_found()
        return super().send_head()

    def _not_found(self):
        page = Path(self.directory) / "404.html"
        body = page.read_bytes() if page.exists() else b"Not found"
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return None

    def log_message(self, format: str, *args) -> None:
        if not self.quiet:
            super().log_message(format, *args)


class _IPv6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def make_server(
    directory: Path, base_path: str = "/", host: str = "127.0.0.1", port: int = 8001, *, quiet=False
) -> http.server.ThreadingHTTPServer:
    """An HTTP server for `directory` mounted at `base_path` (port 0 picks a free one).

    `ArchiveError` naming the host or port when it cannot listen there (in use, not an
    address of this machine, not a host at all, a port below 1024 without root).
    """
    if not 0 <= port <= 65535:
        raise ArchiveError(f"port {port}: a port is 0 to 65535 (0 picks a free one)")
    if re.fullmatch(r"[\d.]+", host) and not _is_ip(host):
        raise ArchiveError(f"host {host!r}: not an IP address (each of its 4 numbers is 0-255)")
    handler = type("ArchiveHandler", (_Handler,), {"base_path": base_path, "quiet": quiet})
    factory = functools.partial(handler, directory=str(directory))
    server_class = _IPv6Server if ":" in host else http.server.ThreadingHTTPServer
    try:
        return server_class((host, port), factory)
    except socket.gaierror as error:
        raise ArchiveError(f"host {host!r}: unknown host ({error.strerror})") from None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            problem = f"port {port} on {host} is in use by another program: choose another port"
        elif error.errno == errno.EADDRNOTAVAIL:
            problem = f"host {host!r}: not an address of this machine"
        elif error.errno == errno.EACCES:
            problem = f"port {port}: not allowed (ports below 1024 need root): choose another"
        else:
            problem = f"cannot listen on {host} port {port}: {error.strerror or error}"
        raise ArchiveError(problem) from None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
