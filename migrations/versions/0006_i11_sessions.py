"""admin sessions and login throttling: revocable sessions, attempts counted in the database

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 09:00:00

The admin session cookie used to be the whole session (a copy kept working after logout for up
to 8 h); now it holds a random id whose hash is a row of `admin_sessions`, and logout deletes
the rows. Login attempts are counted in `login_throttle` before the password is checked, so
every `newsletter serve` process (and a restart) sees the same counts. Both tables hold only
short-lived state: downgrading drops them (everyone is logged out, counts start again).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("password_tag", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_admin_sessions")),
    )
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("next_at", sa.DateTime(), nullable=True),
        sa.Column("trusted_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
    op.drop_table("admin_sessions")
