"""campaign status 'planning'

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 23:10:00

A campaign whose ledger rows are still being written is 'planning': on PostgreSQL a large plan
is written by several connections in parallel, each committing its own part, and the campaign
becomes 'planned' only once every part has committed. Workers and sends leave a 'planning'
campaign alone; the next plan of its month (any path that plans) completes it.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OLD = "status IN ('planned', 'sending', 'paused', 'done')"
NEW = "status IN ('planning', 'planned', 'sending', 'paused', 'done')"


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint("status", type_="check")
        batch.create_check_constraint("status", NEW)


def downgrade() -> None:
    # A campaign caught mid-plan is 'planned' again, as it was before this revision.
    op.execute("UPDATE campaigns SET status = 'planned' WHERE status = 'planning'")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint("status", type_="check")
        batch.create_check_constraint("status", OLD)
