"""aggregate link clicks and issue responses

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-16 09:00:00

`link_clicks`: with `[tracking] clicks = true`, one row per (campaign, variant, summary, link)
counting the clicks through the signed redirect `/r/{token}`. No reader, address, IP address or
user agent is stored: the redirect's token names the issue, variant and link only.
`link_key` is a sha256 of (variant, summary, url), so the unique key stays short.
`issue_responses`: one row per unsubscribe or dropped topic that came through a digest's
links (the digest's month is in the link's token), naming no reader.
Downgrading drops both tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_clicks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("link_key", sa.String(length=64), nullable=False),
        sa.Column("variant", sa.String(length=1000), nullable=False),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_link_clicks_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_clicks")),
        sa.UniqueConstraint("campaign_id", "link_key", name="uq_link_clicks_campaign_link"),
    )

    op.create_table(
        "issue_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("topic", sa.String(length=120), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('unsubscribe', 'drop-topic')", name=op.f("ck_issue_responses_kind")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_issue_responses_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_responses")),
    )
    op.create_index(op.f("ix_issue_responses_campaign_id"), "issue_responses", ["campaign_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_issue_responses_campaign_id"), table_name="issue_responses")
    op.drop_table("issue_responses")
    op.drop_table("link_clicks")
