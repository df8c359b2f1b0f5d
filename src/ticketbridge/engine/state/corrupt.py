"""Stored JSON that does not decode, or is not the object the engine wrote (a state file
edited by hand, a disk fault): a :class:`StateError` naming the sync, the record and what to
do, instead of a traceback from deep inside a run.

SQLite keeps JSON as text, so anything can end up there; PostgreSQL's ``json`` type only
refuses what does not parse, so a wrong shape (a list, a string) is checked on both.

Free of SQLAlchemy: the engine's checkpoint windows raise these errors too, and importing
them must not load the store (bench/README.md, "Start-up"). The query that finds bad ledger
rows is in ``sql.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

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


def text_problem(text: str | None) -> str | None:
    """Why a stored JSON column's text is not a JSON object; None when it is one."""
    if text is None:
        return "empty"
    try:
        return shape_problem(orjson.loads(text))
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"


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
