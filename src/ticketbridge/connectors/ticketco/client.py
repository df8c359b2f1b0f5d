"""TicketCo over HTTP: typed methods on :class:`ApiClient`, nothing else.

Every call carries the token as ``?token=`` (platforms.md 1.2). The token therefore sits in
every URL: nothing here logs a URL or puts one in an error message; ``ApiClient`` logs paths
without their query string.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ticketbridge.connectors.kit import ClientKit, connection_client
from ticketbridge.connectors.ticketco.config import TicketcoConfig
from ticketbridge.errors import FatalError
from ticketbridge.http import HttpContext
from ticketbridge.http.auth import QueryToken
from ticketbridge.http.paginate import page_items, page_until_empty

PLATFORM = "ticketco"
Items = list[dict[str, Any]]


class TicketcoClient(ClientKit):
    """One connection's client. ``calls`` counts HTTP attempts, retries included."""

    def __init__(self, config: TicketcoConfig, context: HttpContext) -> None:
        super().__init__()
        self.config = config
        base_url = config.base_url.rstrip("/")
        # Keyed by base URL, not token: every sync reading one TicketCo host shares a budget.
        self.api = self.own(
            connection_client(
                config,
                context,
                platform=PLATFORM,
                account=f"ticketco:{base_url}",
                auth=QueryToken("token", config.token),
                base_url=base_url,
            )
        )

    def _pages(
        self, path: str, key: str, params: dict[str, Any] | None = None
    ) -> AsyncIterator[tuple[Items, int]]:
        return page_until_empty(
            self.api,
            path,
            key=key,
            params=params,
            size_param=self.config.page_size_param,
            size=self.config.page_size,
            short_is_last=self.config.short_page_is_last,
        )

    async def events(self, **filters: str) -> AsyncIterator[Items]:
        """Pages of ``GET /events`` from page 1 until an empty page. Filters as TicketCo names
        them: ``status``, ``type``, ``tags`` (comma list), ``title``, ``location``, ..."""
        async for items, _next in self._pages("events", "events", dict(filters)):
            yield items

    async def events_page(self, page: int = 1) -> Items:
        """One page of ``GET /events`` (for checks: a cheap "is the token accepted")."""
        body = await self.api.get_json("events", {"page": page})
        return page_items(body, "events", PLATFORM, "events")

    async def item_grosses_page(self, event_id: str | int, page: int = 1) -> Items:
        """One page of item grosses of one event, without personal data (for checks)."""
        params = {"event_id": event_id, "page": page, "pii": "false"}
        body = await self.api.get_json("item_grosses", params)
        return page_items(body, "item_grosses", PLATFORM, "item_grosses")

    async def event(self, event_id: str | int) -> dict[str, Any]:
        """``GET /events/{id}``: a bare object, no wrapper."""
        body = await self.api.get_json(f"events/{event_id}")
        if not isinstance(body, dict):
            raise FatalError("GET /events/{id}: expected an object", platform=PLATFORM)
        return body

    async def event_status(self, event_id: str | int) -> str | None:
        """``GET /events/{id}/status``: e.g. ``"available"`` or ``"ended"``.

        The body's shape is not documented; a bare string and ``{"status": ...}`` are read.
        """
        body = await self.api.get_json(f"events/{event_id}/status")
        if isinstance(body, dict):
            body = body.get("status")
        return str(body) if body is not None else None

    async def item_grosses(
        self, event_id: str | int | None = None, *, pii: bool | None = None
    ) -> AsyncIterator[Items]:
        """Pages of ``GET /item_grosses`` (``{"item_grosses": [...]}``) for one event.

        ``pii`` defaults to the connection's setting; TicketCo includes personal data unless
        ``pii=false`` is sent, so only that value is ever sent.
        """
        params: dict[str, Any] = {}
        if event_id is not None:
            params["event_id"] = event_id
        if not (self.config.pii if pii is None else pii):
            params["pii"] = "false"
        async for items, _next in self._pages("item_grosses", "item_grosses", params):
            yield items
