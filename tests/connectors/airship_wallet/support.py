"""Helpers: canonical tickets by hand, a fake clock, and a harness around an in-process
sandbox reached over real HTTP (ASGI transport)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.connectors.sandbox_admin import SandboxAdmin
from ticketbridge.connectors.airship_wallet import (
    AirshipWalletConfig,
    AirshipWalletDestination,
    EventTicketsOptions,
    create_sandbox,
)
from ticketbridge.connectors.airship_wallet.sandbox_store import WalletStore
from ticketbridge.connectors.base import Change, Mapped, Record
from ticketbridge.http import HttpContext
from ticketbridge.model import Event, Money, Person, Ticket, Venue
from ticketbridge.sandbox import SandboxApp

BASE = "http://wallet.sandbox.test"
HOOKS = "http://hooks.venue.test"
PROJECT = 12345
IOS, ANDROID = 1001, 1002
SECRET = "sandbox-wallet-secret"
CLIENT_SECRET = "sandbox-wallet-client-secret"
STARTS = datetime(2026, 12, 31, 19, 30, tzinfo=UTC)


class FakeClock:
    """Monotonic seconds that move only when a test says so (token lifetimes)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_event(
    ext: str = "E1",
    *,
    name: str = "New Year Gala",
    starts: datetime | None = STARTS,
    venue: str | None = "Riverside Hall",
    address: str | None = "1 High Street, Leeds",
) -> Event:
    return Event(
        external_id=ext,
        name=name,
        venue=Venue(name=venue, address=address) if venue else None,
        starts_at=starts,
        doors_open_at=starts.replace(hour=18) if starts else None,
        ends_at=starts.replace(hour=23) if starts else None,
    )


def make_ticket(
    number: str = "T1",
    *,
    event: Event | None = None,
    seat: str | None = "A12",
    row: str | None = "A",
    section: str | None = "Stalls",
    gate: str | None = "3",
    status: str | None = "valid",
    price: Money | None = None,
    barcode: str | None = None,
    holder: str | None = "Jane Doe",
    no_event: bool = False,
    **attributes: Any,
) -> Record:
    first, _, last = (holder or "").partition(" ")
    data = Ticket(
        number=number,
        barcode=barcode if barcode is not None else f"BC{number}",
        seat=seat,
        row=row,
        section=section,
        gate=gate,
        type="Adult",
        price=price if price is not None else Money(minor=2500, currency="GBP"),
        holder=Person(first_name=first, last_name=last) if holder else None,
        status=status,
        event=None if no_event else (event or make_event()),
        attributes=attributes,
    )
    return Record(key=f"ticket:test:{number}", kind="ticket", data=data)


def receiver() -> tuple[Starlette, list[dict[str, Any]]]:
    """A venue's callback endpoint: records every POST it gets."""
    got: list[dict[str, Any]] = []

    async def hook(request: Request) -> JSONResponse:
        got.append(
            {
                "path": request.url.path,
                "headers": dict(request.headers),
                "body": await request.body(),
            }
        )
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])]), got


class Harness(SandboxAdmin):
    """One sandbox, an HttpContext mounted on it, and the destinations built from it."""

    def __init__(self, sandbox: SandboxApp | None = None, **sandbox_kw: Any) -> None:
        self.hooks_app, self.hooks = receiver()
        hooks_ctx = HttpContext()
        hooks_ctx.mount(HOOKS, httpx.ASGITransport(app=self.hooks_app))
        self.sandbox = sandbox or create_sandbox(callback_context=hooks_ctx, **sandbox_kw)
        self.sleeps: list[float] = []

        async def no_wait(seconds: float) -> None:  # retries stay fast; delays are recorded
            self.sleeps.append(seconds)

        self.origin = BASE
        self.transport = httpx.ASGITransport(app=self.sandbox.app)
        self.ctx = HttpContext(sleep=no_wait)
        self.ctx.mount(BASE, self.transport)
        self._open: list[AirshipWalletDestination] = []

    @property
    def store(self) -> WalletStore:
        store = self.sandbox.store
        assert isinstance(store, WalletStore)
        return store

    def config(self, auth: str = "basic", **overrides: Any) -> AirshipWalletConfig:
        settings: dict[str, Any] = {
            "platform": "airship_wallet",
            "base_url": BASE + "/v1",
            "project_id": PROJECT,
            "auth": auth,
            "token_url": BASE + "/token",
            "ios_template_id": IOS,
            "android_template_id": ANDROID,
        }
        if auth == "basic":
            settings.update(project_key="sandbox-wallet-key", project_secret=SecretStr(SECRET))
        else:
            settings.update(
                client_id="sandbox-wallet-client", client_secret=SecretStr(CLIENT_SECRET)
            )
        settings.update(overrides)
        return AirshipWalletConfig(**settings)

    def destination(
        self, auth: str = "basic", clock: FakeClock | None = None, **overrides: Any
    ) -> AirshipWalletDestination:
        dest = AirshipWalletDestination(self.config(auth, **overrides), self.ctx, clock=clock)
        self._open.append(dest)
        return dest

    async def requests(self) -> dict[str, int]:
        return dict((await self.stats())["requests"])

    async def aclose(self) -> None:
        for dest in self._open:
            await dest.aclose()


def change_for(
    dest: AirshipWalletDestination,
    record: Record,
    action: str = "create",
    *,
    changed: tuple[str, ...] | None = None,
    dest_ids: dict[str, str] | None = None,
    options: EventTicketsOptions | None = None,
) -> Change:
    """What the engine would hand over: the prepared entities, only the changed ones on an
    update (as plan.py does)."""
    mapped: Mapped = dest.prepare("event_tickets", record, options or EventTicketsOptions())
    entities = tuple(mapped) if changed is None else changed
    return Change(
        key=record.key,
        action=action,  # type: ignore[arg-type]
        record=record,
        fields={k: v for k, v in mapped.items() if k in entities},
        dest_ids=dict(dest_ids or {}),
        changed=frozenset(entities),
    )
