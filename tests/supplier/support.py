"""Helpers: a Supplier API in front of an ACME sandbox, in-process or under uvicorn."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette

from ticketbridge.connectors.acme import AcmeConfig, create_sandbox, sandbox_mapping
from ticketbridge.http import HttpContext
from ticketbridge.sandbox import SandboxApp, free_port
from ticketbridge.supplier import SupplierApiConfig, create_app
from ticketbridge.supplier.service import SupplierService

ACME = "http://acme.sandbox.test"
KEY = "tiqets-shared-secret"
TOUR, ENTRY = "highlights-tour", "museum-entry"
CUSTOMER = {
    "first_name": "Jon",
    "last_name": "Snow",
    "email": "tests@tiqets.com",
    "phone": "+31 85 888 4442",
    "country": "NL",
}


def acme_config(**overrides: Any) -> AcmeConfig:
    settings: dict[str, Any] = {
        "platform": "acme",
        "base_url": ACME,
        "api_key": SecretStr("sandbox-acme-key"),
        "username": "api_tiqets",
        "password": SecretStr("sandbox-acme-password"),
        "tenant_id": "1234",
        **overrides,
    }
    return AcmeConfig(**settings)


def supplier_config(**overrides: Any) -> SupplierApiConfig:
    settings: dict[str, Any] = {
        "connection": "acme",
        "api_key": SecretStr(KEY),
        "mappings": {"sandbox": sandbox_mapping(42)},
        **overrides,
    }
    return SupplierApiConfig(**settings)


class Clock:
    """A settable clock that starts at the real time (the sandbox's calendar is real-time)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Harness:
    """One ACME sandbox, the Supplier API in front of it, and an HTTP client for Tiqets' side.

    ``acme`` routes every ACME URL the app may use: ``ACME`` (the default config) plus any
    extra base URL given in ``mounts``.
    """

    def __init__(
        self,
        state_url: str,
        *,
        sandbox: SandboxApp | None = None,
        config: SupplierApiConfig | None = None,
        acme: AcmeConfig | None = None,
        clock: Clock | None = None,
        mounts: dict[str, SandboxApp] | None = None,
    ) -> None:
        self.sandbox = sandbox or create_sandbox()
        self.ctx = HttpContext()
        self.ctx.mount(ACME, httpx.ASGITransport(app=self.sandbox.app))
        for url, other in (mounts or {}).items():
            self.ctx.mount(url, httpx.ASGITransport(app=other.app))
        self.config = config or supplier_config()
        self.app: Starlette = create_app(
            self.config, acme or acme_config(), state_url, self.ctx, clock=clock
        )
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://supplier.test",
            headers={"API-Key": KEY},
        )

    @property
    def service(self) -> SupplierService:
        found: SupplierService = self.app.state.supplier
        return found

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.service.aclose()
        self.service.store.engine.dispose()

    async def availability(
        self, product: str, start: date | None = None, days: int = 7
    ) -> dict[str, Any]:
        first = start or datetime.now(UTC).date()
        answer = await self.http.get(
            f"/v2/products/{product}/availability",
            params={"start": first.isoformat(), "end": (first + timedelta(days=days)).isoformat()},
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def open_slot(self, product: str, need: int = 3) -> tuple[str, dict[str, Any]]:
        """The first slot with at least ``need`` tickets left (not today: no cutoff surprises)."""
        tomorrow = datetime.now(UTC).date() + timedelta(days=1)
        for key, slot in (await self.availability(product, tomorrow)).items():
            if slot["available_tickets"] >= need:
                return key, slot
        raise AssertionError("no open slot")

    async def reserve(self, product: str, slot: str, **tickets: int) -> httpx.Response:
        lines = [{"variant_id": v.replace("_", "-"), "quantity": q} for v, q in tickets.items()]
        return await self.http.post(
            f"/v2/products/{product}/reservation",
            json={"datetime": slot, "tickets": lines, "customer": CUSTOMER},
        )

    async def book(self, reservation_id: str, reference: str = "123456789012") -> httpx.Response:
        return await self.http.post(
            "/v2/booking", json={"reservation_id": reservation_id, "order_reference": reference}
        )

    def instance_of(self, product: str, slot: str) -> str:
        """The ACME instance id behind a slot key (no timeslots: the day's instance)."""
        template = self.config.mapping.products[product].event_template_id
        day, hhmm = slot.split("T")
        for inst in self.sandbox.store.instances.values():  # type: ignore[attr-defined]
            local = inst.start
            if (
                inst.template_id == template
                and local.date().isoformat() == day
                and (hhmm == "00:00" or local.strftime("%H:%M") == hhmm)
            ):
                return str(inst.id)
        raise AssertionError(f"no instance for {slot}")


@contextlib.contextmanager
def served(app: Starlette) -> Iterator[str]:
    """Serve ``app`` under uvicorn on a free loopback port (lifespan on); yield its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="supplier-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the Supplier API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
