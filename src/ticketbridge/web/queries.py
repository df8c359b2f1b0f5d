"""Read-only queries the pages need beyond the StateStore protocol: filtered and paged run
history and dead letters, counts, and the Supplier API's reservations.

They read the very tables the engine writes (``engine/state/tables.py``,
``supplier/reservations.py``) through the store's own engine: the console keeps no state of
its own. Every list is bounded (``LIMIT``) and paged by keyset, so a page costs the same on a
state of ten runs or of ten thousand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, literal_column, or_, select, tuple_

from ticketbridge.engine.state import tables as t
from ticketbridge.engine.state.base import DeadLetter, RunCounters, RunRow
from ticketbridge.engine.state.sql import SqlStateStore
from ticketbridge.supplier.reservations import reservations as r

PAGE = 50
ONE: Any = literal_column("1")  # what a bounded count selects: nothing an index lacks
COUNT_CAP = 10_000  # counts stop here ("10,000+"): a count must not cost a full scan
WAITING_CAP = 1_000  # dead letters waiting, on the overview and sync pages ("1,000+")
AGES = {
    "": None,
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


def _run(row: Any) -> RunRow:
    counters = RunCounters(
        **{k: int(v) for k, v in (row.counters or {}).items() if k in RunCounters.__annotations__}
    )
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


def _letter(row: Any) -> DeadLetter:
    mapping = row._mapping
    record, raw = mapping.get("record"), mapping.get("raw")
    return DeadLetter(
        key=row.key,
        stage=row.stage,
        reason=row.reason,
        record=None if record is None else dict(record),
        raw=None if raw is None else dict(raw),
        attempts=int(row.attempts),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        last_run_id=row.last_run_id,
        resolved_at=row.resolved_at,
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- runs ----------------------------------------------------------------------------------


@dataclass
class RunFilter:
    outcome: str = ""
    kind: str = ""
    before: int | None = None  # keyset: runs with a smaller id (older)
    since: datetime | None = None


def runs_page(
    store: SqlStateStore, sync: str, flt: RunFilter, limit: int = PAGE
) -> tuple[list[RunRow], int | None]:
    """One page of a sync's runs, newest first, and the ``before`` of the next page."""
    query = select(t.runs).where(t.runs.c.sync == sync)
    if flt.outcome:
        query = query.where(t.runs.c.outcome == flt.outcome)
    if flt.kind:
        query = query.where(t.runs.c.kind == flt.kind)
    if flt.before is not None:
        query = query.where(t.runs.c.id < flt.before)
    if flt.since is not None:
        query = query.where(t.runs.c.started_at >= flt.since)
    query = query.order_by(t.runs.c.id.desc()).limit(limit + 1)
    with store.engine.connect() as conn:
        rows = [_run(row) for row in conn.execute(query)]
    more = rows[limit].id + 1 if len(rows) > limit else None
    return rows[:limit], more


def chart_runs(store: SqlStateStore, sync: str, limit: int = 60) -> list[RunRow]:
    """The sync's last ``limit`` runs that moved records (not skipped, planned or set by
    hand), oldest first: the chart's bars."""
    query = (
        select(t.runs)
        .where(
            t.runs.c.sync == sync,
            t.runs.c.kind.in_(("run", "backfill", "retry")),
            t.runs.c.outcome != "skipped",
        )
        .order_by(t.runs.c.id.desc())
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [_run(row) for row in conn.execute(query)][::-1]


def last_run(store: SqlStateStore, sync: str, *, finished: bool = False) -> RunRow | None:
    query = select(t.runs).where(t.runs.c.sync == sync)
    if finished:
        query = query.where(t.runs.c.kind.in_(("run", "backfill", "retry")))
        query = query.where(t.runs.c.outcome.in_(("ok", "partial")))
    with store.engine.connect() as conn:
        row = conn.execute(query.order_by(t.runs.c.id.desc()).limit(1)).one_or_none()
    return None if row is None else _run(row)


def running_run(store: SqlStateStore, sync: str) -> int | None:
    query = (
        select(t.runs.c.id)
        .where(t.runs.c.sync == sync, t.runs.c.outcome == "running")
        .order_by(t.runs.c.id.desc())
        .limit(1)
    )
    with store.engine.connect() as conn:
        found = conn.execute(query).scalar_one_or_none()
    return None if found is None else int(found)


# --- dead letters --------------------------------------------------------------------------


@dataclass
class LetterFilter:
    sync: str = ""
    reason: str = ""
    stage: str = ""
    age: str = ""  # one of AGES: first seen within that long
    older: str = ""  # one of AGES: first seen longer ago than that
    status: str = "open"  # open | resolved | all
    after: tuple[datetime, str, str] | None = None  # keyset (first_seen, sync, key), newest first
    syncs: list[str] = field(default_factory=list)  # the project's syncs (the filter's choices)

    def token(self, row: tuple[datetime, str, str]) -> str:
        return json.dumps([row[0].isoformat(), row[1], row[2]])

    @staticmethod
    def parse_after(value: str | None) -> tuple[datetime, str, str] | None:
        if not value:
            return None
        try:
            seen, sync, key = json.loads(value)
            return datetime.fromisoformat(seen), str(sync), str(key)
        except (ValueError, TypeError):
            return None


def _letters_where(
    query: Select[Any], flt: LetterFilter, now: datetime, dialect: str
) -> Select[Any]:
    """The filter's conditions. They test only columns of ix_dead_letters_newest and
    ix_dead_letters_sync_newest, so a page's candidates are found in an index alone."""
    dl = t.dead_letters
    resolved: Any = dl.c.resolved_at
    if flt.sync:
        query = query.where(dl.c.sync == flt.sync)
    elif dialect == "sqlite":
        # Every sync's, newest first, walks ix_dead_letters_newest; without this wrapper
        # SQLite may prefer skip-scanning the (sync, resolved_at) index and sorting every row
        # (it did once ANALYZE had run: 0.8 s at 100,000 dead letters). PostgreSQL's planner
        # needs no help, and would misjudge the wrapped condition.
        resolved = func.coalesce(dl.c.resolved_at, None)
    if flt.status == "open":
        query = query.where(resolved.is_(None))
    elif flt.status == "resolved":
        query = query.where(resolved.is_not(None))
    if flt.stage:
        query = query.where(dl.c.stage == flt.stage)
    if flt.reason:
        query = query.where(dl.c.reason.like(_like(flt.reason), escape="\\"))
    if AGES.get(flt.age) is not None:
        query = query.where(dl.c.first_seen >= now - AGES[flt.age])  # type: ignore[operator]
    if AGES.get(flt.older) is not None:
        query = query.where(dl.c.first_seen < now - AGES[flt.older])  # type: ignore[operator]
    return query


# A list needs neither payload: a page of 50 should not read (nor sort) 50 JSON documents.
_LISTED = [c for c in t.dead_letters.c if c.name not in ("record", "raw")]


def letters_page(
    store: SqlStateStore, flt: LetterFilter, limit: int = PAGE
) -> tuple[list[tuple[str, DeadLetter]], str | None, int]:
    """One page of (sync, dead letter) without payloads, newest first; the next page's
    token; how many match (at most :data:`COUNT_CAP` + 1: more than the cap).

    The page's keys are chosen first from the index alone (first_seen, sync, key and the
    filtered columns), then only those rows are read.
    """
    dl = t.dead_letters
    now = datetime.now(UTC)
    dialect = store.engine.dialect.name
    newest = (dl.c.first_seen.desc(), dl.c.sync.desc(), dl.c.key.desc())
    keys = _letters_where(select(dl.c.first_seen, dl.c.sync, dl.c.key), flt, now, dialect)
    if flt.after is not None:
        keys = keys.where(tuple_(dl.c.first_seen, dl.c.sync, dl.c.key) < tuple_(*flt.after))
    page = keys.order_by(*newest).limit(limit + 1).subquery()
    query = (
        select(*_LISTED)
        .join_from(dl, page, and_(dl.c.sync == page.c.sync, dl.c.key == page.c.key))
        .order_by(*newest)
    )
    count = select(func.count()).select_from(
        _letters_where(select(ONE), flt, now, dialect).limit(COUNT_CAP + 1).subquery()
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
        # A first page that is not full is every match: no second pass over the table (a
        # reason that few records have would otherwise be searched for twice).
        short = flt.after is None and len(rows) <= limit
        total = len(rows) if short else int(conn.execute(count).scalar_one())
    found = [(row.sync, _letter(row)) for row in rows[:limit]]
    more = None
    if len(rows) > limit:
        last = rows[limit - 1]
        more = flt.token((last.first_seen, last.sync, last.key))
    return found, more, total


def run_letters(
    store: SqlStateStore, sync: str, run_id: int, limit: int = PAGE
) -> tuple[list[DeadLetter], int]:
    """The records ``run_id`` rejected (last failed in it), latest first, and how many
    (counted up to :data:`COUNT_CAP` + 1)."""
    dl = t.dead_letters
    where = (dl.c.sync == sync, dl.c.last_run_id == run_id)
    # Ordered by a column no index has, so the planner picks ix_dead_letters_sync_last_run_id
    # and sorts the run's few rows, instead of walking the sync's in an index's order.
    query = select(*_LISTED).where(*where).order_by(dl.c.last_seen.desc(), dl.c.key).limit(limit)
    count = select(func.count()).select_from(
        select(ONE).where(*where).limit(COUNT_CAP + 1).subquery()
    )
    with store.engine.connect() as conn:
        rows = [_letter(row) for row in conn.execute(query)]
        total = int(conn.execute(count).scalar_one())
    return rows, total


def open_letters(store: SqlStateStore, sync: str) -> int:
    dl = t.dead_letters
    query = (
        select(func.count()).select_from(dl).where(dl.c.sync == sync, dl.c.resolved_at.is_(None))
    )
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def csv_letters(
    store: SqlStateStore, sync: str, include_resolved: bool, batch: int = 2000
) -> Iterator[DeadLetter]:
    """The dead letters ``ticketbridge errors --csv`` writes, in its order (first seen, key),
    without payloads, ``batch`` at a time (keyset): a download of 100,000 holds 2,000."""
    dl = t.dead_letters
    base = select(*_LISTED).where(dl.c.sync == sync)
    if not include_resolved:
        base = base.where(dl.c.resolved_at.is_(None))
    after: tuple[datetime, str] | None = None
    while True:
        query = base
        if after is not None:
            # A row value comparison: both databases seek the index to it (an OR of the
            # two conditions made SQLite walk from the start again for every batch).
            query = query.where(tuple_(dl.c.first_seen, dl.c.key) > tuple_(*after))
        with store.engine.connect() as conn:
            rows = conn.execute(query.order_by(dl.c.first_seen, dl.c.key).limit(batch)).all()
        yield from (_letter(row) for row in rows)
        if len(rows) < batch:
            return
        after = (rows[-1].first_seen, rows[-1].key)


def letter(store: SqlStateStore, sync: str, key: str) -> DeadLetter | None:
    dl = t.dead_letters
    with store.engine.connect() as conn:
        row = conn.execute(select(dl).where(dl.c.sync == sync, dl.c.key == key)).one_or_none()
    return None if row is None else _letter(row)


# --- Tiqets sales --------------------------------------------------------------------------


def sales_page(
    store: SqlStateStore, status: str = "", before: str | None = None, limit: int = PAGE
) -> tuple[list[Any], str | None, dict[str, int]]:
    """Reservations newest first (keyset on created_at, id), the next page's token, and how
    many there are of each status."""
    query = select(r)
    if status:
        query = query.where(r.c.status == status)
    if before:
        try:
            stamp, rid = json.loads(before)
            moment = datetime.fromisoformat(stamp)
            query = query.where(
                or_(r.c.created_at < moment, and_(r.c.created_at == moment, r.c.id < rid))
            )
        except (ValueError, TypeError):
            pass
    query = query.order_by(r.c.created_at.desc(), r.c.id.desc()).limit(limit + 1)
    counts_q = select(r.c.status, func.count()).group_by(r.c.status)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
        counts = {str(s): int(n) for s, n in conn.execute(counts_q)}
    more = None
    if len(rows) > limit:
        last = rows[limit - 1]
        more = json.dumps([last.created_at.isoformat(), last.id])
    return list(rows[:limit]), more, counts
