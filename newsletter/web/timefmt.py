"""Dates on the admin pages: in the configured time zone (`[schedule] timezone`), for people."""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

from newsletter.config import Settings


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone_of(settings: Settings) -> ZoneInfo:
    """The zone the admin pages show times in: the scheduler's, so "09:00" means one thing."""
    return _zone(settings.schedule.timezone)


def human(value: dt.datetime | str | None, zone: ZoneInfo, *, time: bool = True) -> str:
    """ "3 Jan 2026, 14:05 EST" (or "3 Jan 2026"); "—" for no date. Naive values are UTC
    (how the database stores them); ISO strings are parsed first."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    local = value.astimezone(zone)
    day = f"{local.day} {local:%b %Y}"
    return f"{day}, {local:%H:%M} {local.tzname()}" if time else day
