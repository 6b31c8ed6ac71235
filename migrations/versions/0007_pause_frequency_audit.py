"""pause, frequency and the audit log

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-15 09:00:00

`subscribers.paused_until`: a reader who pauses the digest for 1–6 months stays active; planning
leaves them out until this moment passes, so resuming needs no job. `subscribers.frequency`:
"monthly" (every digest, the default for everyone already subscribed) or "quarterly" (one
round-up per quarter). `audit_events`: who sent, scheduled, imported, edited or forgot what.
Downgrading drops the columns (everyone is monthly and unpaused again) and the log.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("paused_until", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column("frequency", sa.String(length=12), nullable=False, server_default="monthly")
        )
        batch.create_check_constraint("frequency", "frequency IN ('monthly', 'quarterly')")
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])
    op.create_index(op.f("ix_audit_events_action"), "audit_events", ["action"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_events_action"), table_name="audit_events")
    op.drop_index(op.f("ix_audit_events_at"), table_name="audit_events")
    op.drop_table("audit_events")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_constraint("frequency", type_="check")
        batch.drop_column("frequency")
        batch.drop_column("paused_until")
