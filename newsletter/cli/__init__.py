"""The `newsletter` command. Each sub-module registers its commands on `main`."""

from __future__ import annotations

from newsletter.cli import admin_commands as _admin_commands  # noqa: F401
from newsletter.cli import archive_commands as _archive_commands  # noqa: F401
from newsletter.cli import bounce_commands as _bounce_commands  # noqa: F401
from newsletter.cli import db_commands as _db_commands  # noqa: F401  (registers commands)
from newsletter.cli import demo_command as _demo_command  # noqa: F401
from newsletter.cli import dkim_commands as _dkim_commands  # noqa: F401
from newsletter.cli import import_commands as _import_commands  # noqa: F401
from newsletter.cli import issue_commands as _issue_commands  # noqa: F401
from newsletter.cli import schedule_commands as _schedule_commands  # noqa: F401
from newsletter.cli import send_commands as _send_commands  # noqa: F401
from newsletter.cli import subscriber_commands as _subscriber_commands  # noqa: F401
from newsletter.cli import summary_commands as _summary_commands  # noqa: F401
from newsletter.cli import web_commands as _web_commands  # noqa: F401
from newsletter.cli import worker_commands as _worker_commands  # noqa: F401
from newsletter.cli.app import App
from newsletter.cli.app import main

__all__ = ["App", "main"]
