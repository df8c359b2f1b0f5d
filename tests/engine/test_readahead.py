"""The read-ahead queue: bounded in records, never blocking on one oversized page; and the
destination batches made from it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from tests.fakes import booking, rec
from ticketbridge.connectors.base import Page, ReadRequest, Record, StreamOptions
from ticketbridge.engine.readahead import ReadAhead, SourceBatch, source_batches


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


class _Pages:
    """A source handing over ``pages``; waits on ``gates[i]`` (if any) before page ``i``."""

    def __init__(self, pages: list[Page], gates: dict[int, asyncio.Event] | None = None) -> None:
        self.pages = pages
        self.gates = gates or {}
        self.error: Exception | None = None

    async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
        for i, page in enumerate(self.pages):
            if i in self.gates:
                await self.gates[i].wait()
            yield page
        if self.error is not None:
            raise self.error


def _numbered(first: int, n: int, position: int | None = None) -> Page:
    return Page(
        records=[rec(booking(i)) for i in range(first, first + n)],
        position=None if position is None else {"next": position},
    )


def _all(page: Page) -> Iterable[Record]:
    return page.records


async def _batches(source: _Pages, size: int, **kw: Any) -> list[SourceBatch]:
    request = ReadRequest(stream="bookings", options=StreamOptions())
    kw.setdefault("select", _all)
    return [
        b
        async for b in source_batches(
            source,  # type: ignore[arg-type]
            request,
            size=size,
            read_ahead=kw.pop("read_ahead", None),
            **kw,
        )
    ]


def _numbers(batch: SourceBatch) -> list[int]:
    return [int(r.key[-5:]) for r in batch.records]


async def test_a_batch_takes_every_page_already_waiting() -> None:
    pages = [_numbered(0, 2, 2), _numbered(2, 2, 4), _numbered(4, 2, 6)]
    batches = await _batches(_Pages(pages), size=10)
    assert [_numbers(b) for b in batches] == [[0, 1, 2, 3, 4, 5]]
    assert batches[0].position == {"next": 6}


async def test_a_page_position_goes_with_the_batch_holding_its_last_record() -> None:
    pages = [_numbered(0, 2, 2), _numbered(2, 2, 4), _numbered(4, 2, 6)]
    batches = await _batches(_Pages(pages), size=3)
    assert [_numbers(b) for b in batches] == [[0, 1, 2], [3, 4, 5]]
    assert [b.position for b in batches] == [{"next": 2}, {"next": 6}]


async def test_a_batch_holding_records_never_waits_for_the_next_page() -> None:
    gate = asyncio.Event()
    source = _Pages([_numbered(0, 2, 2), _numbered(2, 2, 4)], gates={1: gate})
    request = ReadRequest(stream="bookings", options=StreamOptions())
    batches = source_batches(
        source,  # type: ignore[arg-type]
        request,
        size=10,
        read_ahead=None,
        select=_all,
    )
    first = await asyncio.wait_for(anext(batches), 1)
    assert _numbers(first) == [0, 1] and first.position == {"next": 2}
    gate.set()
    second = await asyncio.wait_for(anext(batches), 1)
    assert _numbers(second) == [2, 3] and second.position == {"next": 4}
    with pytest.raises(StopAsyncIteration):
        await anext(batches)


async def test_records_select_drops_take_no_room_in_a_batch() -> None:
    def even(page: Page) -> Iterable[Record]:
        return [r for r in page.records if int(r.key[-5:]) % 2 == 0]

    batches = await _batches(_Pages([_numbered(0, 8, 8)]), size=2, select=even)
    assert [_numbers(b) for b in batches] == [[0, 2], [4, 6]]
    assert [b.position for b in batches] == [None, {"next": 8}]


async def test_an_empty_page_with_a_position_still_makes_a_batch() -> None:
    batches = await _batches(_Pages([Page(position={"next": 0})]), size=5)
    assert len(batches) == 1 and batches[0].records == [] and batches[0].positioned


async def test_a_source_error_is_raised_to_the_writer() -> None:
    source = _Pages([_numbered(0, 2, 2)])
    source.error = RuntimeError("source died")
    request = ReadRequest(stream="bookings", options=StreamOptions())
    with pytest.raises(RuntimeError, match="source died"):
        async for _ in source_batches(
            source,  # type: ignore[arg-type]
            request,
            size=10,
            read_ahead=None,
            select=_all,
        ):
            pass
