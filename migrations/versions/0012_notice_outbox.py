"""notice outbox

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-01 20:00:00

`notice_outbox`: the transactional emails (confirmations, fresh links, welcome, privacy and
address-change links) waiting to be handled or sent by a background thread of `newsletter
serve` over one kept SMTP connection. A row is committed before the page that asked for it is
answered, so a crash never loses one; a sent row is deleted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.CheckConstraint("status IN ('queued', 'failed')", name=op.f("ck_notice_outbox_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_outbox")),
    )
    op.create_index(op.f("ix_notice_outbox_not_before"), "notice_outbox", ["not_before"])


def downgrade() -> None:
    op.drop_index(op.f("ix_notice_outbox_not_before"), table_name="notice_outbox")
    op.drop_table("notice_outbox")
