"""The campaign runner: plan the ledger, then claim batches, send, and record each result.

Rendering costs O(variants): each variant is rendered and pre-serialized once per run; per
subscriber only links, tokens and names are filled in (see `mime.MessageSkeleton`).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import Engine

from newsletter import ledger
from newsletter.config import Settings
from newsletter.content import Issue
from newsletter.db import session_factory
from newsletter.errors import PermanentFailure
from newsletter.errors import SendError
from newsletter.errors import TemporaryFailure
from newsletter.errors import TransportError
from newsletter.mime import MessageSkeleton
from newsletter.mime import Sender
from newsletter.models import ACTIVE
from newsletter.models import DONE
from newsletter.models import FAILED
from newsletter.models import PLANNED
from newsletter.models import QUEUED
from newsletter.models import RETRY
from newsletter.models import RUNNING
from newsletter.models import SENT
from newsletter.models import SKIPPED
from newsletter.models import utcnow
from newsletter.personalize import Recipient
from newsletter.personalize import VariantKey
from newsletter.personalize import choose_variant
from newsletter.personalize import variant_summaries
from newsletter.render import Renderer
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer
from newsletter.transports import Transport

NO_MATCH = "none of their topics is in this issue"


@dataclass
class PlanReport:
    """What planning found: new rows by variant, skips, and what was already planned."""

    month: str
    audience: int = 0
    new_rows: int = 0
    skipped_no_match: int = 0
    variants: Counter = field(default_factory=Counter)
    existing: dict[str, int] = field(default_factory=dict)

    @property
    def to_send(self) -> int:
        """Rows that a run would still try to send (new and already open)."""
        open_rows = sum(self.existing.get(s, 0) for s in ledger.OPEN_STATUSES)
        return self.new_rows - self.skipped_no_match + open_rows


@dataclass
class SendReport:
    """What one run did."""

    month: str
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    variants_rendered: int = 0
    elapsed: float = 0.0
    finished: bool = False
    counts: dict[str, int] = field(default_factory=dict)


def default_lists(settings: Settings, lists: Sequence[str] | None) -> list[str]:
    """The lists to send to: those given, else the default list; unknown ones are an error."""
    known = {spec.slug for spec in settings.list_specs()}
    chosen = list(lists) if lists else [settings.delivery.default_list]
    unknown = [slug for slug in chosen if slug not in known]
    if unknown:
        raise SendError(f"unknown list {unknown[0]!r} (configured: {', '.join(sorted(known))})")
    return chosen


def plan_campaign(
    engine: Engine,
    settings: Settings,
    issue: Issue,
    lists: Sequence[str] | None = None,
    *,
    dry_run: bool = False,
    chunk: int = 1000,
) -> PlanReport:
    """Create one ledger row per audience member not yet planned (idempotent).

    Each subscriber's variant is fixed now. Subscribers none of whose topics is in the issue
    get a `skipped` row (or the full issue with `on_no_match = "full"`). With `dry_run`,
    nothing is written. Rows are inserted chunk by chunk, so memory stays flat.
    """
    chosen_lists = default_lists(settings, lists)
    report = PlanReport(issue.month)
    on_no_match = settings.delivery.on_no_match
    with session_factory(engine)() as session:
        campaign = ledger.find_campaign(session, issue.month)
        if campaign is None and not dry_run:
            campaign = ledger.get_or_create_campaign(
                session, issue.month, issue.subject, chosen_lists
            )
            session.commit()
        campaign_id = campaign.id if campaign else None
        if campaign_id is not None:
            report.existing = ledger.status_counts(session, campaign_id)
        pending: list[dict] = []
        for member in ledger.iter_audience(
            session, chosen_lists, campaign_id=campaign_id, chunk=chunk
        ):
            report.audience += 1
            key = choose_variant(issue, member.topics, on_no_match)
            row = {
                "campaign_id": campaign_id,
                "subscriber_id": member.id,
                "email": member.email,
                "variant": key.encode() if key else "",
                "status": QUEUED if key else SKIPPED,
                "last_error": "" if key else NO_MATCH,
            }
            if key:
                report.variants[key.encode()] += 1
            else:
                report.skipped_no_match += 1
            report.new_rows += 1
            pending.append(row)
            if len(pending) >= chunk and not dry_run:
                _flush(session, pending)
        if not dry_run:
            _flush(session, pending)
    return report


def _flush(session, rows: list[dict]) -> None:
    ledger.insert_deliveries(session.connection(), rows)
    session.commit()
    rows.clear()


def worker_name() -> str:
    """host:pid, stored on claimed rows."""
    return f"{socket.gethostname()}:{os.getpid()}"


class VariantCache:
    """Renders each variant once per run and keeps its message skeleton."""

    def __init__(self, settings: Settings, issue: Issue, sender: Sender, date: dt.datetime):
        self.renderer = Renderer(settings)
        self.issue = issue
        self.sender = sender
        self.date = date
        self._skeletons: dict[str, tuple[MessageSkeleton, tuple]] = {}

    def get(self, encoded: str) -> tuple[MessageSkeleton, tuple]:
        """(skeleton, summaries) for an encoded variant key; KeyError if content changed."""
        cached = self._skeletons.get(encoded)
        if cached is None:
            key = VariantKey.decode(encoded)
            summaries = variant_summaries(self.issue, key)
            rendered = self.renderer.render(
                self.issue, summaries, personal=key.personal, key=encoded
            )
            cached = (MessageSkeleton(self.sender, rendered, self.date), summaries)
            self._skeletons[encoded] = cached
        return cached

    @property
    def rendered(self) -> int:
        return len(self._skeletons)


ProgressCallback = Callable[[SendReport, int], None]


class CampaignRunner:
    """Sends the open rows of one campaign through a transport, recording every result."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        issue: Issue,
        transport: Transport,
        *,
        worker_id: str | None = None,
        on_progress: ProgressCallback | None = None,
        wait_for_retries: bool = True,
        stop: threading.Event | None = None,
        commit_every: int = 50,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.issue = issue
        self.transport = transport
        self.worker_id = worker_id or worker_name()
        self.on_progress = on_progress
        self.wait_for_retries = wait_for_retries
        self.stop = stop or threading.Event()
        self.commit_every = commit_every
        self.signer = Signer(settings.secret_key())
        self.sender = Sender.from_settings(settings)
        self.variants = VariantCache(settings, issue, self.sender, utcnow())
        self.sessions = session_factory(engine)

    def run(self) -> SendReport:
        """Send until nothing is left (or `stop` is set); returns what happened."""
        report = SendReport(self.issue.month)
        started = time.monotonic()
        delivery = self.settings.delivery
        lease = dt.timedelta(seconds=delivery.lease_seconds)
        with self.sessions() as session:
            campaign = ledger.find_campaign(session, self.issue.month)
            if campaign is None:
                raise SendError(f"{self.issue.month} has not been planned")
            campaign.status = RUNNING
            campaign.started_at = campaign.started_at or utcnow()
            session.commit()
            campaign_id = campaign.id
            lists = [slug for slug in campaign.lists.split(",") if slug]
        self.transport.open()
        try:
            while not self.stop.is_set():
                with self.sessions() as session:
                    batch = ledger.claim_batch(
                        session, campaign_id, self.worker_id, delivery.batch_size, lease, lists
                    )
                    session.commit()
                if not batch:
                    if not self._wait_for_open_rows(campaign_id):
                        break
                    continue
                self._send_batch(batch, report)
        finally:
            self.transport.close()
            with self.sessions() as session:
                campaign = ledger.find_campaign(session, self.issue.month)
                report.finished = ledger.finish_if_complete(session, campaign)
                if not report.finished and campaign.status == RUNNING:
                    campaign.status = PLANNED  # stopped early: ready to resume
                report.counts = ledger.status_counts(session, campaign_id)
                session.commit()
            report.variants_rendered = self.variants.rendered
            report.elapsed = time.monotonic() - started
        return report

    def _wait_for_open_rows(self, campaign_id: int) -> bool:
        """Sleep until a retry or lease is due; False when nothing is left to wait for."""
        with self.sessions() as session:
            due = ledger.next_due(session, campaign_id)
        if due is None or not self.wait_for_retries:
            return False
        delay = max(0.0, (due - utcnow()).total_seconds())
        self.stop.wait(min(delay + 0.05, 5.0))
        return True

    def _send_batch(self, batch: list[ledger.Claimed], report: SendReport) -> None:
        results: list[ledger.Result] = []
        done = 0
        try:
            for row in batch:
                if self.stop.is_set():
                    break
                result = self._send_one(row)
                results.append(result)
                done += 1
                _tally(report, result)
                if self.on_progress:
                    self.on_progress(report, 1)
                if len(results) >= self.commit_every:
                    self._record(results)
                    results = []
        finally:
            # Also on an exception (Ctrl-C): what was sent is recorded as sent, and rows never
            # attempted go back to the queue at once instead of waiting for their lease.
            self._record(results)
            untouched = [row.delivery_id for row in batch[done:]]
            if untouched:
                with self.sessions() as session:
                    ledger.release(session, self.worker_id, untouched)
                    session.commit()

    def _record(self, results: list[ledger.Result]) -> None:
        if not results:
            return
        with self.sessions() as session:
            ledger.record_results(session, self.worker_id, results)
            session.commit()

    def _send_one(self, row: ledger.Claimed) -> ledger.Result:
        if row.status != ACTIVE or not row.on_list:
            if row.status is None:
                why = "subscriber was deleted"
            elif row.status != ACTIVE:
                why = f"subscriber is {row.status}"
            else:
                why = "subscriber left the list"
            return ledger.Result(row.delivery_id, SKIPPED, error=why)
        try:
            skeleton, summaries = self.variants.get(row.variant)
        except KeyError:
            error = f"variant {row.variant!r} no longer matches the content of {self.issue.month}"
            return ledger.Result(row.delivery_id, FAILED, error=error)
        assert row.subscriber_id is not None
        recipient = Recipient(
            email=row.email,
            name=row.name,
            topics=row.topics,
            unsubscribe_token=self.signer.make(UNSUBSCRIBE, row.subscriber_id, row.email),
            preferences_token=self.signer.make(PREFERENCES, row.subscriber_id, row.email),
        )
        message, _mid = skeleton.build(recipient, self.issue.month, row.subscriber_id, summaries)
        envelope_from = self.settings.delivery.envelope_from or self.sender.from_email
        try:
            reply = self.transport.send(envelope_from, row.email, message)
        except PermanentFailure as error:
            return ledger.Result(row.delivery_id, FAILED, reply=reply_text(error), error=str(error))
        except TemporaryFailure as error:
            return self._retry_or_fail(row, error)
        return ledger.Result(row.delivery_id, SENT, reply=reply, sent_at=utcnow())

    def _retry_or_fail(self, row: ledger.Claimed, error: TemporaryFailure) -> ledger.Result:
        delivery = self.settings.delivery
        if row.attempts >= delivery.max_attempts:
            message = f"gave up after {row.attempts} attempts: {error}"
            return ledger.Result(row.delivery_id, FAILED, reply=reply_text(error), error=message)
        # Exponential backoff with jitter, so retries of many rows do not arrive together.
        delay = delivery.retry_base_seconds * (2 ** (row.attempts - 1)) * random.uniform(0.8, 1.2)
        due = utcnow() + dt.timedelta(seconds=delay)
        return ledger.Result(
            row.delivery_id, RETRY, reply=reply_text(error), error=str(error), next_attempt_at=due
        )


def reply_text(error: TransportError) -> str:
    """The server's reply with its code, e.g. '550 5.1.1 mailbox unavailable'."""
    reply = error.reply or ""
    if error.code and not reply.startswith(str(error.code)):
        return f"{error.code} {reply}".strip()
    return reply


def _tally(report: SendReport, result: ledger.Result) -> None:
    if result.status == SENT:
        report.sent += 1
    elif result.status == FAILED:
        report.failed += 1
    elif result.status == SKIPPED:
        report.skipped += 1
    elif result.status == RETRY:
        report.retried += 1


def send_issue(
    engine: Engine,
    settings: Settings,
    issue: Issue,
    transport: Transport,
    lists: Sequence[str] | None = None,
    **runner_options,
) -> tuple[PlanReport, SendReport]:
    """Plan (idempotently) and send an issue: what `newsletter send --yes` does."""
    plan = plan_campaign(engine, settings, issue, lists)
    report = CampaignRunner(engine, settings, issue, transport, **runner_options).run()
    return plan, report


__all__ = ["DONE", "CampaignRunner", "PlanReport", "SendReport", "plan_campaign", "send_issue"]
