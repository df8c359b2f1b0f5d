from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from ticketbridge.engine.scheduler import (
    parse_retry_delays,
    parse_schedule,
    retry_delay,
    run_schedules,
)
from ticketbridge.engine.spec import RunResult
from ticketbridge.engine.state.base import RunCounters
from ticketbridge.errors import AuthError, BudgetExhausted, RateLimited, RetryableError


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


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_a_cron_in_a_zone_runs_at_its_wall_clock_hour_summer_and_winter() -> None:
    nightly = parse_schedule("0 4 * * *", "Europe/Oslo")
    assert nightly.next_after(_utc(2026, 12, 4, 23, 30)) == _utc(2026, 12, 5, 3)  # CET
    assert nightly.next_after(_utc(2027, 6, 1, 12)) == _utc(2027, 6, 2, 2)  # CEST
    # The night the clocks go forward, and the night after.
    assert nightly.next_after(_utc(2027, 3, 27, 5)) == _utc(2027, 3, 28, 2)
    assert nightly.next_after(_utc(2027, 3, 28, 2)) == _utc(2027, 3, 29, 2)
    assert nightly.label() == "0 4 * * * (Europe/Oslo)"
    assert parse_schedule("0 4 * * *").label() == "0 4 * * *"


def test_an_hour_the_clocks_pass_twice_runs_once_and_one_they_skip_runs_once() -> None:
    twice = parse_schedule("30 2 * * *", "Europe/Oslo")
    # 2027-10-31: 02:30 local is 00:30 UTC (summer time) and again 01:30 UTC (winter time).
    first = twice.next_after(_utc(2027, 10, 30, 5))
    assert first == _utc(2027, 10, 31, 0, 30)
    assert twice.next_after(first) == _utc(2027, 11, 1, 1, 30)
    assert twice.next_after(_utc(2027, 10, 31, 1, 10)) == _utc(2027, 11, 1, 1, 30)
    # 2027-03-28: 02:30 local never happens; it runs at 01:30 UTC (03:30 summer time).
    assert twice.next_after(_utc(2027, 3, 27, 5)) == _utc(2027, 3, 28, 1, 30)
    assert twice.next_after(_utc(2027, 3, 28, 1, 30)) == _utc(2027, 3, 29, 0, 30)


async def test_a_run_still_going_when_due_again_is_skipped_not_overlapped() -> None:
    clock = {"now": datetime(2026, 1, 1, tzinfo=UTC)}
    started: list[str] = []
    release = asyncio.Event()
    stop = asyncio.Event()

    async def start(name: str, retry: int) -> object:
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
    await asyncio.sleep(0.05)  # the run ends before the next due time, not at the same moment
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

    async def start(name: str, retry: int) -> object:
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


def _result(outcome: str, error: BaseException | None) -> RunResult:
    return RunResult("s", outcome, RunCounters(), 1, str(error) if error else None, exception=error)


OUTAGE = RetryableError("HTTP 503 Service Unavailable", platform="airship_crm", status=503)


def test_a_run_ended_by_an_outage_is_tried_again_later_a_few_times() -> None:
    failed = _result("failed", OUTAGE)
    assert [retry_delay(failed, attempt) for attempt in range(4)] == [60.0, 300.0, 900.0, None]
    assert retry_delay(failed, 0, ()) is None, "TICKETBRIDGE_SERVE_RETRIES=none"
    limited = RateLimited("429", platform="airship_crm", status=429, retry_after=1200.0)
    assert retry_delay(_result("partial", limited), 0) == 1200.0, "a longer Retry-After wins"
    refused = AuthError("token refused", platform="airship_crm", status=401)
    assert retry_delay(_result("failed", refused), 0) is None, "a retry cannot mend credentials"
    cap = BudgetExhausted("the run's call cap is used up", platform="airship_crm")
    assert retry_delay(_result("partial", cap), 0) is None
    assert retry_delay(_result("ok", None), 0) is None
    assert retry_delay(None, 0) is None


async def _starts(
    schedule: str,
    outcomes: Sequence[RunResult | Exception],
    first: datetime,
    step: timedelta,
    steps: int,
) -> list[tuple[datetime, int]]:
    """When runs of a sync on ``schedule`` start, and as which retry, under retries as
    ``serve`` makes them: its runs return ``outcomes`` in turn (then ok; an exception is
    raised instead) while a fake clock moves from just before ``first`` by ``step``,
    ``steps`` times."""
    clock = {"now": first - step}
    started: list[tuple[datetime, int]] = []
    stop = asyncio.Event()
    left = list(outcomes)

    async def start(name: str, retry: int) -> object:
        started.append((clock["now"], retry))
        outcome = left.pop(0) if left else _result("ok", None)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    task = asyncio.create_task(
        run_schedules(
            {"s": parse_schedule(schedule)},
            start,
            retry=lambda name, result, attempt: retry_delay(result, attempt),
            now=lambda: clock["now"],
            stop=stop,
            max_sleep_s=0.005,
        )
    )
    await asyncio.sleep(0.05)
    for _ in range(steps + 1):
        clock["now"] += step
        await asyncio.sleep(0.03)
    stop.set()
    await asyncio.wait_for(task, 5)
    return started


FOUR = datetime(2026, 1, 1, 4, tzinfo=UTC)


async def _nightly(outcomes: list[RunResult], minutes: int) -> list[tuple[int, int]]:
    """(minutes past 04:00, retry) of each start of a nightly sync, a minute at a time."""
    started = await _starts("0 4 * * *", outcomes, FOUR, timedelta(minutes=1), minutes)
    return [(int((at - FOUR).total_seconds() // 60), retry) for at, retry in started]


async def test_a_nightly_run_that_meets_an_outage_runs_again_a_minute_later() -> None:
    assert await _nightly([_result("failed", OUTAGE)], 30) == [(0, 0), (1, 1)]


async def test_retries_back_off_and_stop_after_three() -> None:
    always = [_result("failed", OUTAGE)] * 4
    # 04:00 fails, then 04:01 (+1), 04:06 (+5), 04:21 (+15): three retries, then none.
    assert await _nightly(always, 60) == [(0, 0), (1, 1), (6, 2), (21, 3)]
    refused = AuthError("token refused", platform="airship_crm", status=401)
    assert await _nightly([_result("failed", refused)], 30) == [(0, 0)], "nothing to retry"


async def test_a_retry_never_comes_after_the_next_regular_run() -> None:
    always = [_result("failed", OUTAGE)] * 10
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=30)
    started = await _starts("every 30s", always, start, timedelta(seconds=15), 5)
    gaps = {(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(started)}
    assert len(started) == 3 and gaps == {30.0}, "every 30 s, no retry a minute later in between"
    assert {retry for _, retry in started} == {0}


def test_the_retries_are_set_as_durations_one_per_retry() -> None:
    assert parse_retry_delays(None) == parse_retry_delays(" ") == (60.0, 300.0, 900.0)
    assert parse_retry_delays("30s, 2m") == (30.0, 120.0)
    assert parse_retry_delays("none") == parse_retry_delays("0") == ()
    for bad in ("5 minutes", "1m,,5m", "-1m", "0s"):
        with pytest.raises(ValueError, match=r"TICKETBRIDGE_SERVE_RETRIES=.*like 30s, 5m or 1h"):
            parse_retry_delays(bad)


async def test_a_start_that_raises_is_logged_and_the_schedule_goes_on() -> None:
    down = RuntimeError("the state database is unreachable")
    first = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=10)
    with capture_logs() as logs:
        started = await _starts("every 10s", [down], first, timedelta(seconds=10), 1)
    assert len(started) == 2
    (failed,) = [e for e in logs if e["event"] == "schedule.start_failed"]
    assert failed["sync"] == "s" and "state database is unreachable" in failed["error"]
