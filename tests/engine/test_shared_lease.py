"""One run per source scope (issue 16): syncs whose ``lease_key`` is the same (every S-360
organization's sync reading one TIXNGO organizer) never run at once; a second start is
recorded ``skipped: running`` under its own sync. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes import MemoryDestination, MemorySource, booking, spec
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.spec import RunOptions
from ticketbridge.engine.state.sql import SqlStateStore, open_store

ORGANIZER = "tixngo:https://prod.tixngo.io:admin@club.example"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStateStore]:
    opened = open_store(db_url)
    yield opened
    opened.close()


def gated() -> MemoryDestination:
    dest = MemoryDestination()
    dest.gate = asyncio.Event()
    return dest


async def test_two_syncs_on_one_organizer_one_runs_the_other_is_skipped(
    store: SqlStateStore,
) -> None:
    org_a = spec("tixngo-to-s360-org-a", lease_key=ORGANIZER)
    org_b = spec("tixngo-to-s360-org-b", lease_key=ORGANIZER)
    dest = gated()
    first = asyncio.create_task(run_sync(store, org_a, MemorySource([booking(1)]), dest))
    await asyncio.wait_for(dest.entered.wait(), 5)
    other = MemoryDestination()
    second = await run_sync(store, org_b, MemorySource([booking(2)]), other)
    assert (second.outcome, second.error, second.exit_code) == ("skipped", "skipped: running", 0)
    assert other.calls == 0, "the skipped sync wrote nothing"
    assert dest.gate is not None
    dest.gate.set()
    assert (await first).outcome == "ok"
    (skipped,) = store.list_runs(org_b.name)
    assert (skipped.outcome, skipped.detail) == ("skipped", {"reason": "running"})
    assert [r.outcome for r in store.list_runs(org_a.name)] == ["ok"]
    # Both leases are free again: the other organization's sync now runs.
    again = await run_sync(store, org_b, MemorySource([booking(2)]), other)
    assert again.outcome == "ok" and other.calls == 1
    assert store.get_checkpoint(org_b.name) is not None
    assert store.count_ledger(org_a.name) == store.count_ledger(org_b.name) == 1


async def test_started_at_the_same_moment_exactly_one_runs(store: SqlStateStore) -> None:
    syncs = [spec(f"org-{n}", lease_key=ORGANIZER) for n in range(4)]
    dests = [gated() for _ in syncs]
    tasks = [
        asyncio.create_task(run_sync(store, s, MemorySource([booking(n)]), d))
        for n, (s, d) in enumerate(zip(syncs, dests, strict=True))
    ]
    await asyncio.sleep(0.3)
    for d in dests:
        assert d.gate is not None
        d.gate.set()
    results = await asyncio.gather(*tasks)
    assert sorted(r.outcome for r in results) == ["ok", "skipped", "skipped", "skipped"]
    assert sum(d.calls for d in dests) == 1


async def test_syncs_on_different_organizers_run_side_by_side(store: SqlStateStore) -> None:
    one = spec("org-a", lease_key=ORGANIZER)
    two = spec("org-b", lease_key=ORGANIZER.replace("club", "other-club"))
    d1, d2 = gated(), gated()
    t1 = asyncio.create_task(run_sync(store, one, MemorySource([booking(1)]), d1))
    t2 = asyncio.create_task(run_sync(store, two, MemorySource([booking(2)]), d2))
    await asyncio.wait_for(asyncio.gather(d1.entered.wait(), d2.entered.wait()), 5)
    for d in (d1, d2):
        assert d.gate is not None
        d.gate.set()
    assert [(await t1).outcome, (await t2).outcome] == ["ok", "ok"]


async def test_the_same_sync_started_twice_is_still_skipped(store: SqlStateStore) -> None:
    org_a = spec("org-a", lease_key=ORGANIZER)
    dest = gated()
    first = asyncio.create_task(run_sync(store, org_a, MemorySource([booking(1)]), dest))
    await asyncio.wait_for(dest.entered.wait(), 5)
    assert (await run_sync(store, org_a, MemorySource([]), MemoryDestination())).outcome == (
        "skipped"
    )
    assert dest.gate is not None
    dest.gate.set()
    assert (await first).outcome == "ok"


async def test_a_run_whose_organizer_lease_was_taken_stops_before_its_next_commit(
    db_url: str, store: SqlStateStore
) -> None:
    """A run that stalled past its lease (the organizer lease expired and another host took
    it) commits nothing more: the shared lease is checked with its own before every commit."""
    future = open_store(db_url, clock=lambda: datetime.now(UTC) + timedelta(hours=1))
    try:
        org_a = spec("org-a", lease_key=ORGANIZER, batch_size=2)
        dest = gated()
        opts = RunOptions(lease_ttl_s=0.3)
        run = asyncio.create_task(
            run_sync(store, org_a, MemorySource([booking(n) for n in range(6)]), dest, opts)
        )
        await asyncio.wait_for(dest.entered.wait(), 5)
        assert future.acquire_lease(ORGANIZER, "another-host:1:x", 3600) is not None
        await asyncio.sleep(0.5)  # a renewal finds the organizer lease taken
        assert dest.gate is not None
        dest.gate.set()
        result = await run
        assert result.outcome == "failed" and "lost" in (result.error or ""), result
        assert store.count_ledger(org_a.name) == 0, "nothing committed after the loss"
        assert dest.calls == 1
    finally:
        future.close()
