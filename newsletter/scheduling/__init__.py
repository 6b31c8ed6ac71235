"""The scheduler: each month's issue sent on time, one-off sends, one scheduler per database.

- `slots`: pure trigger computation with an explicit clock (next runs, the month rule, catch-up)
- `jobs`: the job bodies (`run_monthly`, `run_send`) and the admin alert
- `lock`: the single-scheduler lock row with a heartbeat
- `service`: APScheduler 3 wiring (SQLAlchemy job store) and the foreground loop

See docs/scheduler.md.
"""

from __future__ import annotations

from newsletter.errors import ScheduleError
from newsletter.errors import SchedulerLockedError
from newsletter.scheduling.jobs import RunOutcome
from newsletter.scheduling.jobs import alert_admin
from newsletter.scheduling.jobs import monthly_job
from newsletter.scheduling.jobs import one_off_job
from newsletter.scheduling.jobs import run_monthly
from newsletter.scheduling.jobs import run_send
from newsletter.scheduling.lock import DatabaseLock
from newsletter.scheduling.service import add_one_off
from newsletter.scheduling.service import install_monthly_job
from newsletter.scheduling.service import job_store
from newsletter.scheduling.service import make_scheduler
from newsletter.scheduling.service import one_offs
from newsletter.scheduling.service import remove_one_off
from newsletter.scheduling.service import run_scheduler
from newsletter.scheduling.slots import MonthlySlot
from newsletter.scheduling.slots import catch_up
from newsletter.scheduling.slots import month_for_run
from newsletter.scheduling.slots import next_monthly_runs

__all__ = [
    "DatabaseLock",
    "MonthlySlot",
    "RunOutcome",
    "ScheduleError",
    "SchedulerLockedError",
    "add_one_off",
    "alert_admin",
    "catch_up",
    "install_monthly_job",
    "job_store",
    "make_scheduler",
    "month_for_run",
    "monthly_job",
    "next_monthly_runs",
    "one_off_job",
    "one_offs",
    "remove_one_off",
    "run_monthly",
    "run_scheduler",
    "run_send",
]
