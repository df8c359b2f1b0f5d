"""Supplier API reservations: supplier_reservations, supplier_slot_locks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-20

The tables of ``ticketbridge.supplier.reservations`` (Tiqets holds and bookings fulfilled in
ACME), written out in full so this revision keeps creating exactly this schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "supplier_reservations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("environment", sa.String(20), nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("template_id", sa.String(), nullable=False),
        sa.Column("instance_id", sa.String(), nullable=False),
        sa.Column("slot", sa.String(16), nullable=False),
        sa.Column("visit_at", tz, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("tickets", sa.JSON(), nullable=False),
        sa.Column("customer", sa.JSON(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("expires_at", tz, nullable=False),
        sa.Column("order_reference", sa.String(64), nullable=True),
        sa.Column("booking_id", sa.String(), nullable=True),
        sa.Column("acme_order_id", sa.String(), nullable=True),
        sa.Column("barcodes", sa.JSON(), nullable=True),
        sa.Column("test_order", sa.Boolean(), nullable=False),
        sa.Column("booked_at", tz, nullable=True),
        sa.Column("cancelled_at", tz, nullable=True),
        sa.Column("cancellation", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_supplier_reservations"),
        sa.UniqueConstraint(
            "environment", "booking_id", name="uq_supplier_reservations_environment_booking_id"
        ),
    )
    op.create_index(
        "ix_supplier_reservations_environment_status_instance_id",
        "supplier_reservations",
        ["environment", "status", "instance_id"],
    )
    op.create_table(
        "supplier_slot_locks",
        sa.Column("environment", sa.String(20), nullable=False),
        sa.Column("template_id", sa.String(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("environment", "template_id", "day", name="pk_supplier_slot_locks"),
    )


def downgrade() -> None:
    op.drop_table("supplier_slot_locks")
    op.drop_index(
        "ix_supplier_reservations_environment_status_instance_id",
        table_name="supplier_reservations",
    )
    op.drop_table("supplier_reservations")
