"""A look at a sync's checkpoint in a SQLite state file, without SQLAlchemy.

Why: a run's first read depends only on its checkpoint, and opening the state store (importing
SQLAlchemy, checking the schema, taking the lease, recording the run) takes a few tenths of a
second. The runtime reads the checkpoint here, starts the source's reader with it, and opens
the store meanwhile; the run then reads the checkpoint again through the store, under its
lease, and uses the started reader only if its first request is the same
(``ProcessSource.prestart``). So nothing here needs to be right: any doubt is None, and the
run starts its reader the usual way.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

_PREFIX = "sqlite:///"


def sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL (relative to the working directory, as
    SQLAlchemy reads it); None for any other URL (PostgreSQL, in memory, with options)."""
    if not url.startswith(_PREFIX) or "?" in url:
        return None
    path = url[len(_PREFIX) :]
    return Path(path) if path and path != ":memory:" else None


def peek_checkpoint(
    url: str, sync: str, leases: tuple[str, ...] = (), now: datetime | None = None
) -> dict[str, Any] | None:
    """``sync``'s stored checkpoint ({} when it has none yet) in an existing ticketbridge
    SQLite state file, opened read-only; None when that cannot be told, or when one of
    ``leases`` is held until after ``now`` (the run would be skipped: better not to read)."""
    path = sqlite_file(url)
    if path is None or not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
        try:
            row = conn.execute("SELECT data FROM checkpoints WHERE sync = ?", (sync,)).fetchone()
            held = [
                until
                for name in leases
                for (until,) in conn.execute(
                    "SELECT acquired_until FROM leases WHERE sync = ?", (name,)
                )
            ]
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # no such table (a new file), locked, or not a database
    if _any_held(held, now or datetime.now(UTC)):
        return None
    if row is None:
        return {}
    try:
        data = orjson.loads(row[0])
    except (orjson.JSONDecodeError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _any_held(until: list[Any], now: datetime) -> bool:
    """Whether a lease's ``acquired_until`` (naive UTC text on SQLite) is still ahead; a value
    that does not parse counts as held."""
    for value in until:
        try:
            ends = datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
        except ValueError:
            return True
        if ends > now:
            return True
    return False
