"""Helpers: a harness around an in-process Ticketmaster sandbox, and ground truth taken from
the sandbox's store (not through the connector), so tests compare the source with what the
API holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from ticketbridge.connectors.base import Failed, Page, ReadRequest, Record, Window
from ticketbridge.connectors.ticketmaster import (
    CustomersOptions,
    TicketmasterConfig,
    TicketmasterSource,
)
from ticketbridge.connectors.ticketmaster.sandbox import (
    BASE,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
)
from ticketbridge.connectors.ticketmaster.sandbox_store import TicketmasterStore
from ticketbridge.http import HttpContext
from ticketbridge.model import Booking, Contact
from ticketbridge.sandbox import SandboxApp

ORIGIN = "http://ticketmaster.sandbox.test"
BASE_URL = ORIGIN + BASE
TODAY = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
# A clock for mapping tests: later than every seeded record, earlier than mutations.
NOW = datetime(2025, 6, 15, 12, 30, tzinfo=UTC)


async def no_sleep(_: float) -> None:
    """Retries back off through the context's sleep; data tests need not wait."""


class Harness:
    def __init__(self, sandbox: SandboxApp) -> None:
        self.sandbox = sandbox
        self.transport = httpx.ASGITransport(app=sandbox.app)
        self.raw = httpx.AsyncClient(transport=self.transport, base_url=ORIGIN)
        self.sources: list[TicketmasterSource] = []

    @property
    def store(self) -> TicketmasterStore:
        store = self.sandbox.store
        assert isinstance(store, TicketmasterStore)
        return store

    def source(
        self,
        *,
        api_key: str = SANDBOX_API_KEY,
        password: str = SANDBOX_PASSWORD,
        username: str = SANDBOX_USERNAME,
        market: str = "DK",
        sleep: Callable[[float], Any] = no_sleep,
        clock: Callable[[], datetime] | None = None,
        **settings: Any,
    ) -> TicketmasterSource:
        ctx = HttpContext(sleep=sleep)
        ctx.mount(BASE_URL, self.transport)
        settings.setdefault("rate_per_second", None)
        config = TicketmasterConfig(
            platform="ticketmaster",
            base_url=BASE_URL,
            api_key=SecretStr(api_key),
            market=market,
            username=username,
            password=SecretStr(password),
            **settings,
        )
        src = TicketmasterSource(config, ctx, now=clock)
        self.sources.append(src)
        return src

    async def aclose(self) -> None:
        for src in self.sources:
            await src.aclose()
        await self.raw.aclose()

    async def get(
        self,
        path: str,
        *,
        auth: tuple[str, str] | None = (SANDBOX_USERNAME, SANDBOX_PASSWORD),
        **params: Any,
    ) -> httpx.Response:
        query = {"apikey": SANDBOX_API_KEY, **params}
        return await self.raw.get(BASE + path, params=query, auth=auth)

    async def admin(self, path: str, body: Any = None) -> Any:
        if body is None:
            response = await self.raw.get(f"/_sandbox/{path}")
        else:
            response = await self.raw.post(f"/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json()


async def read_pages(
    source: TicketmasterSource,
    *,
    since: datetime | None = None,
    window: tuple[datetime, datetime] | None = None,
    position: dict[str, Any] | None = None,
    page_size: int | None = None,
    **options: Any,
) -> list[Page]:
    win = Window("updated_at", *window) if window else None
    request = ReadRequest(
        stream="customers",
        options=CustomersOptions(**options),
        since=since,
        window=win,
        position=position,
        page_size=page_size,
    )
    return [page async for page in source.read(request)]


def records(pages: list[Page]) -> list[Record]:
    return [r for p in pages for r in p.records]


def failures(pages: list[Page]) -> list[Failed]:
    return [f for p in pages for f in p.failures]


def contacts(pages: list[Page]) -> dict[str, Contact]:
    """Contacts by customer id (a repeat must be the same record)."""
    out: dict[str, Contact] = {}
    for r in records(pages):
        if isinstance(r.data, Contact):
            assert r.data.external_id is not None
            out[r.data.external_id] = r.data
    return out


def bookings(pages: list[Page]) -> dict[str, Booking]:
    return {
        r.data.confirmation_number: r.data for r in records(pages) if isinstance(r.data, Booking)
    }


def emitted_ids(pages: list[Page], kind: str) -> set[str]:
    """Ids of records and failures of ``kind`` ("contact" or "order")."""
    keys = [r.key for r in records(pages)] + [f.key for f in failures(pages)]
    return {k.rsplit(":", 1)[-1] for k in keys if k.startswith(kind + ":")}
