"""What a send is waiting for, in words: retries not yet due, rows another sender holds.

A run that finds nothing to claim while rows are still open says why and until when ("1
address is being retried at 10:42; Ctrl-C leaves it queued", "waiting up to 4 min for 3 rows
claimed by a stopped sender; --take-over to reclaim now"), and a run that ends with rows left
open (`--no-wait`, workers) says how to continue. Times are shown in `[schedule] timezone`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import socket
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from newsletter.render.environment import plural
from newsletter.store import ledger
from newsletter.store.ledger import Held
from newsletter.store.ledger import OpenRows
from newsletter.store.models import utcnow

log = logging.getLogger("newsletter.send")

# A changed wait is announced at once when what is waited for changes kind, otherwise at most
# this often (many retries due at different times would print a line each).
REPEAT_SECONDS = 30.0

GONE = "gone"  # the sender's process on this host has stopped
RUNNING = "running"  # it still runs on this host
ELSEWHERE = "elsewhere"  # on another host: whether it runs cannot be told from here


def sender_state(worker_id: str, claimed_at: dt.datetime) -> str:
    """GONE, RUNNING or ELSEWHERE for a sender id `host:pid` that claimed rows at `claimed_at`.

    Only a process on this host can be checked. A sender whose pid no longer exists is gone,
    and so is one that claimed its rows before this host last booted; a pid that exists is
    taken to be the sender (a reused pid only makes the run wait for the lease: never a
    duplicate).
    """
    host, _, pid_text = worker_id.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return ELSEWHERE
    pid = int(pid_text)
    if pid == os.getpid():
        return RUNNING  # another runner in this process (the web app, the scheduler)
    booted = _boot_time()
    if booted is not None and claimed_at < booted:
        return GONE
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return GONE
    except PermissionError:
        return RUNNING  # exists, under another user
    return RUNNING


def _boot_time() -> dt.datetime | None:
    """When this host booted (Linux `/proc/stat` btime; None where there is none).

    Read by hand: the one line needed does not justify a dependency such as psutil.
    """
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            for line in stat:
                if line.startswith("btime "):
                    return dt.datetime.fromtimestamp(int(line.split()[1]), dt.UTC)
    except (OSError, ValueError):
        return None
    return None


def gone_senders(rows: OpenRows) -> list[str]:
    """The ids of the stopped senders on this host that hold rows: safe to take over."""
    return [h.worker_id for h in rows.held if sender_state(h.worker_id, h.claimed_at) == GONE]


def duration(seconds: float) -> str:
    """'45 s', '4 min', '1 h 5 min' (rounded up: a wait is never longer than it says)."""
    whole = math.ceil(max(0.0, seconds))
    if whole < 60:
        return f"{whole} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def clock(when: dt.datetime, zone: str, now: dt.datetime | None = None) -> str:
    """'10:42' in `zone` ('10:42:05' when under a minute away), with the date when it is not
    today there ('2026-12-02 10:42')."""
    now = now or utcnow()
    tz = zoneinfo.ZoneInfo(zone)
    local = when.astimezone(tz)
    soon = 0 <= (when - now).total_seconds() < 60
    text = local.strftime("%H:%M:%S" if soon else "%H:%M")
    return text if local.date() == now.astimezone(tz).date() else f"{local:%Y-%m-%d} {text}"


def stamp(when: dt.datetime, zone: str) -> str:
    """A past moment in full: '2026-11-02 09:00 America/Toronto'."""
    return f"{when.astimezone(zoneinfo.ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


@dataclass(frozen=True)
class Notice:
    """One line about a wait; `kind` says what is waited for (retry, gone, running, elsewhere)."""

    kind: str
    text: str


def _retry_notice(rows: OpenRows, zone: str, now: dt.datetime) -> Notice | None:
    if not rows.retries or rows.first_retry is None or rows.last_retry is None:
        return None
    first, last = clock(rows.first_retry, zone, now), clock(rows.last_retry, zone, now)
    if rows.retries == 1:
        text = f"1 address is being retried at {first}; Ctrl-C leaves it queued"
    elif first == last:
        text = f"{rows.retries} addresses are being retried at {first}; Ctrl-C leaves them queued"
    else:
        text = (
            f"{rows.retries} addresses are being retried between {first} and {last}; "
            "Ctrl-C leaves them queued"
        )
    return Notice("retry", text)


def _held_by_state(rows: OpenRows) -> dict[str, list[Held]]:
    groups: dict[str, list[Held]] = {}
    for held in rows.held:
        groups.setdefault(sender_state(held.worker_id, held.claimed_at), []).append(held)
    return groups


def wait_notices(
    rows: OpenRows, month: str, zone: str, now: dt.datetime | None = None
) -> list[Notice]:
    """What a run waits for, one line per kind of wait."""
    now = now or utcnow()
    notices = []
    retry = _retry_notice(rows, zone, now)
    if retry is not None:
        notices.append(retry)
    for state, held in _held_by_state(rows).items():
        count = plural(sum(h.rows for h in held), "row")
        senders = ", ".join(h.worker_id for h in held)
        up_to = duration((max(h.lease_until for h in held) - now).total_seconds())
        if state == GONE:
            text = (
                f"waiting up to {up_to} for {count} claimed by a stopped sender ({senders}); "
                "--take-over to reclaim now"
            )
        elif state == RUNNING:
            text = (
                f"waiting up to {up_to} for {count} claimed by another sender ({senders}), "
                "still running"
            )
        else:
            text = (
                f"waiting up to {up_to} for {count} claimed by a sender on another host "
                f"({senders}); if it has stopped, `newsletter send {month} --take-over` "
                "on that host reclaims them now"
            )
        notices.append(Notice(state, text))
    return notices


def leftover_lines(
    rows: OpenRows, month: str, zone: str, now: dt.datetime | None = None
) -> list[str]:
    """For a run that ended with rows still open (`--no-wait`, a worker): what is left, and
    how to continue."""
    now = now or utcnow()
    lines = []
    if rows.retries and rows.first_retry is not None:
        them = "it" if rows.retries == 1 else "them"
        lines.append(
            f"{plural(rows.retries, 'address', 'addresses')} left queued for a retry (the next at "
            f"{clock(rows.first_retry, zone, now)}): run `newsletter send {month}` again to "
            f"send {them}, or let `newsletter worker` do it"
        )
    for state, held in _held_by_state(rows).items():
        count = plural(sum(h.rows for h in held), "row")
        until = clock(max(h.lease_until for h in held), zone, now)
        senders = ", ".join(h.worker_id for h in held)
        line = f"{count} claimed by {senders} until {until}"
        if state == GONE:
            line += f" (stopped): `newsletter send {month} --take-over` reclaims them now"
        else:
            line += f": run `newsletter send {month}` after that if they are still open"
        lines.append(line)
    return lines


class Announcer:
    """Passes each changed wait on, at once when its kinds change, else at most every
    `REPEAT_SECONDS`, so that a long wait says what it waits for without flooding the output."""

    def __init__(self, repeat: float = REPEAT_SECONDS) -> None:
        self.repeat = repeat
        self._kinds: tuple[str, ...] = ()
        self._texts: tuple[str, ...] = ()
        self._at = 0.0

    def changed(self, notices: list[Notice]) -> list[str]:
        """The lines to show now for `notices` (empty: nothing new worth a line)."""
        kinds = tuple(n.kind for n in notices)
        texts = tuple(n.text for n in notices)
        now = time.monotonic()
        if texts == self._texts:
            return []
        if kinds == self._kinds and now - self._at < self.repeat:
            return []
        self._kinds, self._texts, self._at = kinds, texts, now
        return list(texts)


class Waits:
    """What one run says about its waits (logged, and passed to `on_wait`), and the rows it
    takes over from stopped senders when asked to (`take_over`, the CLI's `--take-over`)."""

    def __init__(
        self,
        month: str,
        zone: str,
        worker_id: str,
        *,
        take_over: bool = False,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.month = month
        self.zone = zone
        self.worker_id = worker_id
        self.take_over = take_over
        self.on_wait = on_wait
        self.announcer = Announcer()

    def say(self, lines: list[str]) -> None:
        for line in lines:
            log.info("%s: %s", self.month, line)
            if self.on_wait is not None:
                self.on_wait(line)

    def look(self, session: Session, campaign_id: int) -> tuple[OpenRows, int]:
        """The rows open but not claimable now, after taking over (with `take_over`) those
        of stopped senders on this host; and how many were taken over."""
        rows = ledger.open_rows(session, campaign_id, self.worker_id)
        if not self.take_over:
            return rows, 0
        gone = gone_senders(rows)
        taken = ledger.take_over(session, campaign_id, gone)
        session.commit()
        if not taken:
            return rows, 0
        self.say(
            [f"took over {plural(taken, 'row')} claimed by a stopped sender ({', '.join(gone)})"]
        )
        return ledger.open_rows(session, campaign_id, self.worker_id), taken

    def announce(self, rows: OpenRows) -> None:
        """Say what the run waits for, when that changed (see `Announcer`)."""
        self.say(self.announcer.changed(wait_notices(rows, self.month, self.zone)))

    def leftover(self, rows: OpenRows) -> list[str]:
        """What a run that ends with rows open leaves, and how to continue."""
        return leftover_lines(rows, self.month, self.zone)
