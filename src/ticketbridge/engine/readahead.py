"""The queue between a source's reader task and the batch writer, bounded in records.

A bound in pages would let memory follow the source's page size: a source that hands over a
whole 1,000-booking event in pages of 500 then holds eight times that while the destination
is slow. Counting records keeps the read-ahead the same size whatever the pages are.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from ticketbridge.connectors.base import Page


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
