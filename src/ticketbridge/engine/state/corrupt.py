"""Stored JSON that does not decode, or is not the object the engine wrote (a state file
edited by hand, a disk fault): a :class:`StateError` naming the sync, the record and what to
do, instead of a traceback from deep inside a run.

SQLite keeps JSON as text, so anything can end up there; PostgreSQL's ``json`` type only
refuses what does not parse, so a wrong shape (a list, a string) is checked on both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Text, cast, select

from ticketbridge.engine.state import tables as t
from ticketbridge.errors import StateError

LEDGER_JSON = ("hashes", "dest_ids")


def shape_problem(value: Any) -> str | None:
    """Why a decoded value is not a JSON object; None when it is one."""
    if isinstance(value, dict):
        return None
    return f"a JSON {type(value).__name__}, not an object"


def checkpoint_error(sync: str, problem: str, store: str) -> StateError:
    return StateError(
        f"the checkpoint of sync {sync!r} in {store} is corrupt ({problem}): "
        f"`ticketbridge checkpoint {sync} --set null` forgets it, so the next run starts "
        "from the sync's window or first page again (the ledger keeps unchanged records "
        "from being sent again), or restore the state database from a backup"
    )


def as_recorded(text: str | None) -> Any:
    """A stored JSON column read as text, decoded for the record of what it was: a value
    that is not a JSON object is kept as ``{"corrupt": <its text>}``, not raised."""
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"corrupt": text[:1000]}
    return value if isinstance(value, dict) else {"corrupt": text[:1000]}


def _problem(text: str | None) -> str | None:
    if text is None:
        return "empty"
    try:
        return shape_problem(orjson.loads(text))
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"


def bad_ledger_rows(
    conn: Connection, sync: str, keys: Sequence[str] | None
) -> list[tuple[str, str]]:
    """``(key, problem)`` of each ledger row of ``sync`` (of ``keys``, when given) whose JSON
    columns do not hold objects. Read as text, so that a bad row cannot stop the search."""
    query = select(t.ledger.c.key, *(cast(t.ledger.c[c], Text) for c in LEDGER_JSON)).where(
        t.ledger.c.sync == sync
    )
    if keys is not None:
        query = query.where(t.ledger.c.key.in_(list(keys)))
    found = []
    for row in conn.execute(query):
        for column, text in zip(LEDGER_JSON, row[1:], strict=True):
            problem = _problem(text)
            if problem is not None:
                found.append((str(row[0]), f"{column}: {problem}"))
                break
    return found


def ledger_error(sync: str, bad: Iterable[tuple[str, str]], store: str) -> StateError:
    rows = list(bad)
    named = "; ".join(f"{key!r} ({problem})" for key, problem in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    first = (rows[0][0] if rows else "KEY").replace("'", "''")
    quoted_sync = sync.replace("'", "''")
    # Advice in a message, never executed here.
    delete = f"DELETE FROM ledger WHERE sync = '{quoted_sync}' AND key = '{first}'"  # noqa: S608
    return StateError(
        f"the ledger of sync {sync!r} in {store} has corrupt rows: {named}{more}. Restore the "
        "state database from a backup, or delete those rows so that their records are "
        f"written again (an upsert: no duplicate), e.g. {delete}"
    )
