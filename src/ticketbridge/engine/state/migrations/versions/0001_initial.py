"""Initial schema: runs, leases, checkpoints, ledger, dead_letters.

Revision ID: 0001
Revises:
Create Date: 2026-05-01

Written out in full (not ``metadata.create_all``) so this revision keeps creating exactly this
schema whatever ``tables.py`` becomes later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("sync", sa.String(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("started_at", tz, nullable=False),
        sa.Column("finished_at", tz, nullable=True),
        sa.Column("counters", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_sync_id", "runs", ["sync", "id"])

    op.create_table(
        "leases",
        sa.Column("sync", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("acquired_until", tz, nullable=False),
        sa.Column("heartbeat_at", tz, nullable=False),
        sa.PrimaryKeyConstraint("sync", name="pk_leases"),
    )

    op.create_table(
        "checkpoints",
        sa.Column("sync", sa.String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", tz, nullable=False),
        sa.PrimaryKeyConstraint("sync", name="pk_checkpoints"),
    )

    op.create_table(
        "ledger",
        sa.Column("sync", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("hashes", sa.JSON(), nullable=False),
        sa.Column("dest_ids", sa.JSON(), nullable=False),
        sa.Column("last_outcome", sa.String(20), nullable=False),
        sa.Column("status", sa.String(), nullable=True),
        sa.Column("updated_at", tz, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("sync", "key", name="pk_ledger"),
    )

    op.create_table(
        "dead_letters",
        sa.Column("sync", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_seen", tz, nullable=False),
        sa.Column("last_seen", tz, nullable=False),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", tz, nullable=True),
        sa.PrimaryKeyConstraint("sync", "key", name="pk_dead_letters"),
    )
    op.create_index(
        "ix_dead_letters_sync_resolved_at",
        "dead_letters",
        ["sync", "resolved_at", "first_seen"],
    )


def downgrade() -> None:
    op.drop_index("ix_dead_letters_sync_resolved_at", table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_table("ledger")
    op.drop_table("checkpoints")
    op.drop_table("leases")
    op.drop_index("ix_runs_sync_id", table_name="runs")
    op.drop_table("runs")
