"""Each accepted message recorded durably before its connection sends the next one.

A sending thread hands the `sent` result of a message to `AcceptanceRecorder.submit`, builds its
next message meanwhile, and waits for the commit before that message goes out: a connection
starts its next transaction only once the last acceptance is committed. So a killed
process repeats at most one message per open connection: the one whose acceptance was on the
wire. One recorder thread commits whatever the sending threads handed in meanwhile in one
transaction (a group commit), so four connections cost about one commit per round, not four.

Durable here means "survives a killed process": SQLite in WAL mode with synchronous=NORMAL
(set for every connection in `store.engine`) has the commit in its log file before COMMIT
returns; PostgreSQL gets the commit before it answers, and `synchronous_commit = off` for
these transactions only skips the wait for the disk flush (a server crash, not ours, could
lose the last fraction of a second; the issue's guarantee is about our process).
"""

from __future__ import annotations

import queue
import threading

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import text

from newsletter.store import ledger
from newsletter.store.models import SENT


class _Pending:
    """One handed-in result and the outcome of its commit."""

    __slots__ = ("done", "error", "result")

    def __init__(self, result: ledger.Result) -> None:
        self.result = result
        self.done = threading.Event()
        self.error: BaseException | None = None

    def wait(self) -> bool:
        """Wait for the commit: True once durable, False if it failed (the database said no:
        the caller's batch records the result instead)."""
        self.done.wait()
        return self.error is None


class AcceptanceRecorder:
    """A thread that commits handed-in `sent` results, a group at a time (see the module)."""

    def __init__(self, engine: Engine, worker_id: str) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self.commits = 0  # transactions committed, for the bench's figures
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._postgresql = engine.dialect.name == "postgresql"
        self._connection: Connection | None = None

    def start(self) -> None:
        """Start the recorder thread."""
        self._thread.start()

    def stop(self) -> None:
        """Commit what was handed in and end the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def submit(self, result: ledger.Result | None) -> _Pending | None:
        """Start committing a `sent` result (None for any other: the caller's batch records
        those); `wait()` on the ticket before the connection sends its next message."""
        if result is None or result.status != SENT:
            return None
        pending = _Pending(result)
        self._queue.put(pending)
        return pending

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while True:  # everything handed in while the last commit ran
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                group.append(item)
            error: BaseException | None = None
            try:
                self._commit([pending.result for pending in group])
            except Exception as failure:  # handed back to every waiting sender
                error = failure
            for pending in group:
                pending.error = error
                pending.done.set()

    def _commit(self, results: list[ledger.Result]) -> None:
        # One Core connection for the recorder's life: a Session and a pool checkout per
        # commit cost more than the UPDATE.
        if self._connection is None:
            self._connection = self.engine.connect()
            if self._postgresql:
                self._connection.execute(text("SET synchronous_commit = off"))
                self._connection.commit()
        try:
            ledger.record_results_on(self._connection, self.worker_id, results)
            self._connection.commit()
        except BaseException:
            connection, self._connection = self._connection, None
            connection.close()  # rolls back; the next group gets a fresh connection
            raise
        self.commits += 1
