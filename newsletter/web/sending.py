"""What the admin pages and the API share: issue overviews, previews, test sends, real sends.

A real send runs in a background thread through the same ledger as `newsletter send`
(`sending.campaign.send_month`); progress is read back from the ledger, so
a page refresh (or another process) always sees where it stands. One send per month at a time
in this process; the ledger's leases keep a second process from sending a row twice.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from collections.abc import Sequence

from sqlalchemy import Engine

from newsletter.config import Settings
from newsletter.content.choice import TopicChoice
from newsletter.content.model import Issue
from newsletter.content.reader import list_months
from newsletter.content.roundup import load_campaign_issue
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import ContentError
from newsletter.errors import NewsletterError
from newsletter.errors import SendError
from newsletter.message.preview import preview_parts
from newsletter.personalize import make_recipient
from newsletter.render import checks
from newsletter.render.size import encoded_html_size
from newsletter.sending.campaign import preview_plan
from newsletter.sending.campaign import send_month
from newsletter.sending.plan import PlanReport
from newsletter.sending.plan import default_lists
from newsletter.sending.single import send_tests
from newsletter.store import ledger
from newsletter.store.engine import session_factory
from newsletter.store.models import Subscriber
from newsletter.transport.base import Transport

log = logging.getLogger("newsletter.web")


@dataclasses.dataclass
class IssueOverview:
    """One month in content/: its summaries (or the content error) and its sent state."""

    month: str
    issue: Issue | None
    error: str = ""
    campaign_status: str = "not sent"
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    running: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return sum(n for status, n in self.counts.items() if status not in ledger.OPEN_STATUSES)


@dataclasses.dataclass
class Preview:
    """An issue as one recipient gets it."""

    month: str
    variant: str
    html: str
    text: str
    size: int
    size_level: str
    size_message: str
    recipient: str


@dataclasses.dataclass
class SendState:
    """The last background send of a month started from this process."""

    month: str
    thread: threading.Thread
    error: str = ""
    finished: bool = False
    archive: str = ""  # the archive rebuild after a completed send, in one line


class Sending:
    """Issue overviews, previews, test sends and background sends for one app."""

    def __init__(
        self,
        settings: Settings,
        taxonomy: Taxonomy,
        engine: Engine,
        transport_factory: Callable[[], Transport],
        *,
        custom_transport: bool = False,
    ) -> None:
        self.settings = settings
        self.taxonomy = taxonomy
        self.engine = engine
        self.transport_factory = transport_factory
        # With the configured transport, real sends use every configured SMTP server's pool.
        self.custom_transport = custom_transport
        self._lock = threading.Lock()
        self._sends: dict[str, SendState] = {}
        # Set when the app shuts down: running sends drain (messages in flight finish, the
        # ledger is written) instead of dying with the process.
        self.stopping = threading.Event()

    # --- reading -------------------------------------------------------------------------

    def months(self) -> list[str]:
        try:
            return list(reversed(list_months(self.settings.content.dir)))
        except ContentError:
            return []

    def load(self, month: str) -> Issue:
        """The issue of `month`, or the round-up of a quarter ("2026-Q4"); ContentError (a
        NewsletterError) if missing or invalid."""
        settings = self.settings
        return load_campaign_issue(
            settings.content.dir, month, self.taxonomy, settings.newsletter.name
        )

    def overview(self, month: str) -> IssueOverview:
        try:
            item = IssueOverview(month, self.load(month))
        except ContentError as error:
            item = IssueOverview(month, None, error=str(error))
        with session_factory(self.engine)() as session:
            campaign = ledger.find_campaign(session, month)
            if campaign is not None:
                item.campaign_status = campaign.status
                item.counts = ledger.status_counts(session, campaign.id)
        item.running = self.is_running(month)
        return item

    def overviews(self) -> list[IssueOverview]:
        return [self.overview(month) for month in self.months()]

    # --- previews and tests --------------------------------------------------------------

    def preview(
        self,
        issue: Issue,
        topics: frozenset[str] | None,
        subscriber: Subscriber | None = None,
    ) -> Preview:
        """The issue as `subscriber` (their name, topics, links) or as a topic set."""
        if subscriber is not None:
            person = (subscriber.email, subscriber.name, subscriber.topic_choice, subscriber.id)
        else:
            person = ("preview@example.org", "", TopicChoice.of(topics), 0)
        recipient = make_recipient(self.settings, *person)
        parts = preview_parts(self.settings, issue, recipient, person[3])
        html = parts.html
        size = encoded_html_size(html)
        finding = checks.size_finding(size, "this variant")
        return Preview(
            month=issue.month,
            variant=parts.variant,
            html=html,
            text=parts.text,
            size=size,
            size_level=finding.level,
            size_message=finding.message,
            recipient=recipient.email,
        )

    def test_send(
        self, issue: Issue, addresses: Sequence[str], topics: frozenset[str] | None
    ) -> list[str]:
        """Send the issue marked [TEST] to each address, outside the ledger; one line each."""
        return send_tests(self.settings, issue, addresses, topics, self.transport_factory())

    # --- real sends ----------------------------------------------------------------------

    def plan(self, issue: Issue, lists: Sequence[str] | None = None) -> PlanReport:
        """What a send would do now (nothing is written)."""
        return preview_plan(self.engine, self.settings, issue, lists)

    def is_running(self, month: str) -> bool:
        with self._lock:
            state = self._sends.get(month)
            return state is not None and state.thread.is_alive()

    def state(self, month: str) -> SendState | None:
        with self._lock:
            return self._sends.get(month)

    def start(
        self, issue: Issue, lists: Sequence[str] | None = None, actor: str = "admin"
    ) -> SendState:
        """Plan and send `issue` in a background thread; SendError if one is already running.
        `actor` is who the audit log says completed it (the admin's name, or "api")."""
        lists = default_lists(self.settings, lists)
        with self._lock:
            current = self._sends.get(issue.month)
            if current is not None and current.thread.is_alive():
                raise SendError(f"{issue.month} is already being sent")
            state = SendState(issue.month, threading.Thread())
            state.thread = threading.Thread(
                target=self._run,
                args=(issue, list(lists or []) or None, state, actor),
                name=f"send-{issue.month}",
                daemon=True,
            )
            self._sends[issue.month] = state
            state.thread.start()
        return state

    def _run(self, issue: Issue, lists: list[str] | None, state: SendState, actor: str) -> None:
        try:
            factory = self.transport_factory if self.custom_transport else None
            result = send_month(
                self.engine,
                self.settings,
                issue,
                lists=lists,
                transport_factory=factory,
                stop=self.stopping,
                actor=actor,
            )
            assert result.report is not None
            report = result.report
            log.info("sent %s: %s sent, %s failed", issue.month, report.sent, report.failed)
            state.archive = result.archive.summary() if result.archive else ""
        except NewsletterError as error:
            state.error = str(error)
        except Exception as error:  # keep the message for the page; the traceback in the log
            log.exception("the send of %s failed", issue.month)
            state.error = f"{type(error).__name__}: {error}"
        finally:
            state.finished = True

    def shutdown(self, timeout: float = 60.0) -> None:
        """Drain every running send: what is in flight finishes, the rest stays queued."""
        self.stopping.set()
        with self._lock:
            threads = [state.thread for state in self._sends.values()]
        for thread in threads:
            thread.join(timeout)

    def wait(self, month: str, timeout: float | None = None) -> None:
        """Wait for the background send of `month` (tests, shutdown)."""
        state = self.state(month)
        if state is not None:
            state.thread.join(timeout)
