"""``kit.one_ahead``: a source fetches the next item while the caller works on this one."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from ticketbridge.connectors.kit import one_ahead


class _Fetches:
    """Fetches that finish when released, recording which started and which were cancelled."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self.running = 0
        self.most = 0
        self.fail_on = fail_on

    async def __call__(self, item: int) -> str:
        self.started.append(item)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.001)
            if item == self.fail_on:
                raise ValueError(f"item {item} broke")
            return f"r{item}"
        except asyncio.CancelledError:
            self.cancelled.append(item)
            raise
        finally:
            self.running -= 1


async def test_results_come_in_order_and_the_next_fetch_runs_while_the_caller_works() -> None:
    fetches = _Fetches()
    seen: list[tuple[int, str]] = []
    started_while_working: list[list[int]] = []
    async with contextlib.aclosing(one_ahead([1, 2, 3, 4], fetches)) as ahead:
        async for item, result in ahead:
            seen.append((item, result))
            await asyncio.sleep(0.01)  # the caller's work on this item
            started_while_working.append(list(fetches.started))
    assert seen == [(1, "r1"), (2, "r2"), (3, "r3"), (4, "r4")]
    # While item n was worked on, the fetch of item n + 1 had started, and no further one.
    assert started_while_working == [[1, 2], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4]]
    assert fetches.most == 1, "the caller's work overlaps one fetch; fetches never overlap here"


async def test_a_failed_fetch_is_raised_when_its_item_is_reached() -> None:
    fetches = _Fetches(fail_on=3)
    seen: list[int] = []
    with pytest.raises(ValueError, match="item 3 broke"):
        async for item, _result in one_ahead([1, 2, 3, 4], fetches):
            seen.append(item)
            await asyncio.sleep(0.01)
    assert seen == [1, 2], "every item before the broken one came out first"
    assert 4 not in fetches.started


async def test_stopping_early_cancels_the_fetch_ahead() -> None:
    fetches = _Fetches()
    async with contextlib.aclosing(one_ahead([1, 2, 3], fetches)) as ahead:
        async for item, _result in ahead:
            assert item == 1
            await asyncio.sleep(0)  # the fetch ahead gets going
            break
    assert fetches.started == [1, 2]
    assert fetches.cancelled == [2]
    assert fetches.running == 0


async def test_no_items_fetch_nothing() -> None:
    fetches = _Fetches()
    nothing: list[int] = []
    assert [pair async for pair in one_ahead(nothing, fetches)] == []
    assert fetches.started == []
