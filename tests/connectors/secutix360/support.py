"""Helpers: canonical TIXNGO tickets by hand, a fake clock, and a harness around an
in-process S-360 sandbox reached over real HTTP (ASGI transport)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from tests.connectors.sandbox_admin import SandboxAdmin
from ticketbridge.connectors.base import Change, Mapped, Outcome, Record
from ticketbridge.connectors.secutix360 import (
    Secutix360Config,
    Secutix360Destination,
    TicketFeedbackOptions,
    create_sandbox,
)
from ticketbridge.connectors.secutix360.sandbox_store import S360Store
from ticketbridge.http import HttpContext
from ticketbridge.model import Person, Ticket
from ticketbridge.sandbox import SandboxApp

BASE = "http://s360.sandbox.test"
LOGIN = "sandbox-operator"
PASSWORD = "sandbox-s360-password"
UPDATED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
OPTS = TicketFeedbackOptions()

STATUS = "POST /tnci/backend-apis/externalAccessControlService/{version}/updateExternalTicketStatus"
SEARCH = "POST /tnci/backend-apis/contactInformationPublicService/{version}/searchContact"
CREATE = "POST /tnci/backend-apis/contactInformationPublicService/{version}/createCulturalContacts"
TOKEN = "POST /tnci/backend-apis/authenticationService/{version}/getToken"


class FakeClock:
    """Monotonic seconds that move only when a test says so (token lifetimes)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def person(email: str | None, first: str = "Jane", last: str = "Doe") -> Person:
    return Person(first_name=first, last_name=last, email=email)


def make_ticket(
    number: str = "S360-000001",
    *,
    status: str = "DOWNLOADED",
    mode: str | None = "lifecycle",
    owner: Person | None = None,
    holder: Person | None = None,
    previous: str | None = "INJECTED",
    updated_at: datetime | None = UPDATED,
) -> Record:
    data = Ticket(
        number=number,
        mobile_status=status,
        mobile_status_mode=mode,
        owner=owner,
        holder=holder,
        updated_at=updated_at,
        attributes={"previous_status": previous} if previous else {},
    )
    return Record(key=f"ticket:tixngo:{number}", kind="ticket", data=data)


class Harness(SandboxAdmin):
    """One sandbox, an HttpContext mounted on it, and the destinations built from it."""

    def __init__(self, sandbox: SandboxApp | None = None, **sandbox_kw: Any) -> None:
        self.sandbox = sandbox or create_sandbox(**sandbox_kw)
        self.sleeps: list[float] = []

        async def no_wait(seconds: float) -> None:  # retries stay fast; delays are recorded
            self.sleeps.append(seconds)

        self.origin = BASE
        self.transport = httpx.ASGITransport(app=self.sandbox.app)
        self.ctx = HttpContext(sleep=no_wait)
        self.ctx.mount(BASE, self.transport)
        self._open: list[Secutix360Destination] = []

    @property
    def store(self) -> S360Store:
        store = self.sandbox.store
        assert isinstance(store, S360Store)
        return store

    def config(self, **overrides: Any) -> Secutix360Config:
        settings: dict[str, Any] = {
            "platform": "secutix360",
            "base_url": BASE,
            "operator_login": LOGIN,
            "operator_password": SecretStr(PASSWORD),
        }
        settings.update(overrides)
        return Secutix360Config(**settings)

    def destination(
        self, clock: FakeClock | None = None, **overrides: Any
    ) -> Secutix360Destination:
        dest = Secutix360Destination(self.config(**overrides), self.ctx, clock=clock)
        self._open.append(dest)
        return dest

    async def requests(self) -> dict[str, int]:
        return dict((await self.stats())["requests"])

    async def mutate(self, **params: Any) -> Any:
        return await self.admin("POST", "mutate", params)

    async def faults(self, **settings: Any) -> Any:
        return await self.admin("POST", "faults", settings)

    async def ticket(self, ticket_id: str) -> dict[str, Any]:
        rows = [t for t in (await self.data())["tickets"] if t["ticket_id"] == ticket_id]
        assert len(rows) == 1, rows
        return dict(rows[0])

    async def contact(self, number: int | str) -> dict[str, Any]:
        rows = [
            c for c in (await self.data())["contacts"] if str(c["contact_number"]) == str(number)
        ]
        assert len(rows) == 1, rows
        return dict(rows[0])

    async def contacts_with(self, email: str) -> list[dict[str, Any]]:
        wanted = email.casefold()
        return [c for c in (await self.data())["contacts"] if c["email"].casefold() == wanted]

    async def aclose(self) -> None:
        for dest in self._open:
            await dest.aclose()


def change_for(
    dest: Secutix360Destination,
    record: Record,
    action: str = "create",
    *,
    changed: tuple[str, ...] | None = None,
    dest_ids: dict[str, str] | None = None,
    options: TicketFeedbackOptions | None = None,
) -> Change:
    """What the engine would hand over: the prepared entities, only the changed ones on an
    update (as plan.py does)."""
    mapped: Mapped = dest.prepare("ticket_feedback", record, options or OPTS)
    entities = tuple(mapped) if changed is None else changed
    return Change(
        key=record.key,
        action=action,  # type: ignore[arg-type]
        record=record,
        fields={k: v for k, v in mapped.items() if k in entities},
        dest_ids=dict(dest_ids or {}),
        changed=frozenset(entities),
    )


async def write(
    dest: Secutix360Destination, changes: list[Change], options: TicketFeedbackOptions = OPTS
) -> dict[str, Outcome]:
    outcomes = await dest.write("ticket_feedback", changes, options)
    assert sorted(o.key for o in outcomes) == sorted(c.key for c in changes)
    return {o.key: o for o in outcomes}
