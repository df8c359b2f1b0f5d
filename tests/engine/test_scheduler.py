from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ticketbridge.engine.scheduler import parse_schedule, run_schedules


def test_cron_and_interval_schedules() -> None:
    nightly = parse_schedule("0 4 * * *")
    assert nightly.next_after(datetime(2026, 11, 22, 3, 0, tzinfo=UTC)) == datetime(
        2026, 11, 22, 4, 0, tzinfo=UTC
    )
    every = parse_schedule("every 5m")
    assert every.next_after(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(
        2026, 1, 1, 0, 5, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="cron"):
        parse_schedule("at dawn")


async def test_a_run_still_going_when_due_again_is_skipped_not_overlapped() -> None:
    clock = {"now": datetime(2026, 1, 1, tzinfo=UTC)}
    started: list[str] = []
    release = asyncio.Event()
    stop = asyncio.Event()

    async def start(name: str) -> object:
        started.append(name)
        await release.wait()
        return None

    task = asyncio.create_task(
        run_schedules(
            {"s": parse_schedule("every 1s")},
            start,
            now=lambda: clock["now"],
            stop=stop,
            max_sleep_s=0.01,
        )
    )
    for _ in range(5):  # five due times pass while the first run is still going
        clock["now"] += timedelta(seconds=1)
        await asyncio.sleep(0.08)
    assert started == ["s"]
    release.set()
    clock["now"] += timedelta(seconds=1)
    await asyncio.sleep(0.1)
    assert started == ["s", "s"]
    stop.set()
    await asyncio.wait_for(task, 5)


async def _two_syncs_on_one_organizer(groups: dict[str, str] | None) -> list[str]:
    """Syncs ``a`` and ``b`` on one schedule, sharing a lease as the TIXNGO organizer's
    syncs do; a start that finds the lease held is recorded as skipped, as the engine does.
    Returns what each start did over three due times."""
    clock = {"now": datetime(2026, 1, 1, tzinfo=UTC)}
    lease: list[str] = []
    did: list[str] = []
    stop = asyncio.Event()

    async def start(name: str) -> object:
        if lease:
            did.append(f"{name} skipped")
            return None
        lease.append(name)
        await asyncio.sleep(0.05)
        lease.remove(name)
        did.append(f"{name} ran")
        return None

    schedules = {"a": parse_schedule("every 10s"), "b": parse_schedule("every 10s")}
    task = asyncio.create_task(
        run_schedules(
            schedules, start, groups=groups, now=lambda: clock["now"], stop=stop, max_sleep_s=0.01
        )
    )
    await asyncio.sleep(0.05)  # the scheduler has computed the first due times
    for _ in range(3):
        clock["now"] += timedelta(seconds=10)
        await asyncio.sleep(0.4)
    stop.set()
    await asyncio.wait_for(task, 5)
    return did


async def test_syncs_sharing_a_lease_take_turns_instead_of_one_starving() -> None:
    # Without the groups, the sync started first wins the lease every time.
    assert await _two_syncs_on_one_organizer(None) == ["b skipped", "a ran"] * 3
    # With them, the second waits for the first and then runs: both run at every due time.
    assert await _two_syncs_on_one_organizer({"a": "org", "b": "org"}) == ["a ran", "b ran"] * 3
