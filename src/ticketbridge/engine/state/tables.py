"""The state store's schema, as SQLAlchemy Core tables (the runtime view of the database).

Alembic migrations in ``migrations/versions`` create this schema; a contract test checks the two
agree, so a change here needs a new migration.

Every timestamp is a timezone-aware UTC ``datetime`` in Python. SQLite has no time zone type, so
:class:`UtcDateTime` stores naive UTC there (fixed-width text, so comparisons in SQL stay correct)
and re-attaches UTC on the way out; PostgreSQL stores ``timestamptz``.

There are deliberately no foreign keys from ``ledger`` / ``dead_letters`` to ``runs``: the run id
there is informational (which run last wrote the row) and pruning old runs must not rewrite or
block on millions of ledger rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

__all__ = [
    "UtcDateTime",
    "checkpoints",
    "console_sessions",
    "dead_letters",
    "leases",
    "ledger",
    "metadata",
    "pass_installs",
    "runs",
]

# Stable constraint names so migrations (and SQLite batch mode) can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that only accepts and only returns aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the state store only takes aware UTC")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite keeps text; dropping the offset keeps every stored value the same width,
            # so ``<`` / ``ORDER BY`` on the text agree with time order.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json(*, nullable: bool) -> JSON:
    # none_as_null: Python None becomes SQL NULL, not the JSON text 'null'.
    return JSON(none_as_null=nullable)


runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sync", String(), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("counters", _json(nullable=False), nullable=False),
    Column("error", Text, nullable=True),
    Column("detail", _json(nullable=False), nullable=False),
    Index("ix_runs_sync_id", "sync", "id"),
)

leases = Table(
    "leases",
    metadata,
    Column("sync", String(), primary_key=True),
    Column("holder", String(), nullable=False),
    # Fencing token: only ever incremented, never reset (rows are never deleted).
    Column("token", BigInteger, nullable=False),
    Column("acquired_until", UtcDateTime(), nullable=False),
    Column("heartbeat_at", UtcDateTime(), nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("sync", String(), primary_key=True),
    Column("data", _json(nullable=False), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

ledger = Table(
    "ledger",
    metadata,
    Column("sync", String(), primary_key=True),
    Column("key", String(), primary_key=True),
    Column("hashes", _json(nullable=False), nullable=False),
    Column("dest_ids", _json(nullable=False), nullable=False),
    Column("last_outcome", String(20), nullable=False),
    Column("status", String(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("run_id", Integer, nullable=True),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("sync", String(), primary_key=True),
    Column("key", String(), primary_key=True),
    Column("stage", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("record", _json(nullable=True), nullable=True),
    Column("raw", _json(nullable=True), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("first_seen", UtcDateTime(), nullable=False),
    Column("last_seen", UtcDateTime(), nullable=False),
    Column("last_run_id", Integer, nullable=True),
    Column("resolved_at", UtcDateTime(), nullable=True),
    # Serves "unresolved of a sync" (list, count) and the oldest-first retry scan.
    Index("ix_dead_letters_sync_resolved_at", "sync", "resolved_at", "first_seen"),
    # The console's lists, newest first (all syncs, one sync), with the columns its filters
    # test, and a run's rejected records (migration 0003_console says why).
    Index("ix_dead_letters_newest", "first_seen", "sync", "key", "resolved_at", "stage", "reason"),
    Index(
        "ix_dead_letters_sync_newest", "sync", "first_seen", "key", "resolved_at", "stage", "reason"
    ),
    Index("ix_dead_letters_sync_last_run_id", "sync", "last_run_id"),
)

# What a mobile-wallet platform reported about each pass it issued (Airship Wallet's install
# and uninstall callbacks). Keyed by the platform's project and the pass's template and
# external id, not by sync: one project may be written by several syncs, and a callback
# names the pass, not the sync. Only the newest report per pass is kept (``changed_at``).
pass_installs = Table(
    "pass_installs",
    metadata,
    Column("project_id", String(), primary_key=True),
    Column("template_id", String(), primary_key=True),
    Column("external_id", String(), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("pass_id", String(), nullable=True),
    Column("platform", String(20), nullable=True),
    Column("changed_at", UtcDateTime(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    # Serves "the passes of these tickets" (links export): by external id, any template.
    Index("ix_pass_installs_project_id_external_id", "project_id", "external_id"),
)

# The console's logins (web/auth.py): a session is valid while its row has no ``ended_at``.
# Keyed by the SHA-256 of the random token its cookie carries, never the token: a reader of
# this database cannot log in with what it finds here.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
)
