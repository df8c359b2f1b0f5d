"""The console's logins, so that logging out ends a session wherever its cookie went.

Revision ID: 0004_console_sessions
Revises: 0003_console
Create Date: 2026-12-04

Written out in full so this revision keeps creating exactly this schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_console_sessions"
down_revision: str | None = "0003_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("started_at", tz, nullable=False),
        sa.Column("ended_at", tz, nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_console_sessions"),
    )


def downgrade() -> None:
    op.drop_table("console_sessions")
