"""The `newsletter` command. Each sub-module registers its commands on `main`."""

from __future__ import annotations

from newsletter.cli import db_commands as _db_commands  # noqa: F401  (registers commands)
from newsletter.cli.app import App
from newsletter.cli.app import main

__all__ = ["App", "main"]
