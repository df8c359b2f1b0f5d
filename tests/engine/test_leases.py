"""LeaseKeeper: holds a sync's lease for a block, renewing it, and notices when it is lost."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ticketbridge.engine.leases import LeaseKeeper, default_holder
from ticketbridge.engine.state import Lease, LedgerRow, SqlStateStore, open_store
from ticketbridge.errors import LeaseBusy, LeaseLost, StateError

SYNC = "ticketco-bookings-to-airship"
TTL = 0.3  # renewals every 0.1 s


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStateStore]:
    opened = open_store(db_url)
    yield opened
    opened.close()


@pytest.fixture
def future_store(db_url: str) -> Iterator[SqlStateStore]:
    """Another process's view of the same database, an hour ahead: every lease looks expired."""
    opened = open_store(db_url, clock=lambda: datetime.now(UTC) + timedelta(hours=1))
    yield opened
    opened.close()


async def _until(condition: object, timeout_s: float = 3.0) -> None:
    assert callable(condition)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_heartbeat_keeps_the_lease_through_a_run_longer_than_its_ttl(
    store: SqlStateStore,
) -> None:
    keeper = LeaseKeeper(store, SYNC, "worker-a", ttl_s=TTL)
    async with keeper as lease:
        run_id = store.start_run(SYNC, "run", lease)
        for _ in range(8):  # 1.2 s = four TTLs
            await asyncio.sleep(TTL / 2)
            assert store.acquire_lease(SYNC, "worker-b", TTL) is None
            keeper.check()
        # The lease from entry is still the current one: writes with it pass the fence.
        store.commit_batch(lease, run_id, ledger=[LedgerRow("k")])
        assert keeper.lost is None
        assert keeper.lease.token == lease.token
        assert keeper.lease.acquired_until > lease.acquired_until + timedelta(seconds=TTL)


async def test_entering_a_held_lease_raises_lease_busy(store: SqlStateStore) -> None:
    held = store.acquire_lease(SYNC, "worker-b", 60)
    assert held is not None

    with pytest.raises(LeaseBusy) as raised:
        async with LeaseKeeper(store, SYNC, "worker-a", ttl_s=TTL):
            pytest.fail("entered a held lease")
    assert raised.value.sync == SYNC
    assert isinstance(raised.value, StateError)
    assert store.acquire_lease(SYNC, "worker-c", 60) is None  # worker-b's lease untouched


@pytest.mark.parametrize("fails", [False, True])
async def test_leaving_releases_the_lease_for_the_next_run(
    store: SqlStateStore, fails: bool
) -> None:
    entered: Lease | None = None
    with pytest.raises(RuntimeError) if fails else _no_error():
        async with LeaseKeeper(store, SYNC, "worker-a", ttl_s=TTL) as lease:
            entered = lease
            await asyncio.sleep(TTL / 2)
            if fails:
                raise RuntimeError("boom")
    assert entered is not None

    # Free at once (no waiting for the TTL), and a late heartbeat did not re-take it.
    await asyncio.sleep(TTL / 2)
    nxt = store.acquire_lease(SYNC, "worker-b", 60)
    assert nxt is not None
    assert nxt.token == entered.token + 1


async def test_a_lost_lease_is_detected_and_not_released(
    store: SqlStateStore, future_store: SqlStateStore
) -> None:
    keeper = LeaseKeeper(store, SYNC, "worker-a", ttl_s=TTL)
    async with keeper as lease:
        run_id = store.start_run(SYNC, "run", lease)
        thief = future_store.acquire_lease(SYNC, "worker-b", 3600)
        assert thief is not None

        await _until(lambda: keeper.lost is not None)
        with pytest.raises(LeaseLost):
            keeper.check()
        with pytest.raises(LeaseLost):
            store.commit_batch(lease, run_id, checkpoint={"cursor": "stale"})

    assert store.get_checkpoint(SYNC) is None
    assert store.acquire_lease(SYNC, "worker-c", 60) is None  # the thief still holds it
    store.commit_batch(thief, run_id, checkpoint={"cursor": "new"})


class _FlakyStore(SqlStateStore):
    """A store whose first renewals fail the way a briefly unreachable database does."""

    failures = 2

    def renew_lease(self, lease: Lease, ttl_s: float) -> Lease:
        if self.failures:
            self.failures -= 1
            raise StateError("connection refused")
        return super().renew_lease(lease, ttl_s)


async def test_transient_renewal_errors_are_retried(db_url: str, store: SqlStateStore) -> None:
    flaky = _FlakyStore(db_url)
    try:
        keeper = LeaseKeeper(flaky, SYNC, "worker-a", ttl_s=1.0, renew_every_s=0.05)
        async with keeper as lease:
            await _until(lambda: keeper.lease.acquired_until > lease.acquired_until)
            assert flaky.failures == 0
            assert keeper.lost is None
    finally:
        flaky.close()


def test_default_holder_names_host_and_process_uniquely() -> None:
    first, second = default_holder(), default_holder()
    assert first.startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert first != second


def test_keeper_rejects_nonsense_timings(store: SqlStateStore) -> None:
    with pytest.raises(ValueError):
        LeaseKeeper(store, SYNC, ttl_s=0)
    with pytest.raises(ValueError):
        LeaseKeeper(store, SYNC, ttl_s=1, renew_every_s=1)
    assert LeaseKeeper(store, SYNC).holder.startswith(socket.gethostname())


class _no_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


async def test_lease_of_a_killed_local_process_is_taken_over(tmp_path: Path) -> None:
    import sys

    from ticketbridge.engine.leases import holder_is_dead

    store = open_store(f"sqlite:///{tmp_path / 'dead.db'}")
    try:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
        await proc.wait()
        dead = f"{socket.gethostname()}:{proc.pid}:deadbeef"
        assert holder_is_dead(dead)
        assert not holder_is_dead(f"other-host:{proc.pid}:x"), "remote holders only expire"
        assert store.acquire_lease("s", dead, 600) is not None
        async with LeaseKeeper(store, "s", ttl_s=60) as lease:
            assert lease.token == 2
        # A live holder (this very process, another keeper) is never taken over.
        async with LeaseKeeper(store, "s", ttl_s=60):
            with pytest.raises(LeaseBusy):
                async with LeaseKeeper(store, "s", ttl_s=60):
                    pass
    finally:
        store.close()
