"""Each variant rendered once per run and kept as a message skeleton.

Rendering costs O(variants), not O(subscribers): the cache renders a variant the first time a
row needs it, under a lock, and every later row of that variant only fills its slots.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.message.skeleton import MessageSkeleton
from newsletter.message.skeleton import Sender
from newsletter.personalize import SLOT_RE
from newsletter.personalize import VariantKey
from newsletter.personalize import variant_summaries
from newsletter.render.email import LinkTracker
from newsletter.render.email import Renderer
from newsletter.tokens import ClickTarget
from newsletter.tokens import LinkSigner
from newsletter.tokens import trackable


class VariantCache:
    """Renders each variant once per run (thread-safe) and keeps its message skeleton."""

    def __init__(self, settings: Settings, issue: Issue, sender: Sender, date: dt.datetime):
        self.renderer = Renderer(settings)
        self.issue = issue
        self.sender = sender
        self.date = date
        self._skeletons: dict[str, tuple[MessageSkeleton, tuple]] = {}
        self._lock = threading.Lock()
        self.render_seconds = 0.0  # time spent rendering, for the summary (not wall time)
        # `[tracking] clicks`: the variant's links go through the signed redirect, one token
        # per (issue, variant, summary, link) and none per reader, so rendering stays once
        # per variant.
        self._links = LinkSigner(settings.secret_key()) if settings.tracking.clicks else None
        self._base_url = settings.newsletter.base_url.rstrip("/")

    def tracker(self, variant: str) -> LinkTracker | None:
        """The click redirect for the links of `variant` (None when tracking is off)."""
        links = self._links
        if links is None:
            return None
        month, base = self.issue.month, self._base_url

        def track(url: str, summary: str) -> str:
            if not trackable(url):
                return url
            token = links.make(ClickTarget(month, variant, summary, url))
            if SLOT_RE.search(token):  # would read as a per-reader slot: leave this link as is
                return url
            return f"{base}/r/{token}"

        return track

    def get(self, encoded: str) -> tuple[MessageSkeleton, tuple]:
        """(skeleton, summaries) for an encoded variant key; KeyError if content changed."""
        cached = self._skeletons.get(encoded)
        if cached is None:
            with self._lock:
                cached = self._skeletons.get(encoded)
                if cached is None:
                    started = time.perf_counter()
                    key = VariantKey.decode(encoded)
                    summaries = variant_summaries(self.issue, key)
                    rendered = self.renderer.render(
                        self.issue,
                        summaries,
                        personal=key.personal,
                        key=encoded,
                        track=self.tracker(encoded),
                    )
                    cached = (MessageSkeleton(self.sender, rendered, self.date), summaries)
                    self._skeletons[encoded] = cached
                    self.render_seconds += time.perf_counter() - started
        return cached

    @property
    def rendered(self) -> int:
        return len(self._skeletons)
