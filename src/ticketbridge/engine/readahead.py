"""The queue between a source's reader task and the batch writer, bounded in records, and
the destination batches made from what waits in it.

A bound in pages would let memory follow the source's page size: a source that hands over a
whole 1,000-booking event in pages of 500 then holds eight times that while the destination
is slow. Counting records keeps the read-ahead the same size whatever the pages are.

:func:`source_batches` regroups the pages into destination batches:

* A batch holds at most ``size`` selected records.
* A batch takes every page already waiting, and never waits for one while it holds records:
  batches span pages when the source is ahead, and stay small when it is slow.
* A page's position goes with the batch holding its last record, so the checkpoint moves only
  once everything before it is acknowledged.
* Leaving the generator (a failed batch, the end) stops the reader task at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ticketbridge.connectors.base import Failed, Page, ReadRequest, Record, Source

_END = object()


class ReadAhead:
    """Pages waiting to be written. ``put`` waits while ``limit`` records or more are held.

    A page is let in whenever fewer than ``limit`` records wait, so one page larger than the
    limit still passes: a reader never blocks forever on its own page. At most
    ``limit + page - 1`` records are held. Markers (end, an exception) never wait.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.held = 0
        self._items: deque[Any] = deque()
        self._ready = asyncio.Event()  # an item is waiting
        self._room = asyncio.Event()  # the reader may put again
        self._room.set()

    async def put(self, page: Page) -> None:
        while self.held >= self.limit:
            self._room.clear()
            await self._room.wait()
        self.held += _size(page)
        self._items.append(page)
        self._ready.set()

    def put_marker(self, marker: object) -> None:
        self._items.append(marker)
        self._ready.set()

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self.get_nowait()

    def get_nowait(self) -> Any:
        item = self._items.popleft()
        if isinstance(item, Page):
            self.held -= _size(item)
            if self.held < self.limit:
                self._room.set()
        return item


def _size(page: Page) -> int:
    # An empty page (an event without bookings) still counts: it carries a position, and
    # thousands of them must not pile up unbounded.
    return max(1, len(page.records) + len(page.failures))


@dataclass
class SourceBatch:
    """What the source gave for one destination batch: selected records, mapping failures,
    and the position of the last source page whose records are all in here (if any)."""

    records: list[Record] = field(default_factory=list)
    failures: list[Failed] = field(default_factory=list)
    position: dict[str, Any] | None = None
    positioned: bool = False

    @property
    def empty(self) -> bool:
        return not (self.records or self.failures or self.positioned)


async def source_batches(
    source: Source,
    request: ReadRequest,
    *,
    size: int,
    read_ahead: int | None,
    select: Callable[[Page], Iterable[Record]],
) -> AsyncGenerator[SourceBatch, None]:
    """``source.read(request)`` read ahead by up to ``read_ahead`` records (None: two
    batches) while the batches are written, as batches of up to ``size`` of the records
    ``select`` keeps of each page."""
    size = max(1, size)
    queue = ReadAhead(read_ahead or 2 * size)

    async def produce() -> None:
        try:
            async for page in source.read(request):
                await queue.put(page)
            queue.put_marker(_END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            queue.put_marker(exc)

    pending = SourceBatch()
    task = asyncio.create_task(produce())
    try:
        while True:
            if pending.empty:
                item = await queue.get()
            elif queue.empty():
                yield pending  # nothing more is ready: write what we have
                pending = SourceBatch()
                continue
            else:
                item = queue.get_nowait()
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            page: Page = item
            pending.failures.extend(page.failures)
            for record in select(page):
                if len(pending.records) >= size:
                    yield pending
                    pending = SourceBatch()
                pending.records.append(record)
            if page.position is not None:
                pending.position, pending.positioned = page.position, True
            if len(pending.records) >= size:
                yield pending
                pending = SourceBatch()
        if not pending.empty:
            yield pending
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
