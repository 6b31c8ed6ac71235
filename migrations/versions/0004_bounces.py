"""bounces: one row per bounced address per DSN (or per 5xx reply at send time)

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-26 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bounces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=4), nullable=False),
        sa.Column("status_code", sa.String(length=16), nullable=False),
        sa.Column("diagnostic", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=True),
        sa.Column("message_id", sa.String(length=500), nullable=False),
        sa.Column("original_message_id", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.CheckConstraint("kind IN ('hard', 'soft')", name=op.f("ck_bounces_kind")),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_bounces_subscriber_id_subscribers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounces")),
        sa.UniqueConstraint("message_id", "email", name="uq_bounces_message_email"),
    )
    with op.batch_alter_table("bounces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bounces_email"), ["email"], unique=False)
        batch_op.create_index(
            "ix_bounces_subscriber", ["subscriber_id", "received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("bounces", schema=None) as batch_op:
        batch_op.drop_index("ix_bounces_subscriber")
        batch_op.drop_index(batch_op.f("ix_bounces_email"))
    op.drop_table("bounces")
