"""The embedded scheduler: cron expressions or intervals, overlap policy SKIP.

Overlap is handled by the sync's lease, not here: if a scheduled run finds the previous one
still running (in this process or another), it is recorded as skipped. The scheduler only
decides *when* to start runs, so it stays trivially restartable: no state of its own. The one
exception is syncs sharing a lease (``groups``): one due while another of its group runs here
waits for its turn rather than being skipped, so that neither starves.

A run that ends on a passing failure (an outage or a rate limit that outlasted the HTTP
client's own retries) is started again after a back-off (:func:`retry_delay`), a few times,
and never later than its next regular due time: a nightly sync that meets a ten-minute outage
at four runs again at ten past, not the next night.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from croniter import croniter

from ticketbridge.engine.spec import RunResult
from ticketbridge.engine.verdict import verdict
from ticketbridge.engine.windows import parse_duration

log = structlog.get_logger("ticketbridge.scheduler")

# How long a scheduled run that ended on a passing failure waits before each retry (one
# entry a retry); a rate limit's Retry-After, when longer, wins. ``ticketbridge serve`` reads
# its own from this variable: durations such as "1m,5m,15m", or "none".
RETRIES_ENV = "TICKETBRIDGE_SERVE_RETRIES"
DEFAULT_RETRY_DELAYS_S = (60.0, 300.0, 900.0)
# Called with the sync, what its run returned and how many retries it has had; returns the
# seconds until the next one, or None for none.
Retry = Callable[[str, object, int], float | None]


def parse_retry_delays(text: str | None) -> tuple[float, ...]:
    """The back-offs of ``TICKETBRIDGE_SERVE_RETRIES`` in seconds: unset or empty gives the
    default (1m, 5m, 15m), "none" or "0" no retries. Raises ValueError naming the variable."""
    value = (text or "").strip()
    if not value:
        return DEFAULT_RETRY_DELAYS_S
    if value.lower() in ("none", "0"):
        return ()
    delays = []
    for part in value.split(","):
        try:
            seconds = parse_duration(part.strip()).total_seconds()
        except ValueError:
            seconds = -1.0
        if seconds <= 0:
            raise ValueError(
                f"{RETRIES_ENV}={text!r}: {part.strip()!r} is not a duration like 30s, 5m or "
                "1h (give them comma-separated, one per retry, or 'none')"
            )
        delays.append(seconds)
    return tuple(delays)


def retry_delay(
    result: object, attempt: int, delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S
) -> float | None:
    """Seconds until retry ``attempt + 1`` of the run that returned ``result``, or None: the
    run is done (ok, skipped, stopped at its call cap), failed for a reason a retry cannot
    mend (credentials, the project file, a response of the wrong shape), or has had one
    retry for each of ``delays``."""
    if not isinstance(result, RunResult) or attempt >= len(delays):
        return None
    decision = verdict(result)
    if decision is None or not decision[0]:
        return None
    return max(delays[attempt], decision[1] or 0.0)


@dataclass(frozen=True)
class Schedule:
    text: str
    interval: timedelta | None = None
    timezone: str = "UTC"  # the zone a cron's hours are read in (an interval has none)

    def label(self) -> str:
        """As the project file says it, with the zone of a cron that is not in UTC."""
        if self.interval is None and self.timezone != "UTC":
            return f"{self.text} ({self.timezone})"
        return self.text

    def next_after(self, moment: datetime) -> datetime:
        """The first due time after ``moment`` (aware), in UTC.

        A cron is matched against the zone's wall clock: "0 4 * * *" in Europe/Oslo is 03:00
        UTC in winter and 02:00 in summer. A time the clocks skip in spring runs once, at
        its UTC offset before the change (02:30 becomes 03:30 local time). A time they pass
        twice in autumn runs once, at its first occurrence.
        """
        if self.interval is not None:
            return moment + self.interval
        zone = ZoneInfo(self.timezone)
        # On the naive wall clock, so that a repeated hour matches once (croniter on aware
        # times matches both occurrences).
        times = croniter(self.text, moment.astimezone(zone).replace(tzinfo=None))
        while True:
            wall: datetime = times.get_next(datetime)
            due = wall.replace(tzinfo=zone).astimezone(UTC)
            if due > moment:
                return due


def parse_schedule(text: str, timezone: str = "UTC") -> Schedule:
    """``"0 4 * * *"`` (cron, in ``timezone``) or ``"every 5m"`` / ``"5m"`` (an interval)."""
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
    return Schedule(value, timezone=timezone)


async def run_schedules(
    schedules: dict[str, Schedule],
    start_run: Callable[[str, int], Coroutine[Any, Any, object]],
    *,
    groups: Mapping[str, str] | None = None,
    retry: Retry | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    stop: asyncio.Event | None = None,
    max_sleep_s: float = 30.0,
) -> None:
    """Start ``start_run(name, retry)`` at each sync's next due time until ``stop`` is set;
    ``retry`` is 0 for a run the schedule made and n for the n-th retry of one.

    ``groups`` maps syncs that share a lease (one run per TIXNGO organizer) to its key. A
    sync due while another of its group runs here waits for that run to end and then starts,
    instead of starting at once and being skipped by the lease: with one schedule for both,
    the sync started first would otherwise win the lease at every tick and the other never
    run. Waiting syncs start in the order they fell due; one due again while it waits still
    runs once.

    ``retry`` (see :func:`retry_delay`) is asked about each run as it ends; a retry moves the
    sync's due time earlier, never later, and a sync's retries count again from 0 after a run
    it does not retry.
    """
    stop = stop or asyncio.Event()
    groups = groups or {}
    due = {name: s.next_after(now()) for name, s in schedules.items()}
    running: dict[str, asyncio.Task[object]] = {}
    waiting: list[str] = []
    ended = asyncio.Event()  # a run ended: look at it now, not at the next due time
    seen: dict[str, asyncio.Task[object]] = {}  # the last ended run of each sync looked at
    retries: dict[str, int] = {}

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
        running[name] = asyncio.create_task(start_run(name, retries.get(name, 0)))
        running[name].add_done_callback(lambda _: ended.set())

    def look_at_ended(current: datetime) -> None:
        for name, task in running.items():
            if not task.done() or seen.get(name) is task:
                continue
            seen[name] = task
            error = None if task.cancelled() else task.exception()
            if error is not None:
                # Not a run's outcome (those are returned) but a fault of starting one: said
                # here, since nothing else waits for this task.
                log.error("schedule.start_failed", sync=name, error=repr(error))
            attempt = retries.get(name, 0)
            raised = task.cancelled() or error is not None
            delay = None if retry is None or raised else retry(name, task.result(), attempt)
            at = None if delay is None else current + timedelta(seconds=delay)
            if at is None or at >= due[name]:
                retries[name] = 0  # done, or its regular run comes first
                continue
            due[name] = at
            retries[name] = attempt + 1
            log.warning("schedule.retry", sync=name, retry=attempt + 1, in_s=round(delay or 0))

    while not stop.is_set():
        current = now()
        look_at_ended(current)
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
        # Re-check at least every max_sleep_s: a suspended laptop or a clock step would
        # otherwise delay the next due run by a whole sleep.
        await _until_set((stop, ended), min(wait, max_sleep_s))
        ended.clear()
    for task in running.values():
        if not task.done():
            await task


async def _until_set(events: tuple[asyncio.Event, ...], seconds: float) -> None:
    """Return when one of ``events`` is set, or after ``seconds``."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
