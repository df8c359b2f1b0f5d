"""A checkpoint or ledger row whose JSON is corrupt (issue 20.6): a StateError naming the sync,
the record and what to do, on SQLite and PostgreSQL, and a run that fails on it is closed as
``failed``, not left ``running``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.fakes import MemoryDestination, MemorySource, booking, spec
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.state import LedgerRow, SqlStateStore, open_store
from ticketbridge.errors import StateError

SYNC = "mem"


def corrupt(store: SqlStateStore, sql: str, **params: str) -> None:
    with store.engine.begin() as conn:
        assert conn.execute(text(sql), params).rowcount == 1


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStateStore]:
    """Text that does not parse as JSON can only be stored in SQLite (PostgreSQL's json type
    refuses it), so those cases run there; wrong shapes run on both backends."""
    opened = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.close()


@pytest.mark.parametrize("value", ["[1, 2]", '"text"'])
def test_a_checkpoint_of_the_wrong_shape_is_an_error_naming_the_sync_and_what_to_do(
    store: SqlStateStore, value: str
) -> None:
    check_checkpoint(store, value)


def test_a_checkpoint_that_is_not_json_is_an_error_naming_the_sync_and_what_to_do(
    sqlite_store: SqlStateStore,
) -> None:
    check_checkpoint(sqlite_store, "{not json")


def check_checkpoint(store: SqlStateStore, value: str) -> None:
    store.set_checkpoint(SYNC, {"position": {"page": 3}})
    corrupt(store, "UPDATE checkpoints SET data = :v WHERE sync = :s", v=value, s=SYNC)
    with pytest.raises(StateError) as caught:
        store.get_checkpoint(SYNC)
    message = str(caught.value)
    assert f"checkpoint of sync {SYNC!r}" in message
    assert f"ticketbridge checkpoint {SYNC} --set null" in message
    store.set_checkpoint(SYNC, None)  # what the message says to do
    assert store.get_checkpoint(SYNC) is None


@pytest.mark.parametrize(("column", "value"), [("hashes", '"h"'), ("dest_ids", "[]")])
def test_a_ledger_row_of_the_wrong_shape_is_an_error_naming_the_record(
    store: SqlStateStore, column: str, value: str
) -> None:
    check_ledger(store, column, value)


def test_a_ledger_row_that_is_not_json_is_an_error_naming_the_record(
    sqlite_store: SqlStateStore,
) -> None:
    check_ledger(sqlite_store, "hashes", "{oops")


def check_ledger(store: SqlStateStore, column: str, value: str) -> None:
    lease = store.acquire_lease(SYNC, "w", 60)
    assert lease is not None
    run_id = store.start_run(SYNC, "run", lease)
    good = [LedgerRow(key=f"k{i}", hashes={"b": "h"}, last_outcome="ok") for i in range(3)]
    store.commit_batch(lease, run_id, ledger=good)
    # ``column`` is one of two names from the parametrisation, not input.
    corrupt(store, f"UPDATE ledger SET {column} = :v WHERE key = 'k1'", v=value)  # noqa: S608
    with pytest.raises(StateError) as caught:
        store.get_ledger(SYNC, ["k0", "k1", "k2"])
    message = str(caught.value)
    assert "'k1'" in message and column in message and "'k0'" not in message
    assert f"DELETE FROM ledger WHERE sync = '{SYNC}' AND key = 'k1'" in message  # noqa: S608
    with pytest.raises(StateError, match="'k1'"):
        list(store.iter_ledger(SYNC))
    assert set(store.get_ledger(SYNC, ["k0", "k2"])) == {"k0", "k2"}  # the others still read


def test_a_run_on_a_corrupt_checkpoint_fails_and_is_not_left_running(
    store: SqlStateStore,
) -> None:
    store.set_checkpoint(SYNC, {"cursor": "yesterday-ish"})
    result = asyncio.run(
        run_sync(store, spec(strategy="cursor"), MemorySource([booking(1)]), MemoryDestination())
    )
    assert result.outcome == "failed" and result.exit_code == 1
    assert "checkpoint of sync 'mem'" in (result.error or "")
    assert "'yesterday-ish' is not an ISO date-time" in (result.error or "")
    [run] = store.list_runs(SYNC)
    assert run.outcome == "failed" and run.finished_at is not None


def test_an_operator_can_replace_a_corrupt_checkpoint_and_the_old_text_is_recorded(
    store: SqlStateStore,
) -> None:
    store.set_checkpoint(SYNC, {"position": {"page": 3}})
    corrupt(store, "UPDATE checkpoints SET data = :v WHERE sync = :s", v="[7]", s=SYNC)
    run_id = store.operator_set_checkpoint(SYNC, None, "alice", None)
    assert store.get_checkpoint(SYNC) is None
    run = store.get_run(run_id)
    assert run is not None and run.detail["old"] == {"corrupt": "[7]"}
