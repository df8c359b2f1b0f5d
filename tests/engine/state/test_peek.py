"""The early look at a checkpoint (``state/peek.py``): the store's value, or None when unsure."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from ticketbridge.engine.state.peek import peek_checkpoint, sqlite_file
from ticketbridge.engine.state.sql import open_store


def test_it_reads_what_the_store_wrote(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    try:
        assert peek_checkpoint(url, "s") == {}, "a state file without a checkpoint: read all"
        store.set_checkpoint("s", {"position": {"page": 3}, "cursor": "2026-12-01T00:00:00Z"})
        assert peek_checkpoint(url, "s") == store.get_checkpoint("s")
    finally:
        store.close()


def test_a_held_lease_means_no_early_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    try:
        lease = store.acquire_lease("s", "other-host:1", 60)
        assert lease is not None
        assert peek_checkpoint(url, "s", ("s",)) is None, "held: the run would be skipped"
        assert peek_checkpoint(url, "s", ("organizer",)) == {}, "another lease is no matter"
        later = lease.acquired_until + timedelta(seconds=1)
        assert peek_checkpoint(url, "s", ("s",), now=later) == {}, "expired: free to read"
        store.release_lease(lease)
        assert peek_checkpoint(url, "s", ("s",)) == {}
    finally:
        store.close()


def test_anything_it_cannot_be_sure_of_is_none(tmp_path: Path) -> None:
    assert peek_checkpoint(f"sqlite:///{tmp_path / 'missing.db'}", "s") is None
    assert peek_checkpoint("postgresql://u@127.0.0.1/db", "s") is None
    assert peek_checkpoint("sqlite://", "s") is None
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.commit()
    assert peek_checkpoint(f"sqlite:///{foreign}", "s") is None
    (tmp_path / "text.db").write_text("not a database")
    assert peek_checkpoint(f"sqlite:///{tmp_path / 'text.db'}", "s") is None

    url = f"sqlite:///{tmp_path / 'state.db'}"
    open_store(url).close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute(
            "INSERT INTO checkpoints (sync, data, updated_at) VALUES ('s', '[1, 2]', '2026')"
        )
    assert peek_checkpoint(url, "s") is None, "not an object: the store will say why"


def test_only_a_plain_sqlite_file_url_names_a_file() -> None:
    assert sqlite_file("sqlite:///state.db") == Path("state.db")
    assert sqlite_file("sqlite:////var/lib/tb/state.db") == Path("/var/lib/tb/state.db")
    assert sqlite_file("sqlite:///state.db?timeout=5") is None
    assert sqlite_file("sqlite:///:memory:") is None
