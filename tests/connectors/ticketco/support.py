"""Helpers: a harness around an in-process TicketCo sandbox, and ground truth read over plain
HTTP (not through the connector), so tests compare the source with what the API serves."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr

from ticketbridge.connectors.base import Page, ReadRequest, Record, Window
from ticketbridge.connectors.ticketco import BookingsOptions, TicketcoConfig, TicketcoSource
from ticketbridge.connectors.ticketco.sandbox import SANDBOX_TOKEN
from ticketbridge.http import HttpContext
from ticketbridge.model import Booking
from ticketbridge.sandbox import SandboxApp

ORIGIN = "http://ticketco.sandbox.test"
BASE_URL = ORIGIN + "/api/public/v1"
OSLO = ZoneInfo("Europe/Oslo")
TODAY = datetime(2025, 6, 15, 12, 0, tzinfo=OSLO)
# The sandbox's own clock: early morning of TODAY (yesterday is over, today is not).
NOW = datetime(2025, 6, 15, 6, 0, tzinfo=OSLO)
MIDNIGHT = datetime(2025, 6, 15, 0, 0, tzinfo=OSLO)


async def no_sleep(_: float) -> None:
    """Retries back off through the context's sleep; tests need not wait."""


def window(days_from: int, days_to: int) -> Window:
    return Window(
        "attendance_at", MIDNIGHT + timedelta(days=days_from), MIDNIGHT + timedelta(days=days_to)
    )


class Harness:
    def __init__(self, sandbox: SandboxApp) -> None:
        self.sandbox = sandbox
        self.transport = httpx.ASGITransport(app=sandbox.app)
        self.raw = httpx.AsyncClient(transport=self.transport, base_url=ORIGIN)
        self.sources: list[TicketcoSource] = []

    def source(
        self,
        *,
        token: str = SANDBOX_TOKEN,
        now: datetime = NOW,
        clock: Callable[[], datetime] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **settings: Any,
    ) -> TicketcoSource:
        """A source on the sandbox, or on ``transport`` (e.g. :meth:`rewriting` it)."""
        ctx = HttpContext(sleep=no_sleep)
        ctx.mount(BASE_URL, transport or self.transport)
        config = TicketcoConfig(
            platform="ticketco", base_url=BASE_URL, token=SecretStr(token), **settings
        )
        src = TicketcoSource(config, ctx, now=clock or (lambda: now))
        self.sources.append(src)
        return src

    def rewriting(self, suffix: str, edit: Callable[[Any], None]) -> httpx.MockTransport:
        """The sandbox, with ``edit`` applied to the JSON body of every path ending in
        ``suffix``: for payloads the sandbox does not serve."""

        async def handle(request: httpx.Request) -> httpx.Response:
            response = await self.transport.handle_async_request(request)
            body = await response.aread()
            if request.url.path.endswith(suffix):
                data = json.loads(body)
                edit(data)
                body = json.dumps(data).encode()
            return httpx.Response(response.status_code, content=body)

        return httpx.MockTransport(handle)

    async def aclose(self) -> None:
        for src in self.sources:
            await src.aclose()
        await self.raw.aclose()

    # -- ground truth over plain HTTP --------------------------------------------------

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.raw.get(
            f"/api/public/v1/{path}", params={"token": SANDBOX_TOKEN, **params}
        )
        response.raise_for_status()
        return response.json()

    async def all_pages(self, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        params.setdefault("per_page", 1000)  # ground truth in few calls; the source pages by 7
        while items := (await self.get(path, page=page, **params))[key]:
            out.extend(items)
            page += 1
        return out

    async def events(self) -> list[dict[str, Any]]:
        return await self.all_pages("events", "events")

    async def items(self, event_id: int) -> list[dict[str, Any]]:
        return await self.all_pages("item_grosses", "item_grosses", event_id=event_id)

    async def admin(self, path: str, body: Any = None) -> Any:
        if body is None:
            response = await self.raw.get(f"/_sandbox/{path}")
        else:
            response = await self.raw.post(f"/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json()


async def read_pages(
    source: TicketcoSource,
    *,
    venues: list[str] | None = None,
    win: Window | None = None,
    position: dict[str, Any] | None = None,
    page_size: int | None = None,
) -> list[Page]:
    request = ReadRequest(
        stream="bookings",
        options=BookingsOptions(venues=venues or []),
        window=win,
        position=position,
        page_size=page_size,
    )
    return [page async for page in source.read(request)]


def records(pages: list[Page]) -> list[Record]:
    return [r for p in pages for r in p.records]


def bookings(pages: list[Page]) -> dict[str, Booking]:
    out: dict[str, Booking] = {}
    for record in records(pages):
        assert isinstance(record.data, Booking)
        assert record.key not in out, f"{record.key} emitted twice"
        out[record.data.confirmation_number] = record.data
    return out


def venue_norm(name: str) -> str:
    return " ".join(name.split()).casefold()
