"""The read-ahead queue: bounded in records, never blocking on one oversized page."""

from __future__ import annotations

import asyncio

from tests.fakes import booking, rec
from ticketbridge.connectors.base import Page
from ticketbridge.engine.readahead import ReadAhead


def _page(n: int) -> Page:
    return Page(records=[rec(booking(i)) for i in range(n)])


async def test_put_waits_once_the_limit_is_reached_and_resumes_when_a_page_leaves() -> None:
    queue = ReadAhead(limit=10)
    await queue.put(_page(6))
    await queue.put(_page(6))  # 6 < 10 held: let in, now 12
    blocked = asyncio.create_task(queue.put(_page(6)))
    await asyncio.sleep(0.01)
    assert not blocked.done() and queue.held == 12
    first = queue.get_nowait()
    assert len(first.records) == 6
    await asyncio.wait_for(blocked, 1)
    assert queue.held == 12


async def test_a_page_larger_than_the_limit_still_passes() -> None:
    queue = ReadAhead(limit=5)
    await asyncio.wait_for(queue.put(_page(40)), 1)
    assert queue.held == 40
    assert len((await queue.get()).records) == 40
    assert queue.held == 0 and queue.empty()


async def test_markers_never_wait_and_come_out_in_order() -> None:
    queue = ReadAhead(limit=1)
    await queue.put(_page(3))
    end = object()
    queue.put_marker(end)  # the queue is full, yet the end of the read goes in
    assert len((await queue.get()).records) == 3
    assert await queue.get() is end


async def test_get_waits_for_the_reader() -> None:
    queue = ReadAhead(limit=4)
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await queue.put(_page(2))
    assert len((await asyncio.wait_for(waiting, 1)).records) == 2


async def test_empty_pages_count_so_they_cannot_pile_up() -> None:
    queue = ReadAhead(limit=3)
    for _ in range(3):
        await queue.put(Page(position={"next": 0}))
    blocked = asyncio.create_task(queue.put(Page(position={"next": 1})))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    queue.get_nowait()
    await asyncio.wait_for(blocked, 1)
