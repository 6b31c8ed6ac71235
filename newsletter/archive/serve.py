"""A tiny preview server for a built site, honouring `base_path` and serving `404.html`.

For local preview only (`newsletter archive serve`); publish the folder with any static host.
"""

from __future__ import annotations

import functools
import http.server
from pathlib import Path

from newsletter.listen import bind_listener


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


def make_server(
    directory: Path, base_path: str = "/", host: str = "127.0.0.1", port: int = 8001, *, quiet=False
) -> http.server.ThreadingHTTPServer:
    """An HTTP server for `directory` mounted at `base_path` (port 0 picks a free one).

    `CannotListen` naming the host or port when it cannot listen there (`bind_listener`).
    """
    listener = bind_listener(host, port)
    handler = type("ArchiveHandler", (_Handler,), {"base_path": base_path, "quiet": quiet})
    factory = functools.partial(handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(
        listener.getsockname()[:2], factory, bind_and_activate=False
    )
    server.socket.close()
    server.socket = listener  # already bound and listening
    server.server_address = listener.getsockname()
    server.server_name, server.server_port = host, server.server_address[1]  # as server_bind would
    return server
