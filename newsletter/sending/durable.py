"""Each accepted message recorded durably before its connection sends the next one.

A sending thread hands the `sent` result of a message to `AcceptanceRecorder.submit`, builds its
next message meanwhile, and waits on the ticket before that message goes out: a connection
starts its next transaction only once the last acceptance is committed. So a killed
process repeats at most one message per open connection: the one whose acceptance was on the
wire.

The waiting threads commit themselves, one at a time (a group commit without a thread of its
own): the first to wait takes every result handed in so far and commits them in one
transaction; a thread whose result was in that group finds it done when its turn comes. A
recorder thread in between cost two thread switches per message (hand over, wake up), and on
a busy machine each switch waits for a core: that wait, not the UPDATE, was most of the cost.

Durable here means "survives a killed process": SQLite in WAL mode with synchronous=NORMAL
(set for every connection in `store.engine`) has the commit in its log file before COMMIT
returns; PostgreSQL gets the commit before it answers, and `synchronous_commit = off` for
these transactions only skips the wait for the disk flush (a server crash, not ours, could
lose the last fraction of a second; the issue's guarantee is about our process).
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import Engine

from newsletter.store import ledger
from newsletter.store.models import SENT


class _Pending:
    """One handed-in result and the outcome of its commit."""

    __slots__ = ("done", "error", "recorder", "result")

    def __init__(self, recorder: AcceptanceRecorder, result: ledger.Result) -> None:
        self.recorder = recorder
        self.result = result
        self.done = False  # set under the recorder's commit lock
        self.error: BaseException | None = None

    def wait(self) -> bool:
        """Wait for the commit (committing it, and whatever else is waiting, if no other
        thread is): True once durable, False if it failed (the database said no: the
        caller's batch records the result instead)."""
        if not self.done:
            self.recorder._commit_waiting(self)
        return self.error is None


class AcceptanceRecorder:
    """Commits handed-in `sent` results, a group at a time, on the waiting threads (see the
    module). Thread-safe; `close` when the run ends."""

    def __init__(self, engine: Engine, worker_id: str) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self.commits = 0  # transactions committed, for the bench's figures
        self._handed_in: list[_Pending] = []
        self._lock = threading.Lock()  # guards `_handed_in`
        self._commit_lock = threading.Lock()  # one committer at a time, on one connection
        self._writer = ledger.AcceptanceWriter(engine.dialect)
        self._postgresql = engine.dialect.name == "postgresql"
        self._connection: Any = None  # the pool's DBAPI connection, kept for the run
        self._mode: Any = None  # its driver's transaction mode before the run (`_give_back`)

    def submit(self, result: ledger.Result | None) -> _Pending | None:
        """Hand in a `sent` result (None for any other: the caller's batch records those);
        `wait()` on the ticket before the connection sends its next message."""
        if result is None or result.status != SENT:
            return None
        pending = _Pending(self, result)
        with self._lock:
            self._handed_in.append(pending)
        return pending

    def close(self) -> None:
        """Commit anything handed in and not yet waited for, and give the connection back."""
        with self._commit_lock:
            with self._lock:
                group, self._handed_in = self._handed_in, []
            if group:
                self._commit_group(group)
            self._give_back()

    def _commit_waiting(self, pending: _Pending) -> None:
        with self._commit_lock:
            if pending.done:  # another thread's group carried it
                return
            with self._lock:  # `pending` is in here: only a committer takes items out
                group, self._handed_in = self._handed_in, []
            self._commit_group(group)

    def _commit_group(self, group: list[_Pending]) -> None:
        error: BaseException | None = None
        try:
            self._commit([pending.result for pending in group])
        except Exception as failure:  # handed back to every waiting sender
            error = failure
        for pending in group:
            pending.error = error
            pending.done = True

    def _commit(self, results: list[ledger.Result]) -> None:
        # One DBAPI connection for the run, the statement written once: a Session, a pool
        # checkout or SQLAlchemy's execute per commit cost more than the UPDATE.
        if self._connection is None:
            connection = self.engine.raw_connection()
            if self._postgresql:
                cursor = connection.cursor()
                cursor.execute("SET synchronous_commit = off")
                cursor.close()
                connection.commit()
            self._mode = _set_autocommit(connection.dbapi_connection, True)
            self._connection = connection
        try:
            cursor = self._connection.cursor()
            # In autocommit mode a group of one (most groups) is its UPDATE alone, one
            # statement that commits itself: the driver's own BEGIN and COMMIT around it
            # were two more round trips to PostgreSQL. A larger group is one transaction.
            if len(results) > 1:
                cursor.execute("BEGIN")
            self._writer.write(cursor, self.worker_id, results)
            if len(results) > 1:
                cursor.execute("COMMIT")
            cursor.close()
        except BaseException:
            self._give_back()  # rolls back; the next group gets a fresh connection
            raise
        self.commits += 1

    def _give_back(self) -> None:
        """The connection back to the pool, in the transaction mode it came with."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            _set_autocommit(connection.dbapi_connection, self._mode)
        except Exception:  # a broken connection: the pool discards it anyway
            connection.invalidate()
        connection.close()


def _set_autocommit(driver: Any, on: Any) -> Any:
    """Put a driver connection in autocommit mode (`on` True) or back in the mode it had
    (`on` the value this returned); returns the mode it had. sqlite3's is `isolation_level`
    (None: autocommit; "" its default, a BEGIN before the first change), psycopg's
    `autocommit`."""
    if isinstance(driver, sqlite3.Connection):
        before = driver.isolation_level
        driver.isolation_level = None if on is True else on
    else:
        before = driver.autocommit
        driver.autocommit = on
    return before
