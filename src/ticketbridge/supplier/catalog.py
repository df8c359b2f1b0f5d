"""Tiqets products and timeslots, read from ACME through the venue's mapping.

A product is offered only when it is mapped (and its template exists in the live ACME
environment). Its bookable slots are the template's ACME event instances that are active and
not over: for a product with timeslots, one slot per instance (``YYYY-MM-DDTHH:MM``, venue
time) that has not started; without timeslots, one slot per day (``YYYY-MM-DDT00:00``) on the
first instance of the day that has not ended [INFER when a day has several].
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from ticketbridge.connectors.acme.client import AcmeClient
from ticketbridge.connectors.acme.schemas import EventInstance, EventTemplate
from ticketbridge.supplier.config import EnvMapping, ProductMapping

log = structlog.get_logger("ticketbridge.supplier")

TEMPLATE_TTL_S = 300.0
INFER_DAYS = 14  # how far ahead to look when deciding whether a product has timeslots
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Slot:
    key: str  # "YYYY-MM-DDTHH:MM"
    day: date
    time: str  # "HH:MM", "00:00" without timeslots
    visit_at: datetime  # aware: the slot's start (the day's start without timeslots)
    instance: EventInstance


@dataclass(frozen=True)
class Variant:
    id: str
    name: str
    ticket_type_id: str
    price: Decimal


def money(value: Decimal) -> str:
    return str(value.quantize(CENT))


class Catalog:
    """Reads through one ACME client; caches templates for a few minutes, nothing else."""

    def __init__(
        self,
        client: Callable[[], AcmeClient],
        mapping: EnvMapping,
        *,
        timezone: str | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._client = client
        self.mapping = mapping
        self._tz_name = timezone
        self._tz: ZoneInfo | None = ZoneInfo(timezone) if timezone else None
        self._clock = clock
        self._templates: dict[str, tuple[float, EventTemplate | None]] = {}
        self._timeslots: dict[str, bool] = {}

    def product(self, product_id: str) -> ProductMapping | None:
        return self.mapping.products.get(product_id)

    async def timezone(self) -> ZoneInfo:
        """The venue's zone: configured, else the ACME tenant's (from the session), else UTC."""
        if self._tz is None:
            name = "UTC"
            client = self._client()
            if client.cfg.username:
                name = (await client.session()).tenantTimeZone or "UTC"
            try:
                self._tz = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("supplier.timezone_unknown", zone=name)
                self._tz = ZoneInfo("UTC")
        return self._tz

    async def now_local(self) -> datetime:
        return self._clock().astimezone(await self.timezone())

    async def template(self, product: ProductMapping) -> EventTemplate | None:
        cached = self._templates.get(product.event_template_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        found = await self._client().event_template(product.event_template_id)
        if found is None:
            log.warning("supplier.template_missing", template=product.event_template_id)
        self._templates[product.event_template_id] = (time.monotonic() + TEMPLATE_TTL_S, found)
        return found

    async def uses_timeslots(self, product_id: str) -> bool:
        product = self.mapping.products[product_id]
        if product.use_timeslots is not None:
            return product.use_timeslots
        if product_id not in self._timeslots:
            today = (await self.now_local()).date()
            instances = await self._instances(product, today, today + timedelta(days=INFER_DAYS))
            days = [i.start.astimezone(await self.timezone()).date() for i in instances]
            self._timeslots[product_id] = len(days) != len(set(days))
        return self._timeslots[product_id]

    async def _instances(
        self,
        product: ProductMapping,
        first: date,
        last: date,
    ) -> list[EventInstance]:
        tz = await self.timezone()
        start = datetime(first.year, first.month, first.day, tzinfo=tz)
        # The day after ``last`` ends the range; after the last day a calendar has, nothing.
        after = last + timedelta(days=1) if last < date.max else last
        end = datetime(after.year, after.month, after.day, tzinfo=tz)
        return await self._client().event_instances(start, end, product.event_template_id)

    async def slots(self, product_id: str, first: date, last: date) -> list[Slot]:
        """Bookable slots of the product on the days ``first..last`` (venue time), in order."""
        product = self.mapping.products[product_id]
        timeslots = await self.uses_timeslots(product_id)
        tz = await self.timezone()
        now = self._clock().astimezone(UTC)
        out: dict[str, Slot] = {}
        for inst in await self._instances(product, first, last):
            if not inst.available or inst.state not in (None, "active"):
                continue
            local = inst.start.astimezone(tz)
            if timeslots:
                if inst.start <= now:
                    continue
                key_time, visit = local.strftime("%H:%M"), local
            else:
                ends = inst.end or inst.start + timedelta(days=1)
                if ends <= now:
                    continue
                key_time = "00:00"
                visit = datetime(local.year, local.month, local.day, tzinfo=tz)
            key = f"{local.date().isoformat()}T{key_time}"
            # Two instances on one key (no timeslots, or two at the same minute): first wins.
            out.setdefault(key, Slot(key, local.date(), key_time, visit, inst))
        return sorted(out.values(), key=lambda s: s.key)

    def variants(self, product: ProductMapping, instance: EventInstance) -> list[Variant]:
        """The product's variants sold on ``instance``: those whose ticket type has a price in
        the instance's price list."""
        out = []
        for variant_id, vm in product.variants.items():
            price = instance.priceList.price_of(vm.ticket_type_id)
            if price is None:
                continue
            name = vm.name or next(
                (
                    p.personType.name
                    for p in instance.priceList.prices
                    if p.personType.id == vm.ticket_type_id
                ),
                variant_id,
            )
            out.append(Variant(variant_id, name, vm.ticket_type_id, price.quantize(CENT)))
        return out
