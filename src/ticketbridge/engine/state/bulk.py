"""An upsert of many rows, compiled once and handed to the driver's ``executemany``.

Every batch of a run upserts its ledger rows in one statement. Through ``Connection.execute``
SQLAlchemy builds each row's parameters again in Python (a dict per row, then each column's
type processing), which came to more than a third of a batch's commit: 5.5 to 6.3 ms of CPU
for 500 rows, 3.2 to 3.6 ms this way (``python -m bench.engine_cost``; bench/README.md,
round 8). Here the statement is compiled once per dialect, each column's bind processor is
looked up once, and a value that is the same for every row (the sync, the time, the run) is
processed once per call. What reaches the database is what ``Connection.execute`` would send:
the same SQL, the same processors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.sql.dml import Insert

Processor = Callable[[Any], Any]


class BulkUpsert:
    """``INSERT .. ON CONFLICT (keys) DO UPDATE SET`` every other column, for ``table``.

    ``insert`` is the dialect's ``insert`` (SQLite's or PostgreSQL's: both have
    ``on_conflict_do_update``). Rows are given as values in the table's column order.
    """

    def __init__(self, table: Table, insert: Callable[[Table], Insert]) -> None:
        self._table = table
        self._insert = insert
        self._columns = [c.name for c in table.columns]
        self._compiled: dict[str, tuple[str, list[int] | None, list[Processor | None]]] = {}

    def _for(self, conn: Connection) -> tuple[str, list[int] | None, list[Processor | None]]:
        dialect = conn.dialect
        got = self._compiled.get(dialect.name)
        if got is None:
            stmt: Any = self._insert(self._table)
            keys = list(self._table.primary_key.columns)
            rest = [n for n in self._columns if n not in {k.name for k in keys}]
            stmt = stmt.on_conflict_do_update(
                index_elements=keys, set_={name: stmt.excluded[name] for name in rest}
            )
            compiled = stmt.compile(dialect=dialect)
            order = None  # named parameters: a dict per row
            if compiled.positional:
                order = [self._columns.index(name) for name in compiled.positiontup or ()]
                if order == list(range(len(self._columns))):
                    order = []  # positional in column order: the values as they are
            processors: list[Processor | None] = [
                c.type.dialect_impl(dialect).bind_processor(dialect) for c in self._table.columns
            ]
            got = (str(compiled), order, processors)
            self._compiled[dialect.name] = got
        return got

    def run(
        self,
        conn: Connection,
        rows: Iterable[Sequence[Any]],
        same: Mapping[str, Any],
    ) -> None:
        """Upsert ``rows``: each the values of the columns not in ``same``, in column order;
        ``same`` holds the values every row shares, by column name."""
        sql, order, processors = self._for(conn)
        shared: dict[int, Any] = {}
        for name, value in same.items():
            index = self._columns.index(name)
            process = processors[index]
            shared[index] = process(value) if process is not None else value
        template = [shared.get(i) for i in range(len(self._columns))]
        slots = [i for i in range(len(self._columns)) if i not in shared]
        processed = [
            (n, process)
            for n, slot in enumerate(slots)
            if (process := processors[slot]) is not None
        ]
        out: list[Any] = []
        for row in rows:
            given = list(row)
            for n, process in processed:
                given[n] = process(given[n])
            values = template.copy()
            for slot, value in zip(slots, given, strict=True):
                values[slot] = value
            if order is None:
                out.append(dict(zip(self._columns, values, strict=True)))
            else:
                out.append(tuple([values[i] for i in order] if order else values))
        if out:
            conn.exec_driver_sql(sql, out)
