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
from newsletter.personalize import VariantKey
from newsletter.personalize import variant_summaries
from newsletter.render.email import Renderer


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
                        self.issue, summaries, personal=key.personal, key=encoded
                    )
                    cached = (MessageSkeleton(self.sender, rendered, self.date), summaries)
                    self._skeletons[encoded] = cached
                    self.render_seconds += time.perf_counter() - started
        return cached

    @property
    def rendered(self) -> int:
        return len(self._skeletons)
