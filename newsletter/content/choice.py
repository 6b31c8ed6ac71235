"""What a reader receives: every topic, every topic except some, or only chosen topics (pure).

"Every topic" includes topics added to the taxonomy later, and so does "every topic except X":
that is what an all-topics reader becomes when they stop one topic. A summary reaches a reader
when one of its topics is theirs, so a summary about X and Y still reaches a reader who stopped
X but receives Y.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class TopicChoice:
    """`chosen` None: every topic but `excluded`; else only the `chosen` slugs."""

    chosen: frozenset[str] | None = None
    excluded: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.chosen is not None and self.excluded:
            raise ValueError("excluded topics go with every topic, not with chosen ones")

    @classmethod
    def every(cls, excluding: Iterable[str] = ()) -> TopicChoice:
        """Every topic, now and later, except `excluding`."""
        return cls(None, frozenset(excluding))

    @classmethod
    def only(cls, slugs: Iterable[str]) -> TopicChoice:
        """Only these topics."""
        return cls(frozenset(slugs))

    @classmethod
    def of(cls, value: TopicChoice | frozenset[str] | set[str] | None) -> TopicChoice:
        """A choice from the older shorthand: None is every topic, a set only those topics."""
        if isinstance(value, TopicChoice):
            return value
        return cls.every() if value is None else cls.only(value)

    @property
    def all_topics(self) -> bool:
        """Every topic (perhaps except some), including topics added later."""
        return self.chosen is None

    def receives(self, slug: str) -> bool:
        """Whether summaries about this topic reach the reader."""
        if self.chosen is None:
            return slug not in self.excluded
        return slug in self.chosen

    def matching(self, slugs: Iterable[str]) -> tuple[str, ...]:
        """The slugs (in their order) that the reader receives."""
        return tuple(slug for slug in slugs if self.receives(slug))

    def without(self, slug: str) -> TopicChoice:
        """The choice after stopping one topic: every topic but one more, or one chosen less."""
        if self.chosen is None:
            return TopicChoice.every(self.excluded | {slug})
        return TopicChoice.only(self.chosen - {slug})

    def effective(self, known: Iterable[str]) -> frozenset[str]:
        """The topics among `known` (today's taxonomy) that the reader receives."""
        return frozenset(self.matching(known))
