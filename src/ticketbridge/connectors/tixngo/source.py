"""The TIXNGO source: stream ``ticket_updates``, the organizer's diff (feedback) feed.

S-360 pulls this feed every 5 minutes in batches of 1 000 with a pagination key [DOC]. The key
is TIXNGO's, opaque: it is stored exactly as TIXNGO gives it, sent back exactly, and never
parsed or compared for order. Each page's ``position`` is the key that comes after it, so the
engine moves the stored key only with the acknowledged writes of that page.

How a read ends (the sandbox's shape, platforms.md 6.4, and the reporting endpoint's rule):

* an empty page whose ``nextPageKey`` is the key sent means "no news": stop, the key stays;
* no ``nextPageKey`` (null or absent) ends the feed: stop and keep the last key (the page's
  updates are written, and read again, unchanged and so free, by the next run);
* otherwise ask again with the new key, also after a short page: only an empty answer says
  there is nothing more. A first run over N updates therefore makes ``ceil(N / limit) + 1``
  calls, and a run with nothing new makes one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ticketbridge.connectors.base import (
    CheckResult,
    Failed,
    Page,
    ReadRequest,
    Record,
    StreamOptions,
    StreamSpec,
)
from ticketbridge.connectors.kit import SourceKit
from ticketbridge.connectors.tixngo.client import PLATFORM, PaginationKey, TixngoClient
from ticketbridge.connectors.tixngo.config import TixngoConfig
from ticketbridge.connectors.tixngo.mapping import check_status, key_of, map_update
from ticketbridge.errors import AuthError, ConnectorError, FatalError, MappingError
from ticketbridge.model import Ticket

if TYPE_CHECKING:
    from ticketbridge.http.context import HttpContext

POSITION_KEY = "paginationKey"

TICKET_UPDATES = StreamSpec(
    name="ticket_updates",
    kind="ticket",
    strategies=("diff",),
    description="Mobile-ticket status changes of one organizer (status, wallet owner, holder, "
    "assignee) from TIXNGO's diff feed, resumed at the stored pagination key.",
)


def _record(ticket: Ticket) -> Record:
    return Record(
        key=key_of({"ticketId": ticket.number}),
        kind="ticket",
        data=ticket,
        cursor=ticket.updated_at,
    )


class TixngoSource(SourceKit[TixngoConfig]):
    """Reads one organizer's ticket updates."""

    platform = PLATFORM
    config_model = TixngoConfig
    STREAMS = (TICKET_UPDATES,)
    client: TixngoClient

    def open_client(self, config: TixngoConfig, context: HttpContext) -> TixngoClient:
        return TixngoClient(config, context)

    async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
        """Pages of the feed from the stored key (from the start without one), each carrying
        ``{"paginationKey": <the next key>}`` as its position, or None when the answer gave
        no new key (nothing to move the stored one to)."""
        self.stream_spec(request.stream)
        limit = max(1, request.page_size or self.config.limit)
        key = _stored_key(request.position)
        while True:
            page = await self.client.diff(key, limit)
            nxt = page.next_key
            if not page.tickets and (nxt is None or nxt == key):
                return  # no news
            moved = nxt is not None and nxt != key
            yield self._page(page.tickets, {POSITION_KEY: nxt} if moved else None)
            if not moved:
                # No key, or the same key with updates: the feed says no more; asking again
                # with the same key would only get the same page.
                return
            key = nxt

    def _page(self, entries: list[dict[str, Any]], position: dict[str, Any] | None) -> Page:
        """The page's updates mapped; a ticket updated twice in one page is written once, as
        it is last (the feed is in order of change)."""
        latest: dict[str, Record | Failed] = {}
        for raw in entries:
            key = key_of(raw)
            latest.pop(key, None)  # re-inserted: its place is its last update's
            try:
                latest[key] = _record(map_update(raw, self.config.status_mode))
            except MappingError as exc:
                latest[key] = Failed(exc.record_key, exc.reason, raw)
        return Page(
            records=[e for e in latest.values() if isinstance(e, Record)],
            failures=[e for e in latest.values() if isinstance(e, Failed)],
            position=position,
        )

    def remap(self, stream: str, raw: dict[str, Any], options: StreamOptions) -> Record:
        """Map a stored update (a ``Failed.raw``) again; MappingError if it still cannot be."""
        self.stream_spec(stream)
        return _record(map_update(raw, self.config.status_mode))

    async def check(self) -> list[CheckResult]:
        """The organizer e-mail and API key are accepted (one update read from the start of
        the feed); that update's status is on the configured mode's list."""
        try:
            page = await self.client.diff(None, 1)
        except AuthError as exc:
            detail = (
                f"organizer e-mail or API key refused (HTTP {exc.status}); check "
                f"organizer_email ({self.config.organizer_email}) and api_key"
            )
            return [CheckResult("credentials", False, detail)]
        except ConnectorError as exc:
            return [CheckResult("credentials", False, exc.message)]
        results = [CheckResult("credentials", True, "organizer e-mail and API key accepted")]
        if page.tickets:
            try:
                check_status(page.tickets[0].get("status"), self.config.status_mode)
            except ValueError as exc:
                results.append(CheckResult("status_mode", False, f"first update: {exc}"))
            else:
                detail = f"the feed's statuses are {self.config.status_mode}-mode ones"
                results.append(CheckResult("status_mode", True, detail))
        return results


def _stored_key(position: dict[str, Any] | None) -> PaginationKey | None:
    if not position:
        return None
    key = position.get(POSITION_KEY)
    if key is None or (isinstance(key, str | int) and not isinstance(key, bool)):
        return key
    raise FatalError(
        f"the stored position's {POSITION_KEY!r} is not a key TIXNGO gave "
        f"(set it with `ticketbridge checkpoint SYNC --set`)",
        platform=PLATFORM,
    )
