"""Aggregate click counts (`[tracking] clicks`): one counter per (campaign, variant, summary,
link), bumped by the signed redirect. Nothing about the reader is ever stored: not who, not
their address, IP address or user agent, not when a given reader clicked."""

from __future__ import annotations

import dataclasses
import hashlib

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.store.engine import rows_affected
from newsletter.store.models import Campaign
from newsletter.store.models import LinkClick
from newsletter.store.models import utcnow
from newsletter.tokens import ClickTarget


def link_key(target: ClickTarget) -> str:
    """The short unique key of a link of a variant (its url may be long)."""
    return hashlib.sha256(f"{target.variant}\n{target.summary}\n{target.url}".encode()).hexdigest()


def count_click(session: Session, target: ClickTarget) -> bool:
    """Add one click to `target`'s counter (the caller commits); False when its month was
    never sent (a stale or foreign link: nothing is counted)."""
    campaign_id = session.scalar(select(Campaign.id).where(Campaign.month == target.month))
    if campaign_id is None:
        return False
    key = link_key(target)
    now = utcnow()
    bump = (
        update(LinkClick)
        .where(LinkClick.campaign_id == campaign_id, LinkClick.link_key == key)
        .values(clicks=LinkClick.clicks + 1, last_at=now)
        .execution_options(synchronize_session=False)
    )
    if rows_affected(session.execute(bump)):
        return True
    try:
        with session.begin_nested():  # a concurrent first click may insert the row first
            session.add(
                LinkClick(
                    campaign_id=campaign_id,
                    link_key=key,
                    variant=target.variant[:1000],
                    summary=target.summary[:200],
                    url=target.url,
                    clicks=1,
                    first_at=now,
                    last_at=now,
                )
            )
    except IntegrityError:
        session.execute(bump)
    return True


@dataclasses.dataclass(frozen=True)
class LinkClicks:
    """Clicks on one link, all variants together."""

    summary: str
    url: str
    clicks: int


def clicks_for(session: Session, month: str) -> list[LinkClicks]:
    """Clicks per link of `month`'s issue (every variant summed), most clicked first."""
    rows = session.execute(
        select(LinkClick.summary, LinkClick.url, func.sum(LinkClick.clicks))
        .join(Campaign, Campaign.id == LinkClick.campaign_id)
        .where(Campaign.month == month)
        .group_by(LinkClick.summary, LinkClick.url)
        .order_by(func.sum(LinkClick.clicks).desc(), LinkClick.summary, LinkClick.url)
    )
    return [LinkClicks(str(s), str(u), int(n)) for s, u, n in rows]


def clicks_per_summary(links: list[LinkClicks]) -> dict[str, int]:
    """The links' clicks summed per summary slug ("" for links outside any summary)."""
    totals: dict[str, int] = {}
    for link in links:
        totals[link.summary] = totals.get(link.summary, 0) + link.clicks
    return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))
