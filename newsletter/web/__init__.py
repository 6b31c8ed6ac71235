"""The web app: subscribe, confirm, preferences, one-click unsubscribe, admin and JSON API."""

from __future__ import annotations

from fastapi import FastAPI

from newsletter.config import load_settings
from newsletter.web.app import create_app

__all__ = ["app_from_environment", "create_app"]


def app_from_environment() -> FastAPI:
    """The app for the configuration in `$NEWSLETTER_CONFIG` (else ./config.toml).

    The factory `newsletter serve` hands to uvicorn (`uvicorn --factory
    newsletter.web:app_from_environment` does the same by hand).
    """
    return create_app(load_settings())
