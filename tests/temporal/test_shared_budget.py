"""The rate budget shared through PostgreSQL: however many workers (here, separate engines,
as separate processes have), calls to one account leave at least 1 / rate apart.

Time is virtual: the bucket reads a test clock instead of the server's, and the budgets'
sleep moves it, so the spacing asserted is exactly what the bucket granted.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine

from ticketbridge.errors import BudgetExhausted
from ticketbridge.temporal.budget import SharedBucket, SharedHttpContext, SharedRateBudget

pytestmark = pytest.mark.postgres


class Clock:
    """Virtual time for the bucket and the budgets' sleeps: time jumps to the earliest
    sleeper's deadline once every caller still running is asleep."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        woken = asyncio.get_running_loop().create_future()
        deadline = self.now + timedelta(seconds=seconds)
        heapq.heappush(self._sleepers, (deadline, next(self._order), woken))
        await woken

    async def drive(self, *callers: Coroutine[Any, Any, None]) -> None:
        tasks = [asyncio.create_task(c) for c in callers]
        while not all(t.done() for t in tasks):
            await asyncio.sleep(0.001)
            running = sum(not t.done() for t in tasks)
            if self._sleepers and len(self._sleepers) == running:
                deadline, _, woken = heapq.heappop(self._sleepers)
                self.now = max(self.now, deadline)
                woken.set_result(None)
        await asyncio.gather(*tasks)


@pytest.fixture
def buckets(postgres_url: str) -> Iterator[tuple[SharedBucket, SharedBucket, Clock]]:
    clock = Clock()
    first = SharedBucket(create_engine(postgres_url), clock)
    second = SharedBucket(create_engine(postgres_url), clock)
    first.ensure_table()
    second.ensure_table()  # a second worker starting: creating the table again is a no-op
    yield first, second, clock
    first.engine.dispose()
    second.engine.dispose()


def test_one_token_per_interval_whichever_worker_asks(
    buckets: tuple[SharedBucket, SharedBucket, Clock],
) -> None:
    first, second, clock = buckets
    assert first.take("airship:1", rate=10, burst=1) == 0.0
    wait = second.take("airship:1", rate=10, burst=1)
    assert wait == pytest.approx(0.1), "the other worker must wait for the next token"
    clock.now += timedelta(seconds=0.05)
    assert first.take("airship:1", rate=10, burst=1) == pytest.approx(0.05)
    clock.now += timedelta(seconds=0.05)
    assert second.take("airship:1", rate=10, burst=1) == 0.0
    assert second.take("airship:2", rate=10, burst=1) == 0.0, "accounts are independent"


def test_a_burst_lets_that_many_go_at_once_then_spaces_them(
    buckets: tuple[SharedBucket, SharedBucket, Clock],
) -> None:
    first, second, _ = buckets
    granted = [b.take("acct", rate=5, burst=3) for b in (first, second, first, second)]
    assert granted[:3] == [0.0, 0.0, 0.0]
    assert granted[3] == pytest.approx(0.2)


def test_a_429_holds_every_worker_off_for_its_retry_after(
    buckets: tuple[SharedBucket, SharedBucket, Clock],
) -> None:
    first, second, _ = buckets
    assert first.take("acct", rate=10, burst=1) == 0.0
    first.hold("acct", 3.0)
    assert second.take("acct", rate=10, burst=1) == pytest.approx(3.0 - 0.0, abs=0.11)


async def test_budgets_of_two_workers_together_keep_to_the_rate(
    buckets: tuple[SharedBucket, SharedBucket, Clock],
) -> None:
    first, second, clock = buckets
    sent: list[datetime] = []

    async def caller(budget: SharedRateBudget, calls: int) -> None:
        for _ in range(calls):
            await budget.acquire()
            sent.append(clock.now)

    workers = [
        SharedRateBudget(bucket, "airship_crm:acct", rate_per_second=10, sleep=clock.sleep)
        for bucket in (first, second)
    ]
    # One caller per worker (callers of one process queue on its budget's lock anyway).
    await clock.drive(*(caller(w, 40) for w in workers))
    assert len(sent) == 80
    times = sorted(sent)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.1 - 1e-6, "no two calls closer than 1 / rate"
    window = timedelta(seconds=1)
    assert max(sum(1 for t in times if s <= t < s + window) for s in times) <= 10
    assert all(w.queries > 40 for w in workers), "each worker was refused and waited"
    assert (times[-1] - times[0]).total_seconds() == pytest.approx(7.9, abs=0.01)


async def test_the_per_run_call_cap_stays_per_process(
    buckets: tuple[SharedBucket, SharedBucket, Clock],
) -> None:
    first, _, clock = buckets
    budget = SharedRateBudget(first, "acct", rate_per_second=100, max_calls=2, sleep=clock.sleep)

    async def three_calls() -> None:
        await budget.acquire()
        await budget.acquire()
        with pytest.raises(BudgetExhausted):
            await budget.acquire()

    await clock.drive(three_calls())


def test_the_worker_context_shares_rated_accounts_only(
    buckets: tuple[SharedBucket, SharedBucket, Clock],
) -> None:
    first, _, _ = buckets
    ctx = SharedHttpContext(first)
    rated = ctx.budget("a", rate_per_second=10, burst=None, max_calls=None)
    assert isinstance(rated, SharedRateBudget)
    assert ctx.budget("a", rate_per_second=10, burst=None, max_calls=None) is rated
    unrated = ctx.budget("b", rate_per_second=None, burst=None, max_calls=5)
    assert not isinstance(unrated, SharedRateBudget)
