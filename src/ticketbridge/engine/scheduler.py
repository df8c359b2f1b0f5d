"""The embedded scheduler: cron expressions or intervals, overlap policy SKIP.

Overlap is handled by the sync's lease, not here: if a scheduled run finds the previous one
still running (in this process or another), it is recorded as skipped. The scheduler only
decides *when* to start runs, so it stays trivially restartable: no state of its own. The one
exception is syncs sharing a lease (``groups``): one due while another of its group runs here
waits for its turn rather than being skipped, so that neither starves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from croniter import croniter

from ticketbridge.engine.windows import parse_duration

log = structlog.get_logger("ticketbridge.scheduler")


@dataclass(frozen=True)
class Schedule:
    text: str
    interval: timedelta | None = None

    def next_after(self, moment: datetime) -> datetime:
        if self.interval is not None:
            return moment + self.interval
        return croniter(self.text, moment).get_next(datetime)  # type: ignore[no-any-return]


def parse_schedule(text: str) -> Schedule:
    """``"0 4 * * *"`` (cron, UTC) or ``"every 5m"`` / ``"5m"`` (an interval)."""
    value = text.strip()
    spec = value.removeprefix("every").strip()
    try:
        interval = parse_duration(spec)
    except ValueError:
        interval = None
    if interval is not None:
        if interval <= timedelta(0):
            raise ValueError(f"schedule interval must be positive: {text!r}")
        return Schedule(value, interval)
    if not croniter.is_valid(value):
        raise ValueError(f"{text!r} is neither a cron expression nor an interval like 'every 5m'")
    return Schedule(value)


async def run_schedules(
    schedules: dict[str, Schedule],
    start_run: Callable[[str], Coroutine[Any, Any, object]],
    *,
    groups: Mapping[str, str] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    stop: asyncio.Event | None = None,
    max_sleep_s: float = 30.0,
) -> None:
    """Start ``start_run(name)`` at each sync's next due time until ``stop`` is set.

    ``groups`` maps syncs that share a lease (one run per TIXNGO organizer) to its key. A
    sync due while another of its group runs here waits for that run to end and then starts,
    instead of starting at once and being skipped by the lease: with one schedule for both,
    the sync started first would otherwise win the lease at every tick and the other never
    run. Waiting syncs start in the order they fell due; one due again while it waits still
    runs once.
    """
    stop = stop or asyncio.Event()
    groups = groups or {}
    due = {name: s.next_after(now()) for name, s in schedules.items()}
    running: dict[str, asyncio.Task[object]] = {}
    waiting: list[str] = []

    def busy(name: str) -> bool:
        task = running.get(name)
        return task is not None and not task.done()

    def group_busy(name: str) -> bool:
        group = groups.get(name)
        return group is not None and any(
            busy(other) for other, key in groups.items() if key == group and other != name
        )

    def start(name: str) -> None:
        log.info("schedule.start", sync=name)
        running[name] = asyncio.create_task(start_run(name))

    while not stop.is_set():
        current = now()
        for name in list(waiting):
            if not group_busy(name) and not busy(name):
                waiting.remove(name)
                start(name)
        for name, when in due.items():
            if when <= current:
                due[name] = schedules[name].next_after(current)
                if busy(name):
                    log.info("schedule.skip", sync=name, reason="previous run still running")
                elif name in waiting:
                    log.info("schedule.skip", sync=name, reason="already waiting for its turn")
                elif group_busy(name):
                    log.info("schedule.wait", sync=name, reason="a sync sharing its lease runs")
                    waiting.append(name)
                else:
                    start(name)
        wait = max(0.05, min((w - now()).total_seconds() for w in due.values()) if due else 1.0)
        if waiting:
            wait = min(wait, 0.5)  # a waiting sync starts soon after its group's run ends
        with contextlib.suppress(TimeoutError):
            # Re-check at least every max_sleep_s: a suspended laptop or a clock step would
            # otherwise delay the next due run by a whole sleep.
            await asyncio.wait_for(stop.wait(), timeout=min(wait, max_sleep_s))
    for task in running.values():
        if not task.done():
            await task
