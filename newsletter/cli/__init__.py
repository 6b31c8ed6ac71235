"""The `newsletter` command. Each sub-module registers its commands on `main` when one of its
commands runs (`newsletter.cli.app.COMMANDS` names the module of each)."""

from __future__ import annotations

from newsletter.cli.app import App
from newsletter.cli.app import main

__all__ = ["App", "main"]
