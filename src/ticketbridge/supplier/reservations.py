"""Reservations and bookings of the Supplier API, in ticketbridge's state database.

SQLAlchemy Core tables beside the state store's (same database, same engine settings; created
by migration ``0002``). Synchronous on purpose: the service runs every transaction in a worker
thread, never on the event loop.

Invariants:

* a reservation holds its tickets while ``status == "held"`` and ``expires_at > now``; expired
  rows are simply ignored (never counted, never bookable);
* availability check + insert for one (environment, template, day) are serialised by
  :meth:`ReservationStore.lock_day` inside one write transaction: ``BEGIN IMMEDIATE`` on
  SQLite (the engine's write option), a ``SELECT ... FOR UPDATE`` on a lock row on PostgreSQL;
* a reservation is booked at most once: booking locks its row (``FOR UPDATE``; the write lock
  on SQLite) for the whole ACME call, so a concurrent retry waits and then finds it booked;
  ``(environment, booking_id)`` is unique besides;
* timestamps are aware UTC (``UtcDateTime``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ticketbridge.engine.state.db import WRITE, describe_error
from ticketbridge.engine.state.tables import UtcDateTime
from ticketbridge.errors import StateError

HELD, BOOKED, CANCELLED = "held", "booked", "cancelled"

# The same naming convention as the state store's tables, so constraint names are stable.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

reservations = Table(
    "supplier_reservations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("environment", String(20), nullable=False),
    Column("product_id", String(64), nullable=False),
    Column("template_id", String(), nullable=False),
    Column("instance_id", String(), nullable=False),
    Column("slot", String(16), nullable=False),  # "YYYY-MM-DDTHH:MM", venue time
    Column("visit_at", UtcDateTime(), nullable=False),  # start of the booked slot / day
    Column("quantity", Integer, nullable=False),
    Column("tickets", JSON(), nullable=False),  # [{variant_id, ticket_type_id, quantity, price}]
    Column("customer", JSON(), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("order_reference", String(64), nullable=True),
    Column("booking_id", String(), nullable=True),
    Column("acme_order_id", String(), nullable=True),
    Column("barcodes", JSON(none_as_null=True), nullable=True),  # {variant_id: [codes]}
    Column("test_order", Boolean(), nullable=False),
    Column("booked_at", UtcDateTime(), nullable=True),
    Column("cancelled_at", UtcDateTime(), nullable=True),
    Column("cancellation", JSON(none_as_null=True), nullable=True),  # what ACME did
    UniqueConstraint("environment", "booking_id"),
    Index(
        "ix_supplier_reservations_environment_status_instance_id",
        "environment",
        "status",
        "instance_id",
    ),
)

slot_locks = Table(
    "supplier_slot_locks",
    metadata,
    Column("environment", String(20), primary_key=True),
    Column("template_id", String(), primary_key=True),
    Column("day", String(10), primary_key=True),
)


@dataclass
class Reservation:
    id: str
    environment: str
    product_id: str
    template_id: str
    instance_id: str
    slot: str
    visit_at: datetime
    quantity: int
    tickets: list[dict[str, Any]]
    customer: dict[str, Any]
    currency: str
    status: str
    created_at: datetime
    expires_at: datetime
    order_reference: str | None = None
    booking_id: str | None = None
    acme_order_id: str | None = None
    barcodes: dict[str, list[str]] | None = None
    test_order: bool = False
    booked_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancellation: dict[str, Any] | None = field(default=None)


_COLUMNS = [c.name for c in reservations.columns]


def _row(found: Any) -> Reservation | None:
    if found is None:
        return None
    return Reservation(**{name: getattr(found, name) for name in _COLUMNS})


class ReservationStore:
    """Transactions over the two tables. Thread-safe; one pooled connection per transaction."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))
        is_pg = engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if is_pg else sqlite.insert
        # An in-memory SQLite database is one shared connection: no interleaved transactions.
        self._lock: AbstractContextManager[Any] = (
            threading.RLock() if isinstance(engine.pool, StaticPool) else nullcontext()
        )

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """One transaction (``BEGIN IMMEDIATE`` on SQLite when writing); commits on success."""
        with self._lock:
            try:
                with self.engine.connect() as conn:
                    if write:
                        conn.execution_options(**{WRITE: True})
                    with conn.begin():
                        yield conn
            except SQLAlchemyError as exc:
                raise StateError(f"supplier reservations: {describe_error(exc)}") from exc

    # -- locks -----------------------------------------------------------------------------

    def lock_day(self, conn: Connection, environment: str, template_id: str, day: str) -> None:
        """Serialise reservations of one template's day until ``conn``'s transaction ends.

        On SQLite the write transaction already excludes every other writer; ``FOR UPDATE``
        compiles to nothing there. On PostgreSQL the lock row is created if missing (a racing
        creator waits on the unique key, then finds it) and locked.
        """
        key = {"environment": environment, "template_id": template_id, "day": day}
        conn.execute(self._insert(slot_locks).values(**key).on_conflict_do_nothing())
        conn.execute(
            select(slot_locks.c.day)
            .where(*(slot_locks.c[k] == v for k, v in key.items()))
            .with_for_update()
        )

    # -- reads -----------------------------------------------------------------------------

    def held(self, conn: Connection, environment: str, now: datetime) -> dict[str, int]:
        """Tickets held by live reservations, per ACME instance id."""
        rows = conn.execute(
            select(reservations.c.instance_id, func.sum(reservations.c.quantity))
            .where(
                reservations.c.environment == environment,
                reservations.c.status == HELD,
                reservations.c.expires_at > now,
            )
            .group_by(reservations.c.instance_id)
        )
        return {instance: int(total or 0) for instance, total in rows}

    def held_now(self, environment: str) -> dict[str, int]:
        with self.transaction(write=False) as conn:
            return self.held(conn, environment, self.now())

    def get(self, environment: str, reservation_id: str) -> Reservation | None:
        with self.transaction(write=False) as conn:
            return _row(
                conn.execute(
                    select(reservations).where(
                        reservations.c.environment == environment,
                        reservations.c.id == reservation_id,
                    )
                ).first()
            )

    def reservation_for_update(
        self, conn: Connection, environment: str, reservation_id: str
    ) -> Reservation | None:
        return _row(
            conn.execute(
                select(reservations)
                .where(
                    reservations.c.environment == environment, reservations.c.id == reservation_id
                )
                .with_for_update()
            ).first()
        )

    def booking_for_update(
        self, conn: Connection, environment: str, booking_id: str
    ) -> Reservation | None:
        return _row(
            conn.execute(
                select(reservations)
                .where(
                    reservations.c.environment == environment,
                    reservations.c.booking_id == booking_id,
                )
                .with_for_update()
            ).first()
        )

    # -- writes ----------------------------------------------------------------------------

    def insert(self, conn: Connection, reservation: Reservation) -> None:
        conn.execute(
            reservations.insert().values(**{name: getattr(reservation, name) for name in _COLUMNS})
        )

    def mark_booked(
        self,
        conn: Connection,
        reservation_id: str,
        *,
        booking_id: str,
        acme_order_id: str,
        order_reference: str,
        barcodes: dict[str, list[str]],
        test_order: bool,
        now: datetime,
    ) -> None:
        conn.execute(
            update(reservations)
            .where(reservations.c.id == reservation_id)
            .values(
                status=BOOKED,
                booking_id=booking_id,
                acme_order_id=acme_order_id,
                order_reference=order_reference,
                barcodes=barcodes,
                test_order=test_order,
                booked_at=now,
            )
        )

    def mark_cancelled(
        self, conn: Connection, reservation_id: str, detail: dict[str, Any], now: datetime
    ) -> None:
        conn.execute(
            update(reservations)
            .where(reservations.c.id == reservation_id)
            .values(status=CANCELLED, cancelled_at=now, cancellation=detail)
        )

    def set_expiry(self, environment: str, reservation_id: str, expires_at: datetime) -> bool:
        """Move a reservation's expiry (operators and tests: "expire this hold now")."""
        with self.transaction() as conn:
            done = conn.execute(
                update(reservations)
                .where(
                    reservations.c.environment == environment, reservations.c.id == reservation_id
                )
                .values(expires_at=expires_at)
            )
            return bool(done.rowcount)
