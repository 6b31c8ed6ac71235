"""list descriptions and unsubscribe reasons

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-16 09:00:00

`lists.description`: one sentence the preference center shows under each list (from
`[[lists]] description` in the config). `unsubscribe_reasons`: the optional "why" a reader gives
when unsubscribing: the reason, the month of the latest campaign and the date, and no
subscriber id or address, so the counts the editor sees cannot be traced to anyone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lists") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "unsubscribe_reasons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("campaign_month", sa.String(length=7), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.CheckConstraint(
            "reason IN ('too_frequent', 'not_relevant', 'too_long', 'other')",
            name=op.f("ck_unsubscribe_reasons_reason"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unsubscribe_reasons")),
    )
    op.create_index(op.f("ix_unsubscribe_reasons_on_date"), "unsubscribe_reasons", ["on_date"])


def downgrade() -> None:
    op.drop_index(op.f("ix_unsubscribe_reasons_on_date"), table_name="unsubscribe_reasons")
    op.drop_table("unsubscribe_reasons")
    with op.batch_alter_table("lists") as batch:
        batch.drop_column("description")
