"""Handling and sending the outbox of transactional emails, off the request path.

A page that leads to an email only adds a row to the outbox (`store.outbox`) and commits it;
`OutboxDrainer` does the rest in a background thread of the process (`newsletter serve`
starts it; `wake` after a commit has it look at once, and it looks every `poll_seconds` for
rows from other processes and for retries). For each row: claim it (a lease, so two processes
never take the same one), let `prepare` apply the subscriber service's rule and compose the
email (one transaction: the row becomes the email to send), send it over the one kept
connection, and delete it. A temporary failure is retried later with a growing wait, at most
`MAX_ATTEMPTS` times; a permanent one, or the last, leaves the row `failed` for the operator.

`flush` handles every due row in the calling thread and returns once none is left, waiting for
a pass of the thread already under way: the deterministic way for tests and the CLI.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.errors import PermanentFailure
from newsletter.errors import TemporaryFailure
from newsletter.store import outbox
from newsletter.store.engine import transaction
from newsletter.store.models import utcnow

log = logging.getLogger("newsletter.notices")

# (session, kind, payload) -> (recipient, message) to send, or None when nothing goes out.
Prepare = Callable[[Session, str, dict[str, Any]], tuple[str, bytes] | None]
Send = Callable[[str, bytes], str]  # (recipient, message) -> the server's reply

LEASE = dt.timedelta(minutes=5)  # a crashed process's rows are taken up again after this
MAX_ATTEMPTS = 8
FIRST_WAIT = 30.0  # seconds before the first retry; doubled each time, at most an hour
POLL_SECONDS = 10.0
DUE_BATCH = 50  # rows read at a time


def retry_wait(attempts: int) -> dt.timedelta:
    """The wait before the next try after `attempts` failed ones."""
    return dt.timedelta(seconds=min(3600.0, FIRST_WAIT * 2 ** max(0, attempts - 1)))


class OutboxDrainer:
    """Handles the outbox's due rows: in a background thread (`start`, `wake`) or now
    (`flush`)."""

    def __init__(
        self,
        engine: Engine,
        prepare: Prepare,
        send: Send,
        *,
        poll_seconds: float = POLL_SECONDS,
        on_idle: Callable[[], None] | None = None,
        background: bool = True,
    ) -> None:
        self.engine = engine
        self.background = background  # False: no thread (a CLI process flushes instead)
        self.prepare = prepare
        self.send = send
        self.poll_seconds = poll_seconds
        self.on_idle = on_idle
        self._pass = threading.Lock()  # one pass over the rows at a time in this process
        self._queued = threading.Event()  # a row was queued here since a pass began
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()

    # --- the background thread -----------------------------------------------------------

    def start(self) -> None:
        """Start the thread (if not running); it looks at the outbox at once."""
        with self._thread_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._wake.set()
            self._thread = threading.Thread(target=self._run, name="notice-outbox", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Have the thread look at the outbox now (starting it if needed; nothing without
        `background`: the rows wait for a flush or the next process that drains them)."""
        if not self.background:
            return
        self.start()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after its current email (rows left stay queued for next time)."""
        with self._thread_lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.process_due(stoppable=True)
            except Exception:  # the database away for a moment: try again at the next poll
                log.exception("could not read the outbox of transactional emails")
            if self.on_idle is not None:
                self.on_idle()

    # --- handling rows -------------------------------------------------------------------

    def note_queued(self) -> None:
        """A row was queued by this process (`flush(only_if_queued=True)` then looks)."""
        self._queued.set()

    def flush(self, *, only_if_queued: bool = False) -> int:
        """Handle every due row now, in this thread, waiting for a pass of the thread under
        way; how many were handled. `only_if_queued`: nothing (not even a query) unless this
        process queued a row since the last pass began or a pass is under way."""
        if only_if_queued and not self._queued.is_set() and not self._pass.locked():
            return 0  # checked in this order: the pass takes the lock, then clears the flag
        return self.process_due()

    def process_due(self, *, stoppable: bool = False) -> int:
        """One pass: handle due rows until none is left (or, `stoppable`, until `stop`);
        how many this pass handled."""
        handled = 0
        with self._pass:
            while not (stoppable and self._stop.is_set()):
                self._queued.clear()
                ids = outbox.due_ids(self.engine, utcnow(), DUE_BATCH)
                if not ids:
                    break
                progress = 0
                for row_id in ids:
                    if self._handle(row_id):
                        progress += 1
                handled += progress
                if progress == 0:
                    break  # every one was claimed by another process meanwhile
                if len(ids) < DUE_BATCH and not self._queued.is_set():
                    # Every due row was in this batch and none was queued here since: no
                    # second look (one query less for each email; other processes' rows are
                    # seen at the next poll, or drained by their own process).
                    break
        return handled

    def _handle(self, row_id: int) -> bool:
        """Claim, prepare, send and settle one row; False if another process had it."""
        try:
            # The claim is a transaction of its own, committed at once: on SQLite a writing
            # transaction holds the database's one write lock to its commit, and a send beside
            # the web app commits each acceptance. The rule then reads without the lock (a
            # statement that only reads begins no transaction) and takes it at its first write.
            with transaction(self.engine) as session:
                if not outbox.claim(session, row_id, utcnow(), LEASE):
                    return False
                kind, payload, recipient, message, _ = outbox.read(session, row_id)
            if kind != outbox.MAIL:
                try:
                    prepared = self._prepare(row_id, kind, payload)
                except IntegrityError:
                    # Read without the lock, the rule may lose a race to another process's
                    # insert (the first requests create the lists): once more, it sees it.
                    prepared = self._prepare(row_id, kind, payload)
                if prepared is None:
                    return True
                recipient, message = prepared
        except Exception as error:  # a bug or the database: keep the request, retry it later
            log.exception("could not handle the outbox row %s", row_id)
            self._failed(row_id, error, permanent=False)
            return True
        assert message is not None
        try:
            self.send(recipient, message)
        except PermanentFailure as error:
            log.error("the email to %s was refused: %s", recipient, error)
            self._failed(row_id, error, permanent=True)
            return True
        except (TemporaryFailure, OSError) as error:
            log.warning("could not send the email to %s yet: %s", recipient, error)
            self._failed(row_id, error, permanent=False)
            return True
        except Exception as error:
            log.exception("could not send the email to %s", recipient)
            self._failed(row_id, error, permanent=False)
            return True
        with transaction(self.engine) as session:
            outbox.remove(session, row_id)
        return True

    def _prepare(self, row_id: int, kind: str, payload: dict[str, Any]) -> tuple[str, bytes] | None:
        """Apply the rule for a claimed row and keep the email it composes (or remove the row
        when nothing goes out): one transaction, so the rule applies only with its email."""
        with transaction(self.engine) as session:
            prepared = self.prepare(session, kind, payload)
            if prepared is None:
                outbox.remove(session, row_id)
            else:
                outbox.to_mail(session, row_id, *prepared)
        return prepared

    def _failed(self, row_id: int, error: Exception, *, permanent: bool) -> None:
        text = f"{type(error).__name__}: {error}"
        with transaction(self.engine) as session:
            # The count is the row's own: a row that fails before it can be read (a payload
            # that no longer parses) is bounded like any other.
            attempts = outbox.attempts(session, row_id)
            if permanent or attempts + 1 >= MAX_ATTEMPTS:
                outbox.give_up(session, row_id, text)
            else:
                outbox.retry_later(session, row_id, utcnow() + retry_wait(attempts + 1), text)
