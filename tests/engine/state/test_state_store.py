"""The StateStore contract, run against every backend (see conftest: SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as sa_postgresql
from sqlalchemy.dialects import sqlite as sa_sqlite

from ticketbridge.engine.state import (
    DeadLetterIn,
    Lease,
    LedgerRow,
    RunCounters,
    SqlStateStore,
    StateStore,
    open_store,
    tables,
)
from ticketbridge.errors import LeaseLost, StateError

if TYPE_CHECKING:
    from tests.engine.state.conftest import FakeClock

SYNC = "ticketco-bookings-to-airship"
TTL = 60.0


def test_sql_store_satisfies_the_protocol(store: SqlStateStore) -> None:
    as_protocol: StateStore = store
    assert as_protocol is store


@pytest.fixture
def lease(store: SqlStateStore) -> Lease:
    taken = store.acquire_lease(SYNC, "worker-a", TTL)
    assert taken is not None
    return taken


@pytest.fixture
def run_id(store: SqlStateStore, lease: Lease) -> int:
    return store.start_run(SYNC, "run", lease)


# --- runs ------------------------------------------------------------------------------------


def test_a_run_left_running_is_crashed_when_the_next_run_takes_the_lease(
    store: SqlStateStore, clock: FakeClock, run_id: int
) -> None:
    """Issue 20.5: a killed run stayed ``running`` forever."""
    clock.advance(TTL + 1)  # the killed holder stops renewing; its lease expires
    assert store.acquire_lease(SYNC, "worker-b", TTL) is not None
    [killed] = store.list_runs(SYNC)
    assert killed.id == run_id and killed.outcome == "crashed"
    assert killed.finished_at is not None and "ended before it finished" in (killed.error or "")


def test_close_abandoned_runs_closes_only_runs_whose_lease_is_gone(
    store: SqlStateStore, clock: FakeClock, run_id: int
) -> None:
    other = store.acquire_lease("other-sync", "worker-c", TTL * 10)
    assert other is not None
    alive = store.start_run("other-sync", "run", other)
    assert store.close_abandoned_runs() == 0, "both leases held: nothing is abandoned"
    assert store.close_abandoned_runs(is_dead=lambda holder: holder == "worker-a") == 1
    outcomes = {r.id: r.outcome for r in store.list_runs()}
    assert outcomes == {run_id: "crashed", alive: "running"}
    clock.advance(TTL * 10 + 1)
    assert store.close_abandoned_runs() == 1
    assert store.list_runs("other-sync")[0].outcome == "crashed"


def test_start_run_records_a_running_run(
    store: SqlStateStore, lease: Lease, clock: FakeClock
) -> None:
    run_id = store.start_run(SYNC, "backfill", lease)

    run = store.get_run(run_id)
    assert run is not None
    assert (run.id, run.sync, run.kind, run.outcome) == (run_id, SYNC, "backfill", "running")
    assert run.started_at == clock.now
    assert run.started_at.tzinfo == UTC
    assert run.finished_at is None
    assert run.counters == RunCounters()
    assert run.error is None
    assert run.detail == {}


def test_finish_run_stores_outcome_counters_error_and_detail(
    store: SqlStateStore, lease: Lease, run_id: int, clock: FakeClock
) -> None:
    finished = clock.advance(30)
    store.finish_run(
        run_id,
        lease,
        "partial",
        RunCounters(read=10, created=7, rejected=3),
        error="budget exhausted",
        detail={"windows": ["2024-01-01"]},
    )

    run = store.get_run(run_id)
    assert run is not None
    assert run.outcome == "partial"
    assert run.finished_at == finished
    assert run.counters == RunCounters(read=10, created=7, rejected=3)
    assert run.error == "budget exhausted"
    assert run.detail == {"windows": ["2024-01-01"]}


def test_finish_run_without_lease_and_unknown_run(store: SqlStateStore) -> None:
    run_id = store.start_run(SYNC, "dry-run", None)
    store.finish_run(run_id, None, "ok", RunCounters(read=1))
    run = store.get_run(run_id)
    assert run is not None and run.outcome == "ok" and run.counters.read == 1

    assert store.get_run(run_id + 1000) is None
    with pytest.raises(StateError):
        store.finish_run(run_id + 1000, None, "ok", RunCounters())


def test_commit_batch_replaces_the_runs_counters_so_a_killed_run_shows_progress(
    store: SqlStateStore, lease: Lease, run_id: int
) -> None:
    store.commit_batch(lease, run_id, counters=RunCounters(read=500, created=500))
    store.commit_batch(lease, run_id, counters=RunCounters(read=1000, created=900, updated=100))
    store.commit_batch(lease, run_id)  # no counters: left as they are

    run = store.get_run(run_id)
    assert run is not None
    assert run.outcome == "running"
    assert run.counters == RunCounters(read=1000, created=900, updated=100)


def test_list_runs_newest_first_by_sync_with_limit(store: SqlStateStore, lease: Lease) -> None:
    ids = [store.start_run(SYNC, "run", lease) for _ in range(3)]
    other = store.start_run("other-sync", "run", None)

    assert [r.id for r in store.list_runs(SYNC)] == ids[::-1]
    assert [r.id for r in store.list_runs(SYNC, limit=2)] == ids[:0:-1]
    assert [r.id for r in store.list_runs()] == [other, *ids[::-1]]


def test_record_skipped_run(store: SqlStateStore, clock: FakeClock) -> None:
    run_id = store.record_skipped_run(SYNC, "running")

    run = store.get_run(run_id)
    assert run is not None
    assert run.outcome == "skipped"
    assert run.started_at == run.finished_at == clock.now
    assert run.detail == {"reason": "running"}
    assert [r.id for r in store.list_runs(SYNC)] == [run_id]


def test_a_run_keeps_the_detail_it_started_with_and_a_skipped_one_too(
    store: SqlStateStore, lease: Lease
) -> None:
    run_id = store.start_run(SYNC, "run", lease, {"started_by": "ada (operator)"})
    running = store.get_run(run_id)
    assert running is not None and running.detail == {"started_by": "ada (operator)"}

    skipped = store.get_run(store.record_skipped_run(SYNC, "running", {"started_by": "cli"}))
    assert skipped is not None
    assert skipped.detail == {"started_by": "cli", "reason": "running"}


def test_record_action_stores_a_finished_run_that_is_never_closed_as_crashed(
    store: SqlStateStore, clock: FakeClock
) -> None:
    run_id = store.record_action(
        SYNC,
        "dry-run",
        "ok",
        {"started_by": "ada", "plan": [{"key": "k1", "action": "create"}]},
        RunCounters(read=3, created=1),
    )
    store.close_abandoned_runs()

    run = store.get_run(run_id)
    assert run is not None
    assert (run.kind, run.outcome, run.error) == ("dry-run", "ok", None)
    assert run.started_at == run.finished_at == clock.now
    assert run.counters == RunCounters(read=3, created=1)
    assert run.detail["plan"] == [{"key": "k1", "action": "create"}]
    with pytest.raises(ValueError, match="finished"):
        store.record_action(SYNC, "checkpoint", "running", {})


def test_times_come_back_as_utc_whatever_zone_the_clock_uses(
    store: SqlStateStore, clock: FakeClock
) -> None:
    clock.now = datetime(2024, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    run_id = store.record_skipped_run(SYNC, "running")
    run = store.get_run(run_id)
    assert run is not None
    assert run.started_at == datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    assert run.started_at.utcoffset() == timedelta(0)


# --- checkpoints -----------------------------------------------------------------------------


def test_checkpoint_roundtrip_and_operator_override(
    store: SqlStateStore, lease: Lease, run_id: int
) -> None:
    assert store.get_checkpoint(SYNC) is None
    checkpoint = {"cursor": "2024-05-01T10:00:00Z", "page": {"after": 42}, "done": [1, 2]}

    store.commit_batch(lease, run_id, checkpoint=checkpoint)
    assert store.get_checkpoint(SYNC) == checkpoint

    store.commit_batch(lease, run_id, ledger=[LedgerRow("k")])  # checkpoint=None: unchanged
    assert store.get_checkpoint(SYNC) == checkpoint

    store.set_checkpoint(SYNC, {"cursor": "manual"})
    assert store.get_checkpoint(SYNC) == {"cursor": "manual"}
    assert store.get_checkpoint("other-sync") is None

    store.set_checkpoint(SYNC, None)
    assert store.get_checkpoint(SYNC) is None


def test_an_operator_setting_the_checkpoint_is_in_the_run_history(
    store: SqlStateStore, clock: FakeClock
) -> None:
    store.set_checkpoint(SYNC, {"position": {"paginationKey": "k9"}})
    run_id = store.operator_set_checkpoint(
        SYNC, {"position": {"paginationKey": "k2"}}, "alice@ops-host", None
    )
    assert store.get_checkpoint(SYNC) == {"position": {"paginationKey": "k2"}}
    row = store.get_run(run_id)
    assert row is not None
    assert (row.sync, row.kind, row.outcome) == (SYNC, "checkpoint", "ok")
    assert row.started_at == row.finished_at == clock.now
    assert row.detail == {
        "by": "alice@ops-host",
        "old": {"position": {"paginationKey": "k9"}},
        "new": {"position": {"paginationKey": "k2"}},
    }
    cleared = store.operator_set_checkpoint(SYNC, None, "bob", None)
    assert store.get_checkpoint(SYNC) is None
    assert store.get_run(cleared).detail["new"] is None  # type: ignore[union-attr]
    assert [r.kind for r in store.list_runs(SYNC)] == ["checkpoint", "checkpoint"]


def test_an_operator_checkpoint_under_a_lost_lease_writes_nothing(
    store: SqlStateStore, clock: FakeClock
) -> None:
    held = store.acquire_lease(SYNC, "cli", TTL)
    assert held is not None
    clock.advance(TTL + 1)
    assert store.acquire_lease(SYNC, "a-run", TTL) is not None
    with pytest.raises(LeaseLost):
        store.operator_set_checkpoint(SYNC, {"cursor": "x"}, "alice", held)
    assert store.get_checkpoint(SYNC) is None
    assert [r.kind for r in store.list_runs(SYNC)] == []


def test_a_failing_batch_writes_nothing(store: SqlStateStore, lease: Lease, run_id: int) -> None:
    store.commit_batch(lease, run_id, ledger=[LedgerRow("k1", {"booking": "h1"})])

    # A datetime is not JSON: the whole batch must be refused, not half applied.
    with pytest.raises(StateError):
        store.commit_batch(
            lease,
            run_id,
            ledger=[LedgerRow("k1", {"booking": "h2"}), LedgerRow("k2")],
            checkpoint={"cursor": datetime(2024, 1, 1, tzinfo=UTC)},
        )

    assert set(store.get_ledger(SYNC, ["k1", "k2"])) == {"k1"}
    assert store.get_ledger(SYNC, ["k1"])["k1"].hashes == {"booking": "h1"}
    assert store.get_checkpoint(SYNC) is None


# --- ledger ----------------------------------------------------------------------------------


def test_ledger_upsert_overwrites_whole_rows(
    store: SqlStateStore, lease: Lease, run_id: int, clock: FakeClock
) -> None:
    first = clock.now
    store.commit_batch(
        lease,
        run_id,
        ledger=[
            LedgerRow("b1", {"booking": "h1", "contact": "c1"}, {"booking": "9", "contact": "5"}),
            LedgerRow("b2", {"booking": "h2"}, {}, last_outcome="rejected", status="cancelled"),
        ],
    )
    later = clock.advance(10)
    store.commit_batch(
        lease, run_id, ledger=[LedgerRow("b1", {"booking": "h1b"}, {"booking": "9"})]
    )

    rows = store.get_ledger(SYNC, ["b1", "b2", "missing"])
    assert set(rows) == {"b1", "b2"}
    assert rows["b1"].hashes == {"booking": "h1b"}
    assert rows["b1"].dest_ids == {"booking": "9"}
    assert rows["b1"].last_outcome == "ok"
    assert rows["b1"].updated_at == later
    assert rows["b2"].last_outcome == "rejected"
    assert rows["b2"].status == "cancelled"
    assert rows["b2"].updated_at == first
    assert store.count_ledger(SYNC) == 2
    assert store.count_ledger("other-sync") == 0
    assert store.get_ledger("other-sync", ["b1"]) == {}


def test_ledger_rows_are_stored_as_sqlalchemys_own_upsert_stores_them(
    store: SqlStateStore, lease: Lease, run_id: int, clock: FakeClock
) -> None:
    # commit_batch hands its compiled upsert to the driver (engine/state/bulk.py): what it
    # stores must be what Connection.execute of the same upsert stores, to the character.
    rows = [
        LedgerRow("b1", {"booking": "h1", "contact": "c1"}, {"booking": "9", "contact": "ø"}),
        LedgerRow("b2", {}, {}, last_outcome="rejected", status="cancelled"),
    ]
    store.commit_batch(lease, run_id, ledger=rows)
    insert = sa_postgresql.insert if store.engine.dialect.name == "postgresql" else sa_sqlite.insert
    with store.engine.begin() as conn:
        stmt = insert(tables.ledger)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[tables.ledger.c.sync, tables.ledger.c.key],
                set_={"hashes": stmt.excluded.hashes},
            ),
            [
                {
                    "sync": "by-sqlalchemy",
                    "key": row.key,
                    "hashes": row.hashes,
                    "dest_ids": row.dest_ids,
                    "last_outcome": row.last_outcome,
                    "status": row.status,
                    "updated_at": clock.now,
                    "run_id": run_id,
                }
                for row in rows
            ],
        )
    c = tables.ledger.c
    as_text = [sa.cast(col, sa.Text) for col in (c.hashes, c.dest_ids, c.updated_at)]
    query = sa.select(c.key, *as_text, c.last_outcome, c.status, c.run_id).order_by(c.key)
    with store.engine.connect() as conn:
        ours = conn.execute(query.where(c.sync == SYNC)).all()
        theirs = conn.execute(query.where(c.sync == "by-sqlalchemy")).all()
    assert len(ours) == 2
    assert ours == theirs


def test_ledger_key_repeated_in_one_batch_keeps_the_last_row(
    store: SqlStateStore, lease: Lease, run_id: int
) -> None:
    store.commit_batch(
        lease,
        run_id,
        ledger=[LedgerRow("k", {"booking": "old"}), LedgerRow("k", {"booking": "new"})],
    )
    assert store.get_ledger(SYNC, ["k"])["k"].hashes == {"booking": "new"}


def test_ledger_bulk_batches_and_chunked_lookup_of_many_keys(
    store: SqlStateStore, lease: Lease, run_id: int
) -> None:
    keys = [f"booking:{i:05d}" for i in range(2600)]
    for start in range(0, len(keys), 1000):  # destination-batch sized commits
        store.commit_batch(
            lease,
            run_id,
            ledger=[
                LedgerRow(k, {"booking": f"h{k}"}, {"booking": k})
                for k in keys[start : start + 1000]
            ],
        )

    wanted = [*keys, *keys[:50], *(f"absent:{i}" for i in range(120))]  # > several IN chunks
    rows = store.get_ledger(SYNC, wanted)
    assert len(rows) == len(keys)
    assert all(rows[k].hashes == {"booking": f"h{k}"} for k in keys)
    assert store.count_ledger(SYNC) == len(keys)


def test_iter_ledger_pages_every_row_of_the_sync_once(
    store: SqlStateStore, lease: Lease, run_id: int
) -> None:
    keys = [f"ticket:test:{i:03d}" for i in range(7)]
    store.commit_batch(
        lease,
        run_id,
        ledger=[LedgerRow(k, {"pass": f"h{k}"}, {"url": f"https://x/{k}"}) for k in keys[:5]],
    )
    other = store.acquire_lease("other-sync", "worker-a", TTL)
    assert other is not None
    store.commit_batch(
        other, store.start_run("other-sync", "run", other), ledger=[LedgerRow("ticket:zzz")]
    )
    assert list(store.iter_ledger("missing-sync")) == []
    seen = []
    for n, row in enumerate(store.iter_ledger(SYNC, batch=2)):
        seen.append(row)
        if n == 0:  # committed mid-iteration: after the first page it is read, once
            store.commit_batch(
                lease, run_id, ledger=[LedgerRow(k, {}, {"url": "late"}) for k in keys[5:]]
            )
    assert sorted(r.key for r in seen) == keys, "every row once, none of another sync"
    assert len({r.key for r in seen}) == len(seen)
    by_key = {r.key: r for r in seen}
    assert by_key[keys[0]].dest_ids == {"url": f"https://x/{keys[0]}"}
    assert by_key[keys[0]].hashes == {"pass": f"h{keys[0]}"}
    assert by_key[keys[6]].dest_ids == {"url": "late"}


# --- dead letters ----------------------------------------------------------------------------


def test_dead_letter_insert_then_bump(
    store: SqlStateStore, lease: Lease, run_id: int, clock: FakeClock
) -> None:
    first = clock.now
    store.commit_batch(
        lease,
        run_id,
        dead_letters=[
            DeadLetterIn("b1", "mapping", "no email", raw={"id": 1}),
            DeadLetterIn("b2", "destination", "422 invalid phone", record={"key": "b2"}),
        ],
    )
    letters = {d.key: d for d in store.list_dead_letters(SYNC)}
    assert letters["b1"].attempts == 1
    assert (letters["b1"].stage, letters["b1"].reason) == ("mapping", "no email")
    assert (letters["b1"].raw, letters["b1"].record) == ({"id": 1}, None)
    assert letters["b2"].record == {"key": "b2"} and letters["b2"].raw is None
    assert letters["b1"].first_seen == letters["b1"].last_seen == first
    assert letters["b1"].last_run_id == run_id
    assert letters["b1"].resolved_at is None

    second_run = store.start_run(SYNC, "retry", lease)
    later = clock.advance(3600)
    store.commit_batch(
        lease,
        second_run,
        dead_letters=[DeadLetterIn("b1", "destination", "409 conflict", record={"key": "b1"})],
    )
    bumped = {d.key: d for d in store.list_dead_letters(SYNC)}["b1"]
    assert bumped.attempts == 2
    assert (bumped.stage, bumped.reason) == ("destination", "409 conflict")
    assert bumped.record == {"key": "b1"}
    assert bumped.raw is None
    assert bumped.first_seen == first
    assert bumped.last_seen == later
    assert bumped.last_run_id == second_run


def test_resolved_dead_letters_are_hidden_and_reopen_when_they_fail_again(
    store: SqlStateStore, lease: Lease, run_id: int, clock: FakeClock
) -> None:
    store.commit_batch(
        lease,
        run_id,
        dead_letters=[DeadLetterIn(k, "destination", "500") for k in ("a", "b", "c")],
    )
    resolved_at = clock.advance(5)
    store.commit_batch(lease, run_id, resolved=["a", "b", "never-failed"])

    assert [d.key for d in store.list_dead_letters(SYNC)] == ["c"]
    everything = {d.key: d for d in store.list_dead_letters(SYNC, include_resolved=True)}
    assert set(everything) == {"a", "b", "c"}
    assert everything["a"].resolved_at == resolved_at

    clock.advance(5)
    store.commit_batch(lease, run_id, resolved=["a"])  # already resolved: keeps its time
    assert {d.key: d for d in store.list_dead_letters(SYNC, True)}["a"].resolved_at == resolved_at

    store.commit_batch(lease, run_id, dead_letters=[DeadLetterIn("a", "destination", "500")])
    reopened = {d.key: d for d in store.list_dead_letters(SYNC)}
    assert set(reopened) == {"a", "c"}
    assert reopened["a"].resolved_at is None
    assert reopened["a"].attempts == 2


def test_a_key_both_failed_and_resolved_in_one_batch_stays_failed(
    store: SqlStateStore, lease: Lease, run_id: int
) -> None:
    store.commit_batch(lease, run_id, dead_letters=[DeadLetterIn("k", "destination", "500")])
    store.commit_batch(
        lease, run_id, dead_letters=[DeadLetterIn("k", "destination", "503")], resolved=["k"]
    )
    assert [(d.key, d.reason) for d in store.list_dead_letters(SYNC)] == [("k", "503")]


def test_iter_retryable_pages_oldest_first_and_skips_this_runs_rows(
    store: SqlStateStore, lease: Lease, run_id: int, clock: FakeClock
) -> None:
    # Two keys per timestamp, so pages (batch=2, 3) split ties on first_seen.
    for group in (["e", "d"], ["c", "b"], ["a", "z"]):
        store.commit_batch(
            lease, run_id, dead_letters=[DeadLetterIn(k, "destination", "500") for k in group]
        )
        clock.advance(1)
    store.commit_batch(lease, run_id, resolved=["b"])
    retry_run = store.start_run(SYNC, "retry", lease)
    store.commit_batch(lease, retry_run, dead_letters=[DeadLetterIn("c", "destination", "500")])
    store.commit_batch(
        lease, run_id, dead_letters=[DeadLetterIn("other", "mapping", "x")]
    )  # newest
    other = store.start_run("other-sync", "run", None)
    assert other

    expected = ["d", "e", "a", "z", "other"]  # c: tried in retry_run; b: resolved
    for batch in (1, 2, 3, 500):
        keys = [d.key for d in store.iter_retryable(SYNC, retry_run, batch=batch)]
        assert keys == expected, batch

    # A never-tried run id sees every unresolved row.
    assert len(list(store.iter_retryable(SYNC, retry_run + 1000))) == 6


def test_iter_retryable_tolerates_commits_between_pages(
    store: SqlStateStore, lease: Lease, run_id: int, clock: FakeClock
) -> None:
    for i in range(7):
        store.commit_batch(lease, run_id, dead_letters=[DeadLetterIn(f"k{i}", "destination", "x")])
        clock.advance(1)
    retry_run = store.start_run(SYNC, "retry", lease)

    seen = []
    for letter in store.iter_retryable(SYNC, retry_run, batch=2):
        seen.append(letter.key)
        # Odd keys succeed, even keys fail again: both change rows the iterator still scans.
        if int(letter.key[1:]) % 2:
            store.commit_batch(lease, retry_run, resolved=[letter.key])
        else:
            store.commit_batch(
                lease, retry_run, dead_letters=[DeadLetterIn(letter.key, "destination", "again")]
            )

    assert seen == [f"k{i}" for i in range(7)]
    assert list(store.iter_retryable(SYNC, retry_run)) == []
    assert [d.key for d in store.list_dead_letters(SYNC)] == ["k0", "k2", "k4", "k6"]


# --- leases ----------------------------------------------------------------------------------


def test_acquire_lease_is_exclusive_until_it_expires(
    store: SqlStateStore, clock: FakeClock
) -> None:
    first = store.acquire_lease(SYNC, "worker-a", TTL)
    assert first is not None
    assert (first.sync, first.holder, first.token) == (SYNC, "worker-a", 1)
    assert first.acquired_until == clock.now + timedelta(seconds=TTL)

    assert store.acquire_lease(SYNC, "worker-b", TTL) is None
    assert store.acquire_lease(SYNC, "worker-a", TTL) is None  # not even its own holder
    assert store.acquire_lease("other-sync", "worker-b", TTL) is not None  # per sync

    clock.advance(TTL - 1)
    assert store.acquire_lease(SYNC, "worker-b", TTL) is None

    clock.advance(2)
    second = store.acquire_lease(SYNC, "worker-b", TTL)
    assert second is not None
    assert second.holder == "worker-b"
    assert second.token > first.token


def test_renew_extends_the_lease(store: SqlStateStore, lease: Lease, clock: FakeClock) -> None:
    clock.advance(TTL - 10)
    renewed = store.renew_lease(lease, TTL)
    assert renewed.token == lease.token
    assert renewed.acquired_until == clock.now + timedelta(seconds=TTL)

    clock.advance(TTL - 10)  # past the original expiry
    assert store.acquire_lease(SYNC, "worker-b", TTL) is None
    clock.advance(20)
    assert store.acquire_lease(SYNC, "worker-b", TTL) is not None


def test_an_expired_lease_nobody_took_can_still_be_renewed(
    store: SqlStateStore, lease: Lease, clock: FakeClock
) -> None:
    clock.advance(TTL * 3)
    renewed = store.renew_lease(lease, TTL)
    assert renewed.acquired_until > clock.now
    assert store.acquire_lease(SYNC, "worker-b", TTL) is None


def test_release_frees_the_lease_at_once_and_tokens_keep_growing(
    store: SqlStateStore, lease: Lease
) -> None:
    store.release_lease(lease)
    store.release_lease(lease)  # twice: harmless

    tokens = [lease.token]
    for holder in ("worker-b", "worker-c", "worker-a"):
        taken = store.acquire_lease(SYNC, holder, TTL)
        assert taken is not None
        tokens.append(taken.token)
        store.release_lease(taken)
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)


def test_a_stale_holder_is_fenced_out_and_writes_nothing(
    store: SqlStateStore, lease: Lease, run_id: int, clock: FakeClock
) -> None:
    store.commit_batch(
        lease,
        run_id,
        ledger=[LedgerRow("k1", {"booking": "h1"}, {"booking": "1"})],
        dead_letters=[DeadLetterIn("d1", "destination", "500")],
        checkpoint={"cursor": "c1"},
        counters=RunCounters(read=1, created=1),
    )
    clock.advance(TTL + 1)  # worker-a stalls past its lease ...
    newer = store.acquire_lease(SYNC, "worker-b", TTL)  # ... and worker-b takes over
    assert newer is not None and newer.token > lease.token
    runs_before = store.list_runs()
    assert [r.outcome for r in runs_before] == ["crashed"]

    with pytest.raises(LeaseLost):
        store.commit_batch(
            lease,
            run_id,
            ledger=[LedgerRow("k1", {"booking": "STALE"}), LedgerRow("k2")],
            dead_letters=[DeadLetterIn("d2", "mapping", "x")],
            resolved=["d1"],
            checkpoint={"cursor": "STALE"},
            counters=RunCounters(read=99),
        )
    with pytest.raises(LeaseLost):
        store.renew_lease(lease, TTL)
    with pytest.raises(LeaseLost):
        store.finish_run(run_id, lease, "ok", RunCounters(read=99))
    with pytest.raises(LeaseLost):
        store.start_run(SYNC, "run", lease)
    store.release_lease(lease)  # not an error, and must not free worker-b's lease

    ledger = store.get_ledger(SYNC, ["k1", "k2"])
    assert set(ledger) == {"k1"}
    assert ledger["k1"].hashes == {"booking": "h1"}
    assert store.get_checkpoint(SYNC) == {"cursor": "c1"}
    assert [(d.key, d.resolved_at) for d in store.list_dead_letters(SYNC, True)] == [("d1", None)]
    assert store.list_runs() == runs_before
    run = store.get_run(run_id)
    assert run is not None
    # Closed by worker-b's takeover (issue 20.5), not by the stale holder's fenced writes.
    assert run.outcome == "crashed"
    assert run.counters == RunCounters(read=1, created=1)
    assert store.acquire_lease(SYNC, "worker-c", TTL) is None

    # The new holder writes normally.
    store.commit_batch(newer, run_id, checkpoint={"cursor": "c2"})
    assert store.get_checkpoint(SYNC) == {"cursor": "c2"}


def test_a_lease_only_fences_its_own_sync(store: SqlStateStore, lease: Lease) -> None:
    with pytest.raises(StateError):
        store.start_run("other-sync", "run", lease)
    other_run = store.start_run("other-sync", "run", None)
    with pytest.raises(StateError):
        store.commit_batch(lease, other_run, counters=RunCounters(read=1))
    with pytest.raises(StateError):
        store.finish_run(other_run, lease, "ok", RunCounters())
    run = store.get_run(other_run)
    assert run is not None and run.outcome == "running" and run.counters == RunCounters()


def test_in_memory_sqlite_is_one_database_shared_by_threads() -> None:
    memory = open_store("sqlite://")
    try:
        lease = memory.acquire_lease(SYNC, "worker-a", TTL)
        assert lease is not None
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: memory.renew_lease(lease, TTL), range(20)))
            taken = list(pool.map(lambda i: memory.acquire_lease(f"s{i}", "w", TTL), range(8)))
        assert all(t is not None and t.token == 1 for t in taken)
        assert memory.acquire_lease(SYNC, "worker-b", TTL) is None
    finally:
        memory.close()


def test_get_lease_reports_the_current_holder_and_token(
    store: SqlStateStore, clock: FakeClock
) -> None:
    assert store.get_lease("sync-a") is None
    first = store.acquire_lease("sync-a", "host-1:1:a", 60)
    assert first is not None
    seen = store.get_lease("sync-a")
    assert seen is not None
    assert (seen.holder, seen.token) == ("host-1:1:a", first.token)
    assert seen.acquired_until == first.acquired_until
    assert seen.acquired_until.tzinfo is not None
    store.release_lease(first)
    second = store.acquire_lease("sync-a", "host-2:2:b", 60)
    assert second is not None
    seen = store.get_lease("sync-a")
    assert seen is not None and (seen.holder, seen.token) == ("host-2:2:b", first.token + 1)


# --- the state file ----------------------------------------------------------------------


def test_only_a_missing_state_file_is_created(tmp_path: Path) -> None:
    """Issue 20.7: a file truncated to 0 bytes was taken as new, and every record re-sent."""
    path = tmp_path / "ticketbridge.db"
    url = f"sqlite:///{path}"
    store = open_store(url)  # missing: created
    store.record_skipped_run(SYNC, "running")
    store.close()
    reopened = open_store(url)  # ours: opened as it is
    assert len(reopened.list_runs(SYNC)) == 1
    reopened.close()

    path.write_bytes(b"")
    with pytest.raises(StateError, match="is empty \\(0 bytes\\)"):
        open_store(url)
    path.write_text("runs: []\n")
    with pytest.raises(StateError, match="is not a SQLite database"):
        open_store(url)
    path.unlink()
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StateError, match=r"another application's database.*invoices"):
        open_store(url)
    assert path.stat().st_size > 0, "a refused file is left as it was"
