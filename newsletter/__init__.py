"""newsletter: a self-hosted pipeline for a monthly research-digest email newsletter."""

from __future__ import annotations

__version__ = "0.1.0"
