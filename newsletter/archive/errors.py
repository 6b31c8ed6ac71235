"""The archive's error."""

from __future__ import annotations

from newsletter.errors import NewsletterError


class ArchiveError(NewsletterError):
    """The site could not be built or written; the previous site is left as it was."""
