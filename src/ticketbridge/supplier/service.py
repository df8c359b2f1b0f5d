"""The Supplier API's behaviour: Tiqets products, availability, reservations, bookings and
cancellations, fulfilled in ACME as organization orders.

Invariants (see ``reservations.py`` for the database side):

* availability = ACME capacity - ACME ``soldQuantity`` - tickets held by our live reservations;
* a reservation's check and insert run in one write transaction under the day lock, and the
  held tickets are read *before* ACME's ``soldQuantity``: a hold turned into an ACME order
  in between is then counted twice (safe), never zero times (oversold);
* a booking creates exactly one ACME organization order per reservation: the reservation row
  stays locked across the ACME call, and a booked reservation answers again with the stored
  booking id and barcodes;
* a cancellation cancels (order update to quantity 0) or refunds every live item of the order,
  after which the booking is ``cancelled`` and a second cancellation answers 3003.

Database work runs in worker threads; when a transaction must call ACME while it holds its
lock, the call is handed back to the event loop (:func:`_bridge`), which stays free.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from ticketbridge.connectors.acme.client import AcmeClient
from ticketbridge.connectors.acme.config import AcmeConfig
from ticketbridge.connectors.acme.mapping import (
    OrderLine,
    live_quantities,
    organization_order_body,
)
from ticketbridge.connectors.acme.schemas import Order
from ticketbridge.errors import AcmeRefused, ConfigError
from ticketbridge.http import HttpContext
from ticketbridge.supplier import errors
from ticketbridge.supplier.catalog import Catalog, money
from ticketbridge.supplier.config import ProductMapping, SupplierApiConfig
from ticketbridge.supplier.requests import ReservationRequest, parse_booking, parse_range
from ticketbridge.supplier.reservations import CANCELLED, HELD, Reservation, ReservationStore

T = TypeVar("T")

MAX_DAYS_AHEAD = 366  # [INFER] availability beyond a year is not asked for; keeps answers fast
BRIDGE_TIMEOUT_S = 30.0
ACME_TIMEOUT_S = 4.0  # Tiqets expects an answer within 5 s


def _bridge(loop: asyncio.AbstractEventLoop) -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run a coroutine on ``loop`` from a worker thread and wait for its result."""

    def run(coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout=BRIDGE_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            raise

    return run


class SupplierService:
    def __init__(
        self,
        config: SupplierApiConfig,
        acme_config: AcmeConfig,
        store: ReservationStore,
        http_context: HttpContext,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.environment = config.environment
        self.mapping = config.mapping
        try:
            self.acme_config = acme_config.for_environment(config.environment)
        except ValueError as exc:
            raise ConfigError(str(exc), field="supplier_api.environment") from None
        self.store = store
        self._ctx = http_context
        self._clock = clock or (lambda: datetime.now(UTC))
        self._client: AcmeClient | None = None
        self.catalog = Catalog(
            self.client, self.mapping, timezone=config.timezone, clock=self._clock
        )

    def client(self) -> AcmeClient:
        """The ACME client, made on first use so it belongs to the serving event loop."""
        if self._client is None:
            self._client = AcmeClient(
                self.acme_config,
                self._ctx,
                timeout_s=min(self.acme_config.timeout_s, ACME_TIMEOUT_S),
                max_retries=1,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def product(self, product_id: str) -> ProductMapping:
        found = self.catalog.product(product_id)
        if found is None:
            raise errors.missing_product(product_id)
        return found

    # -- catalogue -------------------------------------------------------------------------

    async def products(self) -> list[dict[str, Any]]:
        out = []
        for product_id, product in self.mapping.products.items():
            template = await self.catalog.template(product)
            if template is None:
                continue  # mapped, but not in this ACME environment: not offered
            item: dict[str, Any] = {
                "id": product_id,
                "name": product.name or template.name,
                "description": product.description
                or template.shortDescription
                or template.description
                or template.name,
                "use_timeslots": await self.catalog.uses_timeslots(product_id),
                "is_refundable": product.is_refundable,
                "provides_pricing": True,
                "cutoff_time": product.cutoff_time,
            }
            if product.max_tickets_per_order is not None:
                item["max_tickets_per_order"] = product.max_tickets_per_order
            out.append(item)
        return out

    async def availability(self, product_id: str, params: dict[str, str]) -> dict[str, Any]:
        product = self.product(product_id)
        start, end = parse_range(params)
        today = (await self.catalog.now_local()).date()
        # Past days answer nothing, never an error (spec); the far future is cut off.
        first, last = max(start, today), min(end, today + timedelta(days=MAX_DAYS_AHEAD))
        if first > last:
            return {}
        slots = await self.catalog.slots(product_id, first, last)
        held = await asyncio.to_thread(self.store.held_now, self.environment)
        out: dict[str, Any] = {}
        for slot in slots:
            inst = slot.instance
            remaining = max(0, inst.capacity - inst.soldQuantity - held.get(inst.id, 0))
            variants = self.catalog.variants(product, inst) if remaining else []
            out[slot.key] = {
                "available_tickets": remaining if variants else 0,
                "variants": [
                    {
                        "id": v.id,
                        "name": v.name,
                        "available_tickets": remaining,
                        "price": {"amount": money(v.price), "currency": self.config.currency},
                    }
                    for v in variants
                ],
            }
        return out

    # -- reservation -----------------------------------------------------------------------

    async def reserve(self, product_id: str, request: ReservationRequest) -> dict[str, Any]:
        product = self.product(product_id)
        now_local = await self.catalog.now_local()
        timeslots = await self.catalog.uses_timeslots(product_id)
        if request.day < now_local.date():
            raise errors.past_date()
        if timeslots:
            visit = datetime.combine(
                request.day, time.fromisoformat(request.time), tzinfo=now_local.tzinfo
            )
            if visit <= now_local:
                raise errors.past_date()
        for variant_id in request.tickets:
            if variant_id not in product.variants:
                raise errors.bad_variant(variant_id)
        limit = product.max_tickets_per_order
        if limit is not None and request.quantity > limit:
            raise errors.too_many_tickets(limit)
        loop = asyncio.get_running_loop()
        held = await asyncio.to_thread(
            self._reserve_locked, product_id, product, request, timeslots, loop
        )
        return {
            "reservation_id": held.id,
            "expires_at": held.expires_at.isoformat(timespec="seconds"),
            "unit_price": {
                t["variant_id"]: {"amount": t["price"], "currency": self.config.currency}
                for t in held.tickets
            },
        }

    def _reserve_locked(
        self,
        product_id: str,
        product: ProductMapping,
        request: ReservationRequest,
        timeslots: bool,
        loop: asyncio.AbstractEventLoop,
    ) -> Reservation:
        run = _bridge(loop)
        now = self.now()
        with self.store.transaction() as conn:
            self.store.lock_day(
                conn, self.environment, product.event_template_id, request.day.isoformat()
            )
            held = self.store.held(conn, self.environment, now)  # before ACME: see module doc
            slots = run(self.catalog.slots(product_id, request.day, request.day))
            if timeslots:
                slot = next((s for s in slots if s.time == request.time), None)
            else:
                slot = slots[0] if slots else None
            if slot is None:
                raise errors.bad_timeslot(request.slot)
            priced = {v.id: v for v in self.catalog.variants(product, slot.instance)}
            for variant_id in request.tickets:
                if variant_id not in priced:
                    raise errors.bad_variant(variant_id)
            inst = slot.instance
            remaining = inst.capacity - inst.soldQuantity - held.get(inst.id, 0)
            if request.quantity > remaining:
                raise errors.no_availability()
            reservation = Reservation(
                id=secrets.token_hex(8),
                environment=self.environment,
                product_id=product_id,
                template_id=product.event_template_id,
                instance_id=inst.id,
                slot=slot.key,
                visit_at=slot.visit_at.astimezone(UTC),
                quantity=request.quantity,
                tickets=[
                    {
                        "variant_id": v,
                        "ticket_type_id": priced[v].ticket_type_id,
                        "quantity": q,
                        "price": money(priced[v].price),
                    }
                    for v, q in request.tickets.items()
                ],
                customer={**request.customer, "order_data": request.order_data},
                currency=self.config.currency,
                status=HELD,
                created_at=now,
                expires_at=now + timedelta(minutes=self.config.reservation_minutes),
            )
            self.store.insert(conn, reservation)
        return reservation

    # -- booking ---------------------------------------------------------------------------

    async def book(self, body: Any, *, test_order: bool) -> Reservation:
        reservation_id, reference = parse_booking(body)
        loop = asyncio.get_running_loop()
        return await asyncio.to_thread(
            self._book_locked, reservation_id, reference, test_order, loop
        )

    def _book_locked(
        self, reservation_id: str, reference: str, test_order: bool, loop: asyncio.AbstractEventLoop
    ) -> Reservation:
        run = _bridge(loop)
        now = self.now()
        with self.store.transaction() as conn:
            found = self.store.reservation_for_update(conn, self.environment, reservation_id)
            if found is None:
                raise errors.bad_reservation()
            if found.status == CANCELLED or (
                found.status != HELD and found.order_reference != reference
            ):
                # A cancelled booking is not booked again, and a reservation belongs to the
                # one Tiqets order that booked it: both are the spec's "incorrect reservation".
                raise errors.bad_reservation()
            if found.status != HELD:
                return found  # a retried booking: the same booking id and barcodes again
            if found.expires_at <= now:
                late = (now - found.expires_at).total_seconds() / 60
                raise errors.reservation_expired(math.floor(late))
            order = run(self._create_order(found, reference, test_order))
            barcodes = self._barcodes(order, found)
            self.store.mark_booked(
                conn,
                found.id,
                booking_id=order.id,
                acme_order_id=order.id,
                order_reference=reference,
                barcodes=barcodes,
                test_order=test_order,
                now=now,
            )
        found.status, found.booking_id, found.acme_order_id = "booked", order.id, order.id
        found.barcodes, found.order_reference, found.booked_at = barcodes, reference, now
        return found

    async def _create_order(self, held: Reservation, reference: str, test_order: bool) -> Order:
        customer = held.customer
        note = f"Tiqets order {reference}, reservation {held.id}"
        body = organization_order_body(
            held.instance_id,
            [
                OrderLine(t["ticket_type_id"], t["quantity"], Decimal(t["price"]))
                for t in held.tickets
            ],
            first_name=customer.get("first_name"),
            last_name=customer.get("last_name"),
            email=customer.get("email"),
            phone=customer.get("phone"),
            notes=note + (" (Tiqets test order)" if test_order else ""),
        )
        try:
            return await self.client().create_organization_order(self.mapping.organization_id, body)
        except AcmeRefused as exc:
            if exc.code == "CAPACITY_EXCEEDED":
                raise errors.no_availability() from None  # sold elsewhere since the hold
            raise

    @staticmethod
    def _barcodes(order: Order, held: Reservation) -> dict[str, list[str]]:
        """One unique code per ticket [GAP: ACME's ticket barcodes are undocumented], made
        from the ACME order number, so the box office finds the order from any ticket."""
        base = order.orderNumber or order.id
        return {
            t["variant_id"]: [f"{base}-{i:02d}-{n:03d}" for n in range(1, t["quantity"] + 1)]
            for i, t in enumerate(held.tickets, start=1)
        }

    # -- cancellation ----------------------------------------------------------------------

    async def cancel(self, booking_id: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await asyncio.to_thread(self._cancel_locked, booking_id, loop)

    def _cancel_locked(self, booking_id: str, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
        run = _bridge(loop)
        now = self.now()
        with self.store.transaction() as conn:
            found = self.store.booking_for_update(conn, self.environment, booking_id)
            if found is None:
                raise errors.missing_booking(booking_id)
            if found.status == "cancelled":
                raise errors.already_cancelled(booking_id)
            product = self.mapping.products.get(found.product_id)
            if product is not None and not product.is_refundable:
                raise errors.not_cancellable()
            cutoff = product.cutoff_time if product is not None else 0
            if now >= found.visit_at:
                raise errors.past_date()
            if cutoff and now >= found.visit_at - timedelta(minutes=cutoff):
                raise errors.too_late_to_cancel(cutoff)
            detail = run(self._cancel_in_acme(found))
            self.store.mark_cancelled(conn, found.id, detail, now)
        return detail

    async def _cancel_in_acme(self, booked: Reservation) -> dict[str, Any]:
        client = self.client()
        assert booked.acme_order_id is not None
        order = await client.order(booked.acme_order_id)
        if order is None:
            return {"method": "none", "reason": "order not found in ACME"}
        live = live_quantities(order)
        if not live:  # cancelled in ACME already (or by an earlier attempt that failed after)
            return {"method": "none", "reason": "no live items left in ACME"}
        if self.config.cancellation == "refund":
            refund = await client.refund(
                order.id, live, notes=f"Tiqets cancelled booking {booked.booking_id}"
            )
            return {
                "method": "refund",
                "refund_id": refund.id,
                "amount": money(refund.refundAmount),
            }
        after = await client.update_order(order.id, dict.fromkeys(live, 0))
        return {
            "method": "order_update",
            "items": len(live),
            "amount": money(after.refundAmount - order.refundAmount),
        }
