"""several admins, each with their own password; sessions tied to one admin

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-16 09:00:00

`admins`: one row per admin (`newsletter admin add NAME`): a unique name, the password's scrypt
hash, when it was added and when it last logged in. `admin_sessions.admin_name`: whose session a
row is, so removing an admin or changing their password ends their sessions only. The password
of `[web] admin_password_hash` keeps working as the admin named "admin" (no row needed); sessions
open before this migration belong to that admin. Downgrading drops the table and the column
(the single configured password is the only login again).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admins")),
        sa.UniqueConstraint("name", name=op.f("uq_admins_name")),
    )
    with op.batch_alter_table("admin_sessions") as batch:
        batch.add_column(
            sa.Column("admin_name", sa.String(length=64), nullable=False, server_default="admin")
        )


def downgrade() -> None:
    with op.batch_alter_table("admin_sessions") as batch:
        batch.drop_column("admin_name")
    op.drop_table("admins")
