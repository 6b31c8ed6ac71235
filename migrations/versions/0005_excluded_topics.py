"""excluded topics: "every topic except these" for subscribers who stopped a topic

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00

An all-topics subscriber who follows a "stop sending me <topic>" link keeps `all_topics` and
gets a row here per stopped topic, so topics added to the taxonomy later still reach them.
Nothing is backfilled: before this revision such a subscriber was turned into a list of that
day's other topics, which cannot be told apart from a list chosen by hand. Downgrading drops the
rows, so those subscribers receive every topic again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriber_excluded_topics",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriber_excluded_topics_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "subscriber_id", "topic", name=op.f("pk_subscriber_excluded_topics")
        ),
    )


def downgrade() -> None:
    op.drop_table("subscriber_excluded_topics")
