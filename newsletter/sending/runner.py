"""The campaign runner: claim batches from the ledger, send, and record every result.

Rendering costs O(variants): each variant is rendered and pre-serialized once per run; per
subscriber only links, tokens and names are filled in (see `mime.MessageSkeleton`). SMTP sends
run on `[smtp] connections` threads, one connection each (`sending.threads`); the main thread
claims rows before they are sent and writes results in small batches, except each `sent`
result, which is committed (`sending.durable`) before that connection sends its next message.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from collections.abc import Collection

from sqlalchemy import Engine

from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.errors import NewsletterError
from newsletter.errors import SendError
from newsletter.errors import TransportUnavailable
from newsletter.message.skeleton import Sender
from newsletter.sending.build import dkim_signer
from newsletter.sending.durable import AcceptanceRecorder
from newsletter.sending.pools import Pool
from newsletter.sending.pools import make_pools
from newsletter.sending.ratelimit import RateLimiter
from newsletter.sending.report import ProgressCallback
from newsletter.sending.report import SendReport
from newsletter.sending.report import tally
from newsletter.sending.threads import SendingThreads
from newsletter.sending.variants import VariantCache
from newsletter.sending.waits import Waits
from newsletter.store import ledger
from newsletter.store.bounces import record_send_bounce
from newsletter.store.engine import session_factory
from newsletter.store.models import PAUSED
from newsletter.store.models import PLANNED
from newsletter.store.models import RETRY
from newsletter.store.models import RUNNING
from newsletter.store.models import SENT
from newsletter.store.models import SKIPPED
from newsletter.store.models import Campaign
from newsletter.store.models import utcnow
from newsletter.tokens import Signer
from newsletter.transport.base import Transport


def worker_name() -> str:
    """host:pid, stored on claimed rows."""
    return f"{socket.gethostname()}:{os.getpid()}"


class CampaignRunner(SendingThreads):
    """Sends the open rows of one campaign, recording every result in the ledger.

    Give either a `transport` (used alone, one message at a time: Maildir, memory, a test
    server) or nothing, and the configured transport is made per connection
    (`[smtp] connections` threads for SMTP).
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        issue: Issue,
        transport: Transport | None = None,
        *,
        transport_factory: Callable[[], Transport] | None = None,
        connections: int | None = None,
        worker_id: str | None = None,
        on_progress: ProgressCallback | None = None,
        wait_for_retries: bool = True,
        take_over: bool = False,
        on_wait: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
        commit_every: int = 50,
        limiter: RateLimiter | None = None,
        dkim=None,
        durable: bool = True,
        siblings: frozenset[str] = frozenset(),
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.issue = issue
        self.pools = make_pools(settings, transport, transport_factory, connections, limiter)
        self.worker_id = worker_id or worker_name()
        self.on_progress = on_progress
        self.wait_for_retries = wait_for_retries
        # Says what the run waits for (to `on_wait`) and, with `take_over`, reclaims at once
        # the rows of senders known to be gone.
        self.waits = Waits(
            issue.month,
            settings.schedule.timezone,
            self.worker_id,
            take_over=take_over,
            on_wait=on_wait,
        )
        # The runner owns its stop flag (set on a quota wait too long to sit out); a caller's
        # stop request (Ctrl-C, app shutdown) is read, never written, so one run's quota stop
        # cannot stop every later run that shares the caller's event.
        self._stop = threading.Event()
        self._stop_requested = stop
        self.commit_every = commit_every
        # Each accepted message committed before its connection sends the next (see
        # `sending.durable`); off only to measure what that costs (bench/durability.py).
        self.durable = durable
        self.siblings = siblings  # worker ids of the other processes of this send
        self.recorder_commits = 0  # after `run`: the recorder's transactions (for benches)
        self.signer = Signer(settings.secret_key())
        self.sender = Sender.from_settings(settings)
        self.variants = VariantCache(settings, issue, self.sender, utcnow())
        self.sessions = session_factory(engine)
        self.dkim = dkim if dkim is not None else dkim_signer(settings)
        self._local = threading.local()
        self._opened: list[Transport] = []
        self._opened_lock = threading.Lock()
        self._spares: dict[str, list[Transport]] = {}  # opened by the preflight, not yet used
        self._connect_failures: dict[str, int] = {}  # consecutive, per pool
        self._consecutive_errors = 0
        self._pause_reason = ""
        self._started = 0.0

    @property
    def connections(self) -> int:
        """Sending threads in all: one per connection of every pool."""
        return sum(pool.connections for pool in self.pools)

    @property
    def limiter(self) -> RateLimiter | None:
        """The first pool's rate limiter (the `[smtp]` server's)."""
        return self.pools[0].limiter

    # --- the run -------------------------------------------------------------------------

    def run(self) -> SendReport:
        """Send until nothing is left, a stop is requested, or the send pauses itself."""
        report = SendReport(self.issue.month)
        self._started = time.monotonic()
        delivery = self.settings.delivery
        lease = dt.timedelta(seconds=delivery.lease_seconds)
        self._preflight()
        try:
            campaign_id, lists = self._start()
        except BaseException:
            self._close_transports()  # the preflight's connections
            raise
        self._count_total(campaign_id, report)
        for index, pool in enumerate(self.pools):
            if pool.limiter is None:
                # Only the first pool's quotas count what was already sent (any campaign).
                engine = self.engine if index == 0 else None
                pool.limiter = RateLimiter.with_quotas(pool.rates, engine)
        # Plain queues and threads: concurrent.futures' per-task bookkeeping cost more than
        # building a message.
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._recorder = AcceptanceRecorder(self.engine, self.worker_id) if self.durable else None
        threads = [
            threading.Thread(
                target=self._sending_thread,
                args=(pool,),
                name=f"{pool.name}-{n}",
                daemon=True,
            )
            for pool in self.pools
            for n in range(pool.connections)
        ]
        for thread in threads:
            thread.start()
        try:
            claim = functools.partial(self._claim, campaign_id, lists, lease)
            while not self.stopping and not self._pause_reason:
                batch = claim()
                if not batch:
                    if not self._wait_for_open_rows(campaign_id, report):
                        break
                    continue
                self._send_batch(batch, report, claim)
        finally:
            for _thread in threads:
                self._work.put(None)
            for thread in threads:
                thread.join()
            if self._recorder is not None:
                self._recorder.close()
                self.recorder_commits = self._recorder.commits
            self._close_transports()
            self._finish(campaign_id, report)
        return report

    def _claim(
        self,
        campaign_id: int,
        lists: list[str],
        lease: dt.timedelta,
        exclude: Collection[int] = (),
    ) -> list[ledger.Claimed]:
        """The next batch of due rows, claimed for this run (none of `exclude`)."""
        with self.sessions() as session:
            ids = ledger.claim_ids(
                session,
                campaign_id,
                self.worker_id,
                self.settings.delivery.batch_size,
                lease,
                exclude=exclude,
            )
            session.commit()  # SQLite's write lock is free again before the rows are read
            return ledger.claimed_rows(session, ids, lists)

    def _preflight(self) -> None:
        """Open one connection per pool before any row is claimed.

        A configuration problem (refused connection, no STARTTLS, a rejected login, a bad
        certificate) then stops the run with one message and nothing claimed, instead of
        failing rows one by one. The connections opened here are the first ones used.
        """
        with self.sessions() as session:
            campaign = ledger.find_campaign(session, self.issue.month)
            if campaign is None or ledger.next_due(session, campaign.id) is None:
                return  # nothing to send: no reason to connect (`_start` reports the rest)
        for pool in self.pools:
            try:
                transport = pool.factory()
                transport.open()
            except NewsletterError as error:
                self._close_transports()
                raise TransportUnavailable(
                    f"cannot send {self.issue.month} through {pool.name}: {error} "
                    "(nothing was claimed; fix the cause and run the same command again)"
                ) from error
            with self._opened_lock:
                self._opened.append(transport)
            self._spares.setdefault(pool.name, []).append(transport)

    def _start(self) -> tuple[int, list[str]]:
        with self.sessions() as session:
            campaign = ledger.find_campaign(session, self.issue.month)
            if campaign is None:
                raise SendError(f"{self.issue.month} has not been planned")
            if campaign.status == PAUSED:
                raise SendError(
                    f"{self.issue.month} is paused: {campaign.pause_reason} — fix the cause, "
                    f"then run `newsletter send {self.issue.month} --resume`"
                )
            campaign.status = RUNNING
            campaign.started_at = campaign.started_at or utcnow()
            session.commit()
            return campaign.id, [slug for slug in campaign.lists.split(",") if slug]

    def _finish(self, campaign_id: int, report: SendReport) -> None:
        with self.sessions() as session:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None  # campaigns are never deleted
            report.finished = ledger.finish_if_complete(session, campaign)
            if self._pause_reason and not report.finished:
                campaign.status = PAUSED
                campaign.pause_reason = self._pause_reason
                report.paused = True
                report.stopped_reason = self._pause_reason
            elif not report.finished and campaign.status == RUNNING:
                campaign.status = PLANNED  # stopped early: ready to resume
            report.counts = ledger.status_counts(session, campaign_id)
            if not report.finished and not report.paused:
                rows = ledger.open_rows(session, campaign_id, self.worker_id)
                report.leftover = self.waits.leftover(rows)
            session.commit()
        report.variants_rendered = self.variants.rendered
        report.render_seconds = self.variants.render_seconds
        report.elapsed = time.monotonic() - self._started

    def _count_total(self, campaign_id: int, report: SendReport) -> None:
        """Take over the rows of stopped senders (with `take_over`), then count the rows this
        run can take: open ones, less those other senders still hold."""
        with self.sessions() as session:
            rows, _taken = self.waits.look(session, campaign_id)
            counts = ledger.status_counts(session, campaign_id)
        report.total = sum(counts.get(s, 0) for s in ledger.OPEN_STATUSES) - rows.held_rows

    def _wait_for_open_rows(self, campaign_id: int, report: SendReport) -> bool:
        """Sleep until a retry or lease is due, saying what for and until when; False when
        nothing is left to wait for, or the run does not wait (`--no-wait`, workers)."""
        with self.sessions() as session:
            due = ledger.next_due(session, campaign_id)
            if due is None:
                return False
            rows, taken = self.waits.look(session, campaign_id)
        if taken:
            return True  # claim them now
        if self.siblings and not rows.retries and {h.worker_id for h in rows.held} <= self.siblings:
            return False  # what is left is held by another process of this send: it ends it
        if not self.wait_for_retries:
            return False
        self.waits.announce(rows)
        delay = max(0.0, (due - utcnow()).total_seconds())
        started = time.monotonic()
        self._wait(min(delay + 0.05, 5.0))
        report.wait_seconds += time.monotonic() - started
        return True

    # --- one batch ------------------------------------------------------------------------

    def _send_batch(
        self,
        batch: list[ledger.Claimed],
        report: SendReport,
        claim: Callable[[Collection[int]], list[ledger.Claimed]] | None = None,
    ) -> None:
        """Send `batch`, and the batches `claim` gives while it is sent, until it gives none."""
        pending = deque(batch)
        held = {row.delivery_id for row in batch}  # claimed, and no result back yet
        outstanding = 0
        unsent: list[int] = []  # claimed, handed out, but not attempted (stop or quota)
        results: list[ledger.Result] = []
        last = time.monotonic()
        # Work queued ahead of the connections: enough that a sending thread never waits for
        # this thread to wake up (each such wait cost a connection a message's time).
        window = 2 * self.connections
        try:
            while pending or outstanding:
                # Keep every connection busy, with queued work, until told to stop.
                while (
                    pending
                    and outstanding < window
                    and not self.stopping
                    and not self._pause_reason
                ):
                    self._work.put(pending.popleft())
                    outstanding += 1
                if (
                    claim is not None
                    and len(pending) < window
                    and not self.stopping
                    and not self._pause_reason
                ):
                    # Claim the next batch while this one's last rows are sent, so the
                    # connections do not stand idle between batches. The rows still held
                    # are left out (a short lease may have run out), and the results not yet
                    # written go first, so no row of ours can be claimed a second time.
                    self._record(results)
                    results = []
                    last = time.monotonic()
                    more = claim(held)
                    if more:
                        pending.extend(more)
                        held.update(row.delivery_id for row in more)
                        continue
                    claim = None
                if not outstanding:
                    break
                row, result, pool, durable = self._results.get()
                outstanding -= 1
                if result is None:
                    unsent.append(row.delivery_id)  # still held: released at the end
                    continue
                held.discard(row.delivery_id)
                if not durable:
                    results.append(result)
                self._account(report, result, pool)
                # Sent rows were committed one by one (a crash repeats at most one per
                # connection); the rest (retries, failures, skips) go in small batches.
                if len(results) >= self.commit_every or time.monotonic() - last >= 0.25:
                    self._record(results)
                    results = []
                    last = time.monotonic()
        finally:
            # Also on Ctrl-C: wait for the messages in flight, record what was sent, and give
            # rows never attempted back to the queue at once instead of after their lease.
            while outstanding:
                row, result, _pool, durable = self._results.get()
                outstanding -= 1
                if result is None:
                    unsent.append(row.delivery_id)
                elif not durable:
                    results.append(result)
            self._record(results)
            unsent += [row.delivery_id for row in pending]
            if unsent:
                with self.sessions() as session:
                    ledger.release(session, self.worker_id, unsent)
                    session.commit()

    def _account(self, report: SendReport, result: ledger.Result, pool: Pool) -> None:
        tally(report, result)
        if result.status in (SENT, SKIPPED):
            self._consecutive_errors = 0
        elif result.throttled:
            report.throttled += 1
            elapsed = max(time.monotonic() - self._started, 1e-3)
            assert pool.limiter is not None  # only the server that said so slows down
            pool.limiter.throttled(observed_rate=report.sent / elapsed / len(self.pools))
        else:
            self._consecutive_errors += 1
            limit = self.settings.delivery.pause_after_errors
            if limit and self._consecutive_errors >= limit and not self._pause_reason:
                self._pause_reason = (
                    f"{self._consecutive_errors} consecutive errors, the last: {result.error}"
                )
        if self.on_progress and result.status != RETRY:
            # A retry is not progress: the row comes back later, and counts then.
            self.on_progress(report, 1)

    def _record(self, results: list[ledger.Result]) -> None:
        if not results:
            return
        with self.sessions() as session:
            ledger.record_results(session, self.worker_id, results)
            for result in results:
                if result.bounce is not None:
                    record_send_bounce(session, self.settings, result.bounce)
            session.commit()
