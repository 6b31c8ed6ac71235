"""The web app under a real uvicorn server on 127.0.0.1, in a thread of the test process."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def uvicorn_in_thread(app: Any, port: int, **options: Any) -> Iterator[None]:
    """Serve `app` on 127.0.0.1:`port` until the block ends (`options` go to uvicorn.Config).

    Returns once the server listens; a server that does not start within 10 s fails the test.
    """
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)
