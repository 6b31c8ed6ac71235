"""The web app: subscribe, confirm, preferences, one-click unsubscribe, admin and JSON API."""

from __future__ import annotations

from newsletter.web.app import create_app

__all__ = ["create_app"]
