"""pause windows, one "why" per unsubscribe, subscriber ids never reused

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-17 09:00:00

`subscriber_pauses`: one row per pause a reader took (when it started, when it ended: the
planned end, or the moment they resumed early). `paused_until` only says whether they are
paused now and is cleared by `resume`; the windows stay, so a quarterly round-up does not fill
in a month whose plan fell inside a pause (they chose not to get it).
`subscribers.unsubscribe_reason_given_at`: set when the optional "why" after unsubscribing is
answered, so one unsubscribe gives one answer; cleared when they subscribe again.

On SQLite the `subscribers` table is rebuilt with AUTOINCREMENT: without it SQLite gives the
highest id again after that row is deleted, so a link made for a forgotten subscriber could
name whoever subscribed next. (PostgreSQL's sequence never hands an id out twice.) The rebuild
copies every row and keeps the ids (AUTOINCREMENT's counter starts at the highest one: an id
deleted above it before this migration is not known; the address hash in every link still
tells another address apart); `migrations/env.py` turns foreign keys off for it, so the
copy-and-drop does not cascade into the tables that refer to subscribers.
Downgrading drops the table and the column; the rebuilt table keeps AUTOINCREMENT (harmless).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "subscribers",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch:
        batch.add_column(sa.Column("unsubscribe_reason_given_at", sa.DateTime(), nullable=True))
    op.create_table(
        "subscriber_pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriber_pauses_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriber_pauses")),
    )
    op.create_index(
        op.f("ix_subscriber_pauses_subscriber_id"), "subscriber_pauses", ["subscriber_id"]
    )
    # Pauses running now: their window starts at the migration (when they began is unknown).
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # the columns hold naive UTC
    op.execute(
        sa.text(
            "INSERT INTO subscriber_pauses (subscriber_id, started_at, ended_at) "
            "SELECT id, :now, paused_until FROM subscribers "
            "WHERE paused_until IS NOT NULL AND paused_until > :now"
        ).bindparams(now=now)
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_subscriber_pauses_subscriber_id"), table_name="subscriber_pauses")
    op.drop_table("subscriber_pauses")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("unsubscribe_reason_given_at")
