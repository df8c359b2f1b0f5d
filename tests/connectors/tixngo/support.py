"""Helpers: a harness around an in-process TIXNGO sandbox, and ground truth read over plain
HTTP (not through the connector), so tests compare the source with what the API serves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from tests.connectors.sandbox_admin import SandboxAdmin
from ticketbridge.connectors.base import Page, ReadRequest, Record
from ticketbridge.connectors.tixngo import TixngoConfig, TixngoSource
from ticketbridge.connectors.tixngo.sandbox import ORGANIZER, SANDBOX_API_KEY
from ticketbridge.http import HttpContext
from ticketbridge.model import Ticket
from ticketbridge.sandbox import SandboxApp

ORIGIN = "http://tixngo.sandbox.test"
TODAY = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
DIFF = "GET /organizer/tickets/diff"
AUTH_HEADERS = {"X-Organizer-Email": ORGANIZER, "X-Api-Key": SANDBOX_API_KEY}


async def no_sleep(_: float) -> None:
    """Retries back off through the context's sleep; tests need not wait."""


class Harness(SandboxAdmin):
    def __init__(self, sandbox: SandboxApp) -> None:
        self.sandbox = sandbox
        self.origin = ORIGIN
        self.transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=sandbox.app)
        self.sources: list[TixngoSource] = []
        self.sleeps: list[float] = []

    def source(
        self, *, transport: httpx.AsyncBaseTransport | None = None, **settings: Any
    ) -> TixngoSource:
        """A source on the sandbox (or on ``transport``), with the sandbox's credentials
        unless ``settings`` say otherwise."""

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        ctx = HttpContext(sleep=sleep)
        ctx.mount(ORIGIN, transport or self.transport)
        values: dict[str, Any] = {
            "base_url": ORIGIN,
            "organizer_email": ORGANIZER,
            "api_key": SecretStr(SANDBOX_API_KEY),
            **settings,
        }
        src = TixngoSource(TixngoConfig(platform="tixngo", **values), ctx)
        self.sources.append(src)
        return src

    async def aclose(self) -> None:
        for src in self.sources:
            await src.aclose()

    async def feed(self, key: str | None = None, limit: int = 10_000) -> dict[str, Any]:
        """One answer of the diff endpoint, asked over plain HTTP."""
        params: dict[str, Any] = {"limit": limit}
        if key is not None:
            params["paginationKey"] = key
        async with httpx.AsyncClient(transport=self.transport, base_url=ORIGIN) as http:
            response = await http.get(
                "/organizer/tickets/diff", params=params, headers=AUTH_HEADERS
            )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def tickets(self) -> dict[str, dict[str, Any]]:
        """Every ticket as the sandbox holds it now, by ticketId."""
        return {t["ticketId"]: t for t in (await self.data())["tickets"]}

    async def diff_calls(self) -> int:
        return int((await self.stats())["requests"].get(DIFF, 0))


async def read_pages(
    source: TixngoSource, *, position: dict[str, Any] | None = None, page_size: int | None = None
) -> list[Page]:
    request = ReadRequest(
        stream="ticket_updates",
        options=source.STREAMS[0].options(),
        position=position,
        page_size=page_size,
    )
    return [page async for page in source.read(request)]


def records(pages: list[Page]) -> list[Record]:
    return [r for p in pages for r in p.records]


def tickets(pages: list[Page]) -> dict[str, Ticket]:
    out: dict[str, Ticket] = {}
    for record in records(pages):
        assert isinstance(record.data, Ticket)
        assert record.key not in out, f"{record.key} emitted twice"
        out[record.data.number] = record.data
    return out


def last_position(pages: list[Page]) -> dict[str, Any] | None:
    found = [p.position for p in pages if p.position is not None]
    return found[-1] if found else None
