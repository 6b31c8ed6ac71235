"""scheduler: the single-scheduler lock row

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 09:00:00

APScheduler creates and owns its job table (`scheduler_jobs`) itself on the scheduler's first
start; downgrading drops it too, so `db downgrade base` leaves nothing behind.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_lock",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_lock")),
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS scheduler_jobs")
    op.drop_table("scheduler_lock")
