"""Pass install status reported by Airship Wallet callbacks: pass_installs.

Revision ID: 0003_pass_installs
Revises: 0002
Create Date: 2026-12-03

Written out in full so this revision keeps creating exactly this schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_pass_installs"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "pass_installs",
        sa.Column("project_id", sa.String(), nullable=False),
        sa.Column("template_id", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("pass_id", sa.String(), nullable=True),
        sa.Column("platform", sa.String(20), nullable=True),
        sa.Column("changed_at", tz, nullable=False),
        sa.Column("received_at", tz, nullable=False),
        sa.PrimaryKeyConstraint(
            "project_id", "template_id", "external_id", name="pk_pass_installs"
        ),
    )
    op.create_index(
        "ix_pass_installs_project_id_external_id",
        "pass_installs",
        ["project_id", "external_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_pass_installs_project_id_external_id", table_name="pass_installs")
    op.drop_table("pass_installs")
