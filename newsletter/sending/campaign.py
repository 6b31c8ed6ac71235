"""The one send path: plan, confirm the lists, run the runner and report. The CLI, the demo, the
web app, the scheduler and the worker all call `send_month`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.sending.plan import PlanReport
from newsletter.sending.plan import plan_campaign
from newsletter.sending.runner import CampaignRunner
from newsletter.sending.runner import SendReport
from newsletter.store import ledger
from newsletter.store.engine import session_factory
from newsletter.store.models import PAUSED
from newsletter.store.models import PLANNED
from newsletter.transport.base import Transport


def resume_campaign(engine: Engine, month: str) -> bool:
    """Clear a pause so the next run continues; True if the campaign was paused."""
    with session_factory(engine)() as session:
        campaign = ledger.find_campaign(session, month)
        if campaign is None or campaign.status != PAUSED:
            return False
        campaign.status = PLANNED
        campaign.pause_reason = ""
        session.commit()
        return True


def send_issue(
    engine: Engine,
    settings: Settings,
    issue: Issue,
    transport: Transport | None = None,
    lists: Sequence[str] | None = None,
    **runner_options,
) -> tuple[PlanReport, SendReport]:
    """Plan (idempotently) and send an issue: what `newsletter send --yes` does."""
    plan = plan_campaign(engine, settings, issue, lists)
    report = CampaignRunner(engine, settings, issue, transport, **runner_options).run()
    return plan, report
