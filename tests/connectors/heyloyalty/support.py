"""Helpers: canonical contacts and orders by hand, and a harness around an in-process sandbox."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

import httpx
from pydantic import SecretStr

from tests.connectors.sandbox_admin import SandboxAdmin
from ticketbridge.connectors.base import Change, Mapped, Record, StreamOptions
from ticketbridge.connectors.heyloyalty import (
    MEMBERS,
    HeyloyaltyConfig,
    HeyloyaltyDestination,
    MembersOptions,
)
from ticketbridge.engine.policy import WritePolicy
from ticketbridge.engine.spec import SyncSpec
from ticketbridge.http import HttpContext
from ticketbridge.http.auth import hmac_hex_b64
from ticketbridge.model import Booking, Consent, ConsentState, Contact, Event, Money, Ticket
from ticketbridge.sandbox import SandboxApp

BASE = "http://heyloyalty.sandbox.test"
API_KEY = "sandbox-hl-key"
SECRET = "sandbox-hl-secret"


def make_contact(
    cid: str = "1",
    *,
    email: str | None = "jane.doe@example.com",
    mobile: str | None = "+45 12 34 56 78",
    email_consent: ConsentState = ConsentState.GRANTED,
    sms_consent: ConsentState = ConsentState.UNKNOWN,
    first_name: str | None = "Jane",
    attributes: dict[str, Any] | None = None,
) -> Record:
    """A canonical contact as the Ticketmaster source emits it (raw payload in attributes)."""
    raw = (
        attributes
        if attributes is not None
        else {
            "id": cid,
            "first_name": first_name,
            "last_name": "Doe",
            "email": email,
            "cards": {"Cardnumber": 1234, "Cardname": "Pension"},
            "birth_date": "1985-03-02",
        }
    )
    contact = Contact.build(
        email=email,
        mobile=mobile,
        default_region="DK",
        external_id=cid,
        first_name=first_name,
        last_name="Doe",
        email_consent=Consent(state=email_consent),
        sms_consent=Consent(state=sms_consent),
        attributes=raw,
    )
    return Record(key=f"contact:ticketmaster:DK:{cid}", kind="contact", data=contact)


def make_order(
    order_id: str = "987",
    *,
    email: str | None = "jane.doe@example.com",
    tickets: int = 2,
    price: str = "450.00",
    cancelled: bool = False,
) -> Record:
    buyer = Contact.build(email=email, first_name="Jane", last_name="Doe")
    event = Event(external_id="EV-1", name="Aarhus Jazz Night")
    data = Booking(
        confirmation_number=order_id,
        booked_at=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        status="cancelled" if cancelled else "booked",
        contact=buyer,
        value=Money.from_decimal(price, "DKK") if not tickets else None,
        event=event,
        tickets=[
            Ticket(number=f"{order_id}-{i}", price=Money.from_decimal(price, "DKK"))
            for i in range(tickets)
        ],
    )
    return Record(key=f"order:ticketmaster:DK:{order_id}", kind="booking", data=data)


def options(**values: Any) -> MembersOptions:
    return MembersOptions.model_validate(values)


def members_sync(**values: Any) -> SyncSpec:
    """A Ticketmaster customers -> Heyloyalty members sync matching on e-mail, with the
    object's default write policy and ``values`` as its members options."""
    return SyncSpec(
        name="tm-to-hl", stream="customers", stream_options=StreamOptions(), obj="members",
        object_options=options(match=["email"], **values),
        policy=WritePolicy.build(MEMBERS.default_policy, None),
    )  # fmt: skip


class Harness(SandboxAdmin):
    """One sandbox, an HttpContext mounted on it, and the destinations built from it."""

    def __init__(self, sandbox: SandboxApp) -> None:
        self.sandbox = sandbox
        self.sleeps: list[float] = []

        async def no_wait(seconds: float) -> None:  # retries stay fast; delays are recorded
            self.sleeps.append(seconds)

        self.origin = BASE
        self.transport = httpx.ASGITransport(app=sandbox.app)
        self.ctx = HttpContext(sleep=no_wait)
        self.ctx.mount(BASE, self.transport)
        self._open: list[HeyloyaltyDestination] = []

    def config(self, **overrides: Any) -> HeyloyaltyConfig:
        settings: dict[str, Any] = {
            "platform": "heyloyalty",
            "base_url": BASE + "/loyalty/v1",
            "api_key": API_KEY,
            "api_secret": SecretStr(SECRET),
            "list_id": 4711,
            "tracking_base_url": BASE + "/tracking/api",
            "tracking_id": "sandbox-tracking",
            **overrides,
        }
        return HeyloyaltyConfig(**settings)

    def destination(self, **overrides: Any) -> HeyloyaltyDestination:
        dest = HeyloyaltyDestination(self.config(**overrides), self.ctx)
        self._open.append(dest)
        return dest

    async def signed(
        self,
        method: str,
        path: str,
        *,
        secret: str = SECRET,
        stamp: str | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """A raw request signed like the official client (for sandbox-level tests)."""
        stamp = stamp or formatdate(usegmt=True)
        auth = (API_KEY, hmac_hex_b64(secret, stamp))
        async with httpx.AsyncClient(transport=self.transport, base_url=BASE) as http:
            return await http.request(
                method, path, auth=auth, headers={"X-Request-Timestamp": stamp}, **kw
            )

    async def aclose(self) -> None:
        for dest in self._open:
            await dest.aclose()


def change_for(
    dest: HeyloyaltyDestination,
    record: Record,
    opts: MembersOptions,
    action: str = "create",
    *,
    dest_ids: dict[str, str] | None = None,
) -> Change:
    """What the engine hands over with the default policy (purchase on create only)."""
    mapped: Mapped = dest.prepare("members", record, opts)
    fields = {k: v for k, v in mapped.items() if action == "create" or k != "purchase"}
    return Change(
        key=record.key,
        action=action,  # type: ignore[arg-type]
        record=record,
        fields=fields,
        dest_ids=dict(dest_ids or {}),
    )


def member_by_email(data: dict[str, Any], email: str) -> dict[str, Any]:
    return next(
        m for m in data["members"] if (m["fields"].get("email") or "").lower() == email.lower()
    )
