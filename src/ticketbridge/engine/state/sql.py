"""SQLAlchemy Core implementation of :class:`~ticketbridge.engine.state.base.StateStore`.

One class serves SQLite (the default, a file beside the project) and PostgreSQL
(``postgresql+psycopg://...``, at scale). Beyond the protocol's invariants it guarantees:

* **Fencing.** Every fenced write (``commit_batch``, ``renew_lease``, ``start_run`` /
  ``finish_run`` with a lease) opens its transaction with
  ``UPDATE leases SET heartbeat_at = now WHERE sync, holder, token`` and raises
  :class:`~ticketbridge.errors.LeaseLost` before writing anything if no row matched. On
  PostgreSQL that row lock also queues a concurrent ``acquire_lease`` behind the batch, so a new
  token is never issued while an old holder's batch is half written.
* **Single flight across processes.** ``acquire_lease`` is a conditional UPDATE of an expired row
  or an INSERT .. ON CONFLICT DO NOTHING, so of any number of racing processes exactly one gets
  the lease. On SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (see ``db.py``).
* **Bulk writes.** A batch's ledger rows and dead letters are one executemany each of the
  dialect's ``INSERT .. ON CONFLICT DO UPDATE``; lookups go ``CHUNK`` keys per ``IN``.
* **Time** comes from the injectable ``clock`` (aware UTC), never from the database server, so
  tests can move it; hosts sharing a database need roughly synchronised clocks (lease expiry is
  the only thing that depends on it, and fencing keeps even a skewed expiry safe).
* Database failures surface as :class:`~ticketbridge.errors.StateError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Text,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ticketbridge.engine.state import corrupt
from ticketbridge.engine.state import tables as t
from ticketbridge.engine.state.base import (
    DeadLetter,
    DeadLetterIn,
    Lease,
    LedgerOutcome,
    LedgerRow,
    PassInstall,
    RunCounters,
    RunKind,
    RunOutcome,
    RunRow,
)
from ticketbridge.engine.state.bulk import BulkUpsert
from ticketbridge.engine.state.db import (
    WRITE,
    create_state_engine,
    describe_error,
    migrate,
    refuse_foreign_sqlite_file,
)
from ticketbridge.errors import LeaseLost, StateError

__all__ = ["CHUNK", "SqlStateStore", "open_store"]

CHUNK = 500
"""Keys per ``IN (...)``: well under SQLite's and PostgreSQL's bound-parameter limits."""

_COUNTER_FIELDS = frozenset(f.name for f in fields(RunCounters))
_SESSION_ROWS_KEPT = timedelta(days=7)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _unique(keys: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(keys))


def open_store(url: str, *, clock: Callable[[], datetime] | None = None) -> SqlStateStore:
    """Open the state store at ``url``, creating or upgrading its schema to head first."""
    refuse_foreign_sqlite_file(url)
    store = SqlStateStore(url, clock=clock)
    try:
        migrate(store.engine)
    except BaseException:
        store.close()
        raise
    return store


# --- the store -----------------------------------------------------------------------------


class SqlStateStore:
    """The state store on SQLite or PostgreSQL. See the module docstring for its guarantees.

    Thread-safe (one pooled connection per transaction). Does not migrate: use
    :func:`open_store` unless the schema is known to be current.
    """

    def __init__(self, url: str, *, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = create_state_engine(url)
        self._clock = clock or _utcnow
        is_pg = self._engine.dialect.name == "postgresql"
        if is_pg:
            # Imported here: the PostgreSQL dialect (and every driver module it pulls in) costs
            # a tenth of a second of start-up that a SQLite project does not need.
            from sqlalchemy.dialects import postgresql
        self._insert = postgresql.insert if is_pg else sqlite.insert
        self._ledger_upsert = BulkUpsert(t.ledger, self._insert)
        # A StaticPool shares one connection: transactions on it must not interleave.
        self._lock: AbstractContextManager[Any] = (
            threading.RLock() if isinstance(self._engine.pool, StaticPool) else nullcontext()
        )

    @property
    def engine(self) -> Engine:
        return self._engine

    def __repr__(self) -> str:
        return f"SqlStateStore({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def _where(self) -> str:
        """The database, for messages (never its password)."""
        url = self._engine.url
        if url.get_backend_name() == "sqlite":
            return f"state file {url.database}"
        return f"state database {url.render_as_string(hide_password=True)}"

    def close(self) -> None:
        self._engine.dispose()

    # --- plumbing ------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the state store clock must return aware datetimes")
        return now.astimezone(UTC)

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Connection]:
        """One transaction; commits on success, rolls back on any exception."""
        with self._lock:
            try:
                with self._engine.connect() as conn:
                    if write:
                        conn.execution_options(**{WRITE: True})
                    with conn.begin():
                        yield conn
            except SQLAlchemyError as exc:
                raise StateError(f"state store: {describe_error(exc)}") from exc

    @staticmethod
    def _fence(conn: Connection, lease: Lease, now: datetime, **also: Any) -> None:
        result = conn.execute(
            update(t.leases)
            .where(
                t.leases.c.sync == lease.sync,
                t.leases.c.holder == lease.holder,
                t.leases.c.token == lease.token,
            )
            .values(heartbeat_at=now, **also)
        )
        if result.rowcount != 1:
            raise LeaseLost(
                f"lease on sync {lease.sync!r} lost: token {lease.token} of {lease.holder!r} "
                "is no longer current"
            )

    # --- leases --------------------------------------------------------------------------

    def acquire_lease(self, sync: str, holder: str, ttl_s: float) -> Lease | None:
        """Take the lease if absent or expired (``acquired_until <= now``), token + 1.

        Returns None while the lease is held, by anyone, including ``holder`` itself: a second
        acquire by the same holder would otherwise silently invalidate its first lease.
        """
        now = self._now()
        until = now + timedelta(seconds=ttl_s)
        with self._tx(write=True) as conn:
            # On PostgreSQL a racing UPDATE waits for the winner's row lock, then re-checks the
            # WHERE against the committed row and matches nothing.
            token = conn.execute(
                update(t.leases)
                .where(t.leases.c.sync == sync, t.leases.c.acquired_until <= now)
                .values(
                    holder=holder,
                    token=t.leases.c.token + 1,
                    acquired_until=until,
                    heartbeat_at=now,
                )
                .returning(t.leases.c.token)
            ).scalar_one_or_none()
            if token is None:
                # No row (first run of this sync) or a held one: the insert decides which,
                # without an IntegrityError that would abort a PostgreSQL transaction.
                token = conn.execute(
                    self._insert(t.leases)
                    .values(
                        sync=sync, holder=holder, token=1, acquired_until=until, heartbeat_at=now
                    )
                    .on_conflict_do_nothing(index_elements=[t.leases.c.sync])
                    .returning(t.leases.c.token)
                ).scalar_one_or_none()
            if token is not None:
                # Whoever held the lease before is gone: a run it left ``running`` was
                # killed, and says so from now on (single flight: none can still be alive).
                self._close_runs(conn, [sync], now)
        if token is None:
            return None
        return Lease(sync=sync, holder=holder, token=int(token), acquired_until=until)

    def get_lease(self, sync: str) -> Lease | None:
        with self._tx(write=False) as conn:
            row = conn.execute(select(t.leases).where(t.leases.c.sync == sync)).one_or_none()
        if row is None:
            return None
        until = row.acquired_until
        if until.tzinfo is None:  # SQLite hands back naive datetimes; they are stored as UTC
            until = until.replace(tzinfo=UTC)
        return Lease(sync=sync, holder=row.holder, token=int(row.token), acquired_until=until)

    def renew_lease(self, lease: Lease, ttl_s: float) -> Lease:
        """Extend to ``now + ttl_s``. Works after expiry too, as long as nobody took the lease."""
        now = self._now()
        until = now + timedelta(seconds=ttl_s)
        with self._tx(write=True) as conn:
            self._fence(conn, lease, now, acquired_until=until)
        return replace(lease, acquired_until=until)

    def release_lease(self, lease: Lease) -> None:
        now = self._now()
        with self._tx(write=True) as conn:
            conn.execute(
                update(t.leases)
                .where(
                    t.leases.c.sync == lease.sync,
                    t.leases.c.holder == lease.holder,
                    t.leases.c.token == lease.token,
                    # Never push an already expired lease's expiry forward.
                    t.leases.c.acquired_until > now,
                )
                .values(acquired_until=now)
            )

    # --- runs ----------------------------------------------------------------------------

    def start_run(
        self,
        sync: str,
        kind: RunKind,
        lease: Lease | None,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert a ``running`` run; fenced (LeaseLost, nothing written) when a lease is given."""
        if lease is not None and lease.sync != sync:
            raise StateError(f"lease is for sync {lease.sync!r}, not {sync!r}")
        now = self._now()
        with self._tx(write=True) as conn:
            if lease is not None:
                self._fence(conn, lease, now)
            return self._insert_run(conn, sync, kind, "running", now, None, dict(detail or {}))

    def record_skipped_run(
        self, sync: str, reason: str, detail: Mapping[str, Any] | None = None
    ) -> int:
        """A finished run with outcome ``skipped`` and ``detail["reason"] == reason``."""
        now = self._now()
        stored = {**(detail or {}), "reason": reason}
        with self._tx(write=True) as conn:
            return self._insert_run(conn, sync, "run", "skipped", now, now, stored)

    def record_action(
        self,
        sync: str,
        kind: RunKind,
        outcome: RunOutcome,
        detail: Mapping[str, Any],
        counters: RunCounters | None = None,
        error: str | None = None,
    ) -> int:
        """One insert of a finished run (never ``running``, so never closed as crashed)."""
        if outcome == "running":
            raise ValueError("an action is recorded when it has finished")
        now = self._now()
        with self._tx(write=True) as conn:
            return self._insert_run(
                conn, sync, kind, outcome, now, now, dict(detail), counters, error
            )

    @staticmethod
    def _insert_run(
        conn: Connection,
        sync: str,
        kind: str,
        outcome: str,
        started_at: datetime,
        finished_at: datetime | None,
        detail: dict[str, Any],
        counters: RunCounters | None = None,
        error: str | None = None,
    ) -> int:
        run_id = conn.execute(
            insert(t.runs)
            .values(
                sync=sync,
                kind=kind,
                outcome=outcome,
                started_at=started_at,
                finished_at=finished_at,
                counters=(counters or RunCounters()).as_dict(),
                error=error,
                detail=detail,
            )
            .returning(t.runs.c.id)
        ).scalar_one()
        return int(run_id)

    def finish_run(
        self,
        run_id: int,
        lease: Lease | None,
        outcome: RunOutcome,
        counters: RunCounters,
        error: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Set outcome, counters, error, ``finished_at``; ``detail`` replaces the stored one
        when given. Fenced when a lease is given (then the run must belong to its sync)."""
        now = self._now()
        values: dict[str, Any] = {
            "outcome": outcome,
            "finished_at": now,
            "counters": counters.as_dict(),
            "error": error,
        }
        if detail is not None:
            values["detail"] = dict(detail)
        where = [t.runs.c.id == run_id]
        if lease is not None:
            where.append(t.runs.c.sync == lease.sync)
        with self._tx(write=True) as conn:
            if lease is not None:
                self._fence(conn, lease, now)
            if conn.execute(update(t.runs).where(*where).values(**values)).rowcount != 1:
                raise StateError(f"no run {run_id}" + (f" of sync {lease.sync!r}" if lease else ""))

    def close_abandoned_runs(self, is_dead: Callable[[str], bool] | None = None) -> int:
        now = self._now()
        with self._tx(write=True) as conn:
            running = conn.execute(
                select(t.runs.c.sync).where(t.runs.c.outcome == "running").distinct()
            ).scalars()
            syncs = list(running)
            if not syncs:
                return 0
            held = {
                row.sync: row.holder
                for row in conn.execute(
                    select(t.leases.c.sync, t.leases.c.holder).where(
                        t.leases.c.sync.in_(syncs), t.leases.c.acquired_until > now
                    )
                )
            }
            gone = [s for s in syncs if s not in held or (is_dead is not None and is_dead(held[s]))]
            return self._close_runs(conn, gone, now) if gone else 0

    @staticmethod
    def _close_runs(conn: Connection, syncs: list[str], now: datetime) -> int:
        result = conn.execute(
            update(t.runs)
            .where(t.runs.c.sync.in_(syncs), t.runs.c.outcome == "running")
            .values(
                outcome="crashed",
                finished_at=now,
                error="the run's process ended before it finished (killed or lost); the next "
                "run resumes from its last committed batch",
            )
        )
        return int(result.rowcount or 0)

    def list_runs(self, sync: str | None = None, limit: int = 20) -> list[RunRow]:
        """Newest first."""
        query = select(t.runs).order_by(t.runs.c.id.desc()).limit(limit)
        if sync is not None:
            query = query.where(t.runs.c.sync == sync)
        with self._tx(write=False) as conn:
            return [_run_row(row) for row in conn.execute(query)]

    def get_run(self, run_id: int) -> RunRow | None:
        with self._tx(write=False) as conn:
            row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).one_or_none()
        return None if row is None else _run_row(row)

    # --- checkpoint ----------------------------------------------------------------------

    def get_checkpoint(self, sync: str) -> dict[str, Any] | None:
        try:
            with self._tx(write=False) as conn:
                data = conn.execute(
                    select(t.checkpoints.c.data).where(t.checkpoints.c.sync == sync)
                ).scalar_one_or_none()
        except ValueError as exc:  # the JSON does not decode (SQLite stores text)
            raise corrupt.checkpoint_error(sync, f"not JSON: {exc}", self._where) from None
        if data is None:
            return None
        problem = corrupt.shape_problem(data)
        if problem is not None:
            raise corrupt.checkpoint_error(sync, problem, self._where)
        return dict(data)

    def set_checkpoint(self, sync: str, checkpoint: Mapping[str, Any] | None) -> None:
        """Operator override, not fenced. ``None`` deletes the checkpoint (start from scratch)."""
        now = self._now()
        with self._tx(write=True) as conn:
            if checkpoint is None:
                conn.execute(delete(t.checkpoints).where(t.checkpoints.c.sync == sync))
            else:
                self._put_checkpoint(conn, sync, checkpoint, now)

    def operator_set_checkpoint(
        self, sync: str, checkpoint: Mapping[str, Any] | None, by: str, lease: Lease | None
    ) -> int:
        """Set it and record who did, when, from what to what, as a ``checkpoint`` run."""
        if lease is not None and lease.sync != sync:
            raise StateError(f"lease is for sync {lease.sync!r}, not {sync!r}")
        now = self._now()
        with self._tx(write=True) as conn:
            if lease is not None:
                self._fence(conn, lease, now)
            # As text: a corrupt checkpoint is what an operator replaces (issue 20.6).
            old = corrupt.as_recorded(
                conn.execute(
                    select(sql_cast(t.checkpoints.c.data, Text)).where(t.checkpoints.c.sync == sync)
                ).scalar_one_or_none()
            )
            if checkpoint is None:
                conn.execute(delete(t.checkpoints).where(t.checkpoints.c.sync == sync))
            else:
                self._put_checkpoint(conn, sync, checkpoint, now)
            new = None if checkpoint is None else dict(checkpoint)
            detail = {"by": by, "old": old, "new": new}
            return self._insert_run(conn, sync, "checkpoint", "ok", now, now, detail)

    def _put_checkpoint(
        self, conn: Connection, sync: str, checkpoint: Mapping[str, Any], now: datetime
    ) -> None:
        stmt = self._insert(t.checkpoints).values(sync=sync, data=dict(checkpoint), updated_at=now)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.checkpoints.c.sync],
                set_={"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at},
            )
        )

    # --- ledger --------------------------------------------------------------------------

    def get_ledger(self, sync: str, keys: Sequence[str]) -> dict[str, LedgerRow]:
        """Rows for those of ``keys`` the ledger has; absent keys are simply missing."""
        found: dict[str, LedgerRow] = {}
        unique = _unique(keys)
        try:
            with self._tx(write=False) as conn:
                for chunk in _chunks(unique):
                    rows = conn.execute(
                        select(t.ledger).where(t.ledger.c.sync == sync, t.ledger.c.key.in_(chunk))
                    )
                    for row in rows:
                        found[row.key] = _ledger_row(row)
        except ValueError:
            raise self._corrupt_ledger(sync, unique) from None
        return found

    def _corrupt_ledger(self, sync: str, keys: Sequence[str] | None) -> StateError:
        with self._tx(write=False) as conn:
            if keys is None:
                bad = _bad_ledger_rows(conn, sync, None)
            else:
                bad = [b for c in _chunks(keys) for b in _bad_ledger_rows(conn, sync, c)]
        return corrupt.ledger_error(sync, bad, self._where)

    def iter_ledger(self, sync: str, batch: int = 1000) -> Iterator[LedgerRow]:
        after: str | None = None
        while True:
            query = select(t.ledger).where(t.ledger.c.sync == sync)
            if after is not None:
                query = query.where(t.ledger.c.key > after)
            try:
                with self._tx(write=False) as conn:
                    rows = [
                        _ledger_row(r)
                        for r in conn.execute(query.order_by(t.ledger.c.key).limit(max(1, batch)))
                    ]
            except ValueError:
                raise self._corrupt_ledger(sync, None) from None
            yield from rows
            if len(rows) < max(1, batch):
                return
            after = rows[-1].key

    def count_ledger(self, sync: str) -> int:
        with self._tx(write=False) as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(t.ledger).where(t.ledger.c.sync == sync)
                ).scalar_one()
            )

    # --- the one write path of a running sync ---------------------------------------------

    def commit_batch(
        self,
        lease: Lease,
        run_id: int,
        *,
        ledger: Sequence[LedgerRow] = (),
        dead_letters: Sequence[DeadLetterIn] = (),
        resolved: Sequence[str] = (),
        checkpoint: Mapping[str, Any] | None = None,
        counters: RunCounters | None = None,
    ) -> None:
        """One transaction for ``lease.sync``: fence, ledger, resolved, dead letters, checkpoint,
        counters.

        Ledger rows overwrite whole rows (their ``updated_at`` is set to now, ``run_id`` to this
        run); a key repeated in one batch keeps its last row. ``resolved`` is applied before
        ``dead_letters``, so a key in both stays unresolved: a failure is never hidden.
        """
        sync = lease.sync
        now = self._now()
        with self._tx(write=True) as conn:
            self._fence(conn, lease, now)
            if counters is not None:
                result = conn.execute(
                    update(t.runs)
                    .where(t.runs.c.id == run_id, t.runs.c.sync == sync)
                    .values(counters=counters.as_dict())
                )
                if result.rowcount != 1:
                    raise StateError(f"no run {run_id} of sync {sync!r}")
            if ledger:
                self._upsert_ledger(conn, sync, run_id, ledger, now)
            if resolved:
                self._resolve(conn, sync, resolved, now)
            if dead_letters:
                self._upsert_dead_letters(conn, sync, run_id, dead_letters, now)
            if checkpoint is not None:
                self._put_checkpoint(conn, sync, checkpoint, now)

    def _upsert_ledger(
        self,
        conn: Connection,
        sync: str,
        run_id: int,
        rows: Sequence[LedgerRow],
        now: datetime,
    ) -> None:
        # Deduplicated: PostgreSQL refuses to update one row twice in one INSERT .. ON CONFLICT.
        # Values in the ledger's column order, without those every row shares.
        latest = {
            row.key: (row.key, dict(row.hashes), dict(row.dest_ids), row.last_outcome, row.status)
            for row in rows
        }
        self._ledger_upsert.run(
            conn, latest.values(), {"sync": sync, "updated_at": now, "run_id": run_id}
        )

    def _upsert_dead_letters(
        self,
        conn: Connection,
        sync: str,
        run_id: int,
        letters: Sequence[DeadLetterIn],
        now: datetime,
    ) -> None:
        params = {
            letter.key: {
                "sync": sync,
                "key": letter.key,
                "stage": letter.stage,
                "reason": letter.reason,
                "record": None if letter.record is None else dict(letter.record),
                "raw": None if letter.raw is None else dict(letter.raw),
                "attempts": 1,
                "first_seen": now,
                "last_seen": now,
                "last_run_id": run_id,
                "resolved_at": None,
            }
            for letter in letters
        }
        stmt = self._insert(t.dead_letters)
        ex = stmt.excluded
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.dead_letters.c.sync, t.dead_letters.c.key],
                set_={
                    "stage": ex.stage,
                    "reason": ex.reason,
                    "record": ex.record,
                    "raw": ex.raw,
                    "attempts": t.dead_letters.c.attempts + 1,
                    "last_seen": ex.last_seen,
                    "last_run_id": ex.last_run_id,
                    "resolved_at": None,
                },
            ),
            list(params.values()),
        )

    @staticmethod
    def _resolve(conn: Connection, sync: str, keys: Sequence[str], now: datetime) -> None:
        dl = t.dead_letters
        for chunk in _chunks(_unique(keys)):
            conn.execute(
                update(dl)
                .where(dl.c.sync == sync, dl.c.key.in_(chunk), dl.c.resolved_at.is_(None))
                .values(resolved_at=now)
            )

    # --- pass installs -------------------------------------------------------------------

    def record_pass_install(self, report: PassInstall) -> bool:
        row = {
            **{f.name: getattr(report, f.name) for f in fields(PassInstall)},
            "received_at": self._now(),
        }
        stmt = self._insert(t.pass_installs).values(**row)
        keep = [c for c in row if c not in ("project_id", "template_id", "external_id")]
        with self._tx(write=True) as conn:
            result = conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=list(t.pass_installs.primary_key.columns),
                    set_={name: stmt.excluded[name] for name in keep},
                    where=t.pass_installs.c.changed_at <= stmt.excluded.changed_at,
                )
                # A row comes back only if one was written (rowcount is not reliable for an
                # upsert whose WHERE kept the old row on every driver).
                .returning(t.pass_installs.c.status)
            )
            return result.first() is not None

    def get_pass_installs(
        self, project_id: str, external_ids: Sequence[str]
    ) -> dict[str, list[PassInstall]]:
        found: dict[str, list[PassInstall]] = {}
        table = t.pass_installs
        with self._tx(write=False) as conn:
            for chunk in _chunks(_unique(external_ids)):
                query = (
                    select(table)
                    .where(table.c.project_id == project_id, table.c.external_id.in_(chunk))
                    .order_by(table.c.external_id, table.c.template_id)
                )
                for row in conn.execute(query):
                    found.setdefault(row.external_id, []).append(PassInstall(**row._asdict()))
        return found

    # --- console sessions ----------------------------------------------------------------

    def start_console_session(self, token_hash: str, role: str) -> None:
        cs = t.console_sessions
        now = self._now()
        with self._tx(write=True) as conn:
            # Far past any session's life (12 hours by default): the table stays small.
            conn.execute(delete(cs).where(cs.c.started_at < now - _SESSION_ROWS_KEPT))
            conn.execute(insert(cs).values(token_hash=token_hash, role=role, started_at=now))

    def console_session_open(self, token_hash: str) -> bool:
        cs = t.console_sessions
        query = select(cs.c.token_hash).where(
            cs.c.token_hash == token_hash, cs.c.ended_at.is_(None)
        )
        with self._tx(write=False) as conn:
            return conn.execute(query).first() is not None

    def end_console_sessions(self, token_hash: str | None = None) -> int:
        cs = t.console_sessions
        stmt = update(cs).where(cs.c.ended_at.is_(None)).values(ended_at=self._now())
        if token_hash is not None:
            stmt = stmt.where(cs.c.token_hash == token_hash)
        with self._tx(write=True) as conn:
            return int(conn.execute(stmt).rowcount or 0)

    # --- dead letters --------------------------------------------------------------------

    def list_dead_letters(self, sync: str, include_resolved: bool = False) -> list[DeadLetter]:
        """Oldest first (``first_seen``, then key)."""
        dl = t.dead_letters
        query = select(dl).where(dl.c.sync == sync).order_by(dl.c.first_seen, dl.c.key)
        if not include_resolved:
            query = query.where(dl.c.resolved_at.is_(None))
        with self._tx(write=False) as conn:
            return [_dead_letter(row) for row in conn.execute(query)]

    def iter_retryable(self, sync: str, run_id: int, batch: int = 500) -> Iterator[DeadLetter]:
        """Unresolved dead letters whose ``last_run_id`` is not ``run_id``, oldest first.

        Pages by keyset (``first_seen``, key), each page in its own short transaction, so the
        caller may commit batches (resolving or re-failing rows) between pages; rows it touches
        in ``run_id`` are not yielded again.
        """
        if batch < 1:
            raise ValueError("batch must be >= 1")
        dl = t.dead_letters
        base = (
            select(dl)
            .where(
                dl.c.sync == sync,
                dl.c.resolved_at.is_(None),
                or_(dl.c.last_run_id.is_(None), dl.c.last_run_id != run_id),
            )
            .order_by(dl.c.first_seen, dl.c.key)
            .limit(batch)
        )
        after: tuple[datetime, str] | None = None
        while True:
            query = base
            if after is not None:
                seen, key = after
                query = query.where(
                    or_(dl.c.first_seen > seen, and_(dl.c.first_seen == seen, dl.c.key > key))
                )
            with self._tx(write=False) as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield _dead_letter(row)
            if len(rows) < batch:
                return
            after = (rows[-1].first_seen, rows[-1].key)


def _ledger_row(row: Row[Any]) -> LedgerRow:
    for column in corrupt.LEDGER_JSON:
        problem = corrupt.shape_problem(row._mapping[column])
        if problem is not None:
            raise ValueError(f"{row.key}: {column}: {problem}")
    return LedgerRow(
        key=row.key,
        hashes=dict(row.hashes),
        dest_ids=dict(row.dest_ids),
        last_outcome=cast(LedgerOutcome, row.last_outcome),
        status=row.status,
        updated_at=row.updated_at,
    )


def _run_row(row: Row[Any]) -> RunRow:
    stored = row.counters or {}
    counters = RunCounters(**{k: int(v) for k, v in stored.items() if k in _COUNTER_FIELDS})
    return RunRow(
        id=int(row.id),
        sync=row.sync,
        kind=row.kind,
        outcome=row.outcome,
        started_at=row.started_at,
        finished_at=row.finished_at,
        counters=counters,
        error=row.error,
        detail=dict(row.detail or {}),
    )


def _dead_letter(row: Row[Any]) -> DeadLetter:
    return DeadLetter(
        key=row.key,
        stage=row.stage,
        reason=row.reason,
        record=None if row.record is None else dict(row.record),
        raw=None if row.raw is None else dict(row.raw),
        attempts=int(row.attempts),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        last_run_id=row.last_run_id,
        resolved_at=row.resolved_at,
    )


def _bad_ledger_rows(
    conn: Connection, sync: str, keys: Sequence[str] | None
) -> list[tuple[str, str]]:
    """``(key, problem)`` of each ledger row of ``sync`` (of ``keys``, when given) whose JSON
    columns do not hold objects. Read as text, so that a bad row cannot stop the search."""
    query = select(
        t.ledger.c.key, *(sql_cast(t.ledger.c[c], Text) for c in corrupt.LEDGER_JSON)
    ).where(t.ledger.c.sync == sync)
    if keys is not None:
        query = query.where(t.ledger.c.key.in_(list(keys)))
    found = []
    for row in conn.execute(query):
        for column, text in zip(corrupt.LEDGER_JSON, row[1:], strict=True):
            problem = corrupt.text_problem(text)
            if problem is not None:
                found.append((str(row[0]), f"{column}: {problem}"))
                break
    return found
