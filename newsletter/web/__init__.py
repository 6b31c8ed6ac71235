"""The web app: subscribe, confirm, preferences, one-click unsubscribe, admin and JSON API."""

from __future__ import annotations

import os

from fastapi import FastAPI

from newsletter.config import load_settings
from newsletter.web.app import create_app

__all__ = ["WORKERS_ENV", "app_from_environment", "create_app"]

# How many processes `newsletter serve --workers N` runs: each shares out the rate limits.
WORKERS_ENV = "NEWSLETTER_SERVE_WORKERS"


def app_from_environment() -> FastAPI:
    """The app for the configuration in `$NEWSLETTER_CONFIG` (else ./config.toml).

    The factory `newsletter serve` hands to uvicorn (`uvicorn --factory
    newsletter.web:app_from_environment` does the same by hand).
    """
    workers = os.environ.get(WORKERS_ENV, "1")
    return create_app(load_settings(), workers=int(workers) if workers.isdigit() else 1)
