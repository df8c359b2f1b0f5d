"""In-memory state of the ACME sandbox: tenant, API user, templates, instances, orders, refunds.

Invariants the tests rely on:

* every id is drawn from ``random.Random(seed)``: the same seed gives the same ids, another seed
  (a "production" tenant) gives other ids, as ACME's environments do;
* ``soldQuantity`` of an instance = seeded box-office sales + the quantities of live order
  items; order create raises it, order update and refunds lower it, never below the seed;
* an order item's ``quantity`` only goes down (update to a lower value, 0, or a refund), and
  every decrease is a refund record on the order;
* writes are counted with ``Stats.record_write``: ``order:<id>`` create/update, ``refund:<id>``
  create.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ticketbridge.connectors.acme.config import (
    SANDBOX_PASSWORD,
    SANDBOX_TENANT_ID,
    SANDBOX_USERNAME,
    TIQETS_PERMISSIONS,
)
from ticketbridge.sandbox import Stats

DAYS_BEFORE = 2  # a few past days, so "no availability in the past" is exercised
DAYS_AHEAD = 60
REFUND_REASONS = ("Cancelled Event", "Miscellaneous")  # [CODE] the client's reason codes
CENT = Decimal("0.01")

# fmt: off
PERSON_TYPES = (("Adult", "adult"), ("Child", "child"), ("OTA Adult", "adult"),
                ("Senior", "senior"))
ORGANIZATIONS = (("Tiqets", "OTA"), ("Riverside School", "School"),
                 ("Harbour Tours", "Tour Operator"))
_TIMES = ("10:00", "11:30", "13:00", "14:30", "16:00")
# name, description, admission type, local start times, minutes, capacity, prices by ticket
# type, weekdays (None: daily), review state. One all-day template, one with five timeslots a
# day, one on Thursday evenings only (not mapped in the demo), one draft (never listed).
CATALOGUE: tuple[tuple[Any, ...], ...] = (
    ("General Admission", "All-day entry to the museum.", "generalAdmission", ("09:00",),
     480, 400, {"Adult": "25.00", "Child": "12.50", "OTA Adult": "23.00"}, None, "published"),
    ("Highlights Tour", "A guided hour through the collection.", "timed", _TIMES,
     60, 20, {"Adult": "18.00", "Child": "9.00", "OTA Adult": "16.50"}, None, "published"),
    ("Late Opening", "Thursday evening opening with music.", "timed", ("18:00",),
     180, 150, {"Adult": "15.00", "Senior": "12.00"}, frozenset({3}), "published"),
    ("Spring Exhibition", "Not yet on sale.", "generalAdmission", ("10:00",),
     420, 200, {"Adult": "20.00", "Child": "10.00", "OTA Adult": "18.00"}, None, "draft"),
)
# fmt: on


class AcmeError(Exception):
    """An ACME error answer: ``status`` plus the ``{"message","code"}`` body [INFER]."""

    def __init__(self, status: int, message: str, code: str) -> None:
        self.status = status
        self.message = message
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class PersonType:
    id: str
    name: str
    type: str


@dataclass
class Template:
    id: str
    name: str
    description: str
    admission_type: str
    slots: tuple[tuple[int, int], ...]  # local start times (hour, minute)
    minutes: int  # length of each instance
    capacity: int
    prices: dict[str, Decimal]  # person type id -> price
    weekdays: frozenset[int] | None = None  # None: every day
    review_state: str = "published"
    price_list_id: str = ""


@dataclass
class Instance:
    id: str
    template_id: str
    start: datetime
    end: datetime
    capacity: int
    sold: int
    state: str = "active"


@dataclass
class Item:
    id: str
    event_id: str
    person_type_id: str
    original_quantity: int
    quantity: int
    unit_price: Decimal


@dataclass
class Refund:
    id: str
    order_id: str
    reason: str
    source: str  # "refund" (refunds endpoint) or "update" (a lowered quantity)
    items: list[tuple[str, int, Decimal]]  # (item id, quantity, amount)
    created_on: str

    @property
    def amount(self) -> Decimal:
        return sum((a for _, _, a in self.items), Decimal(0))


@dataclass
class Order:
    id: str
    number: str
    organization_id: str
    body: dict[str, Any]
    items: list[Item]
    created_on: str
    updated_on: str
    refunds: list[Refund] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((i.unit_price * i.original_quantity for i in self.items), Decimal(0))

    @property
    def refunded(self) -> Decimal:
        return sum((r.amount for r in self.refunds), Decimal(0))


class AcmeStore:
    def __init__(
        self,
        *,
        stats: Stats,
        seed: int = 42,
        today: datetime | None = None,
        permissions: list[str] | None = None,
        timezone: str = "UTC",
        tenant_id: str = SANDBOX_TENANT_ID,
        session_minutes: int = 30,
    ) -> None:
        self.stats = stats
        self.seed = seed
        self.today = today
        self.tz = ZoneInfo(timezone)
        self.timezone = timezone
        self.tenant_id = tenant_id
        self.session_minutes = session_minutes
        self._initial_permissions = (
            list(TIQETS_PERMISSIONS) if permissions is None else list(permissions)
        )
        self.reset()

    # -- seeding ---------------------------------------------------------------------------

    def reset(self) -> None:
        self._rng = random.Random(self.seed)
        self.permissions: set[str] = set(self._initial_permissions)
        self.sessions: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self.orders: dict[str, Order] = {}
        self._order_number = 100_000 + self._rng.randint(0, 899) * 100
        self.person_types = [PersonType(self._oid(), n, t) for n, t in PERSON_TYPES]
        self.organizations = [
            {"id": self._oid(), "name": n, "category": c} for n, c in ORGANIZATIONS
        ]
        pt_ids = {p.name: p.id for p in self.person_types}
        self.templates = []
        for name, about, kind, times, minutes, capacity, prices, days, state in CATALOGUE:
            slots = tuple((int(t[:2]), int(t[3:])) for t in times)
            priced = {pt_ids[k]: Decimal(v) for k, v in prices.items()}
            template = Template(self._oid(), name, about, kind, slots, minutes, capacity, priced)
            template.weekdays, template.review_state = days, state
            template.price_list_id = self._oid()
            self.templates.append(template)
        self.instances: dict[str, Instance] = {}
        start_day = self.local_today() - timedelta(days=DAYS_BEFORE)
        for offset in range(DAYS_BEFORE + DAYS_AHEAD):
            day = start_day + timedelta(days=offset)
            for t in self.templates:
                if t.review_state != "published":
                    continue
                if t.weekdays is not None and day.weekday() not in t.weekdays:
                    continue
                for hour, minute in t.slots:
                    start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.tz)
                    inst = Instance(
                        self._oid(),
                        t.id,
                        start,
                        start + timedelta(minutes=t.minutes),
                        t.capacity,
                        self._rng.randint(0, t.capacity // 4),
                    )
                    self.instances[inst.id] = inst

    def _oid(self) -> str:
        """A 24-hex object id, as ACME's ids look."""
        return f"{self._rng.getrandbits(96):024x}"

    def local_today(self) -> date:
        return (self.today or datetime.now(UTC)).astimezone(self.tz).date()

    def now_iso(self) -> str:
        return datetime.now(UTC).isoformat(timespec="seconds")

    # -- auth ------------------------------------------------------------------------------

    def login(self, user: str | None, password: str | None, tenant: str | None) -> dict[str, Any]:
        if not user or not password:
            raise AcmeError(
                401,
                "x-acme-user-name (or x-acme-email) and x-acme-password are required",
                "UNAUTHORIZED",
            )
        if user != SANDBOX_USERNAME or password != SANDBOX_PASSWORD:
            raise AcmeError(401, "Invalid user name or password", "INVALID_CREDENTIALS")
        if tenant != self.tenant_id:
            # A username-only user is unique per tenant only, so the tenant is required [DOC].
            raise AcmeError(401, "Unknown or missing x-acme-tenantId", "INVALID_TENANT")
        token = secrets.token_hex(16)  # not from the seeded rng: logins must not shift ids
        expires = time.time() + self.session_minutes * 60
        self.sessions[token] = expires
        return {
            "session": token,
            "expireMs": int(expires * 1000),
            "roles": sorted(self.permissions),
            "userName": SANDBOX_USERNAME,
            "email": None,
            "tenantId": int(self.tenant_id),
            "tenantTimeZone": self.timezone,
            "firstName": "API",
            "lastName": "Tiqets",
            "id": 501,
            "confirmed": True,
            "onBoarded": True,
            "title": None,
            "companyName": "Sandbox Museum",
        }

    def check_session(self, token: str | None) -> None:
        expires = self.sessions.get(token or "")
        if expires is None or expires <= time.time():
            self.sessions.pop(token or "", None)
            raise AcmeError(401, "Session missing or expired", "SESSION_EXPIRED")

    def require(self, *permissions: str) -> None:
        missing = [p for p in permissions if p not in self.permissions]
        if missing:
            raise AcmeError(
                403, f"User {SANDBOX_USERNAME} lacks permission {', '.join(missing)}", "FORBIDDEN"
            )

    # -- lookups ---------------------------------------------------------------------------

    def template(self, template_id: str) -> Template | None:
        return next((t for t in self.templates if t.id == template_id), None)

    def person_type(self, person_type_id: str) -> PersonType | None:
        return next((p for p in self.person_types if p.id == person_type_id), None)

    def organization(self, organization_id: str) -> dict[str, Any] | None:
        return next((o for o in self.organizations if o["id"] == organization_id), None)

    def instances_between(self, start: datetime, end: datetime) -> list[Instance]:
        return sorted(
            (i for i in self.instances.values() if start <= i.start < end),
            key=lambda i: (i.start, i.id),
        )

    # -- writes ----------------------------------------------------------------------------

    def create_order(self, organization_id: str, body: dict[str, Any]) -> Order:
        if self.organization(organization_id) is None:
            raise AcmeError(404, f"Organization {organization_id} not found", "NOT_FOUND")
        if body.get("organizationId") not in (None, organization_id):
            raise AcmeError(400, "organizationId does not match the path", "INVALID_REQUEST")
        events = body.get("events")
        if not isinstance(events, list) or not events:
            raise AcmeError(400, "events must be a non-empty list", "INVALID_REQUEST")
        lines: list[tuple[Instance, str, int, Decimal]] = []
        for event in events:
            for raw in (event.get("items") if isinstance(event, dict) else None) or []:
                lines.append(self._order_line(event, raw))
        if not lines:
            raise AcmeError(400, "the order has no items", "INVALID_REQUEST")
        wanted: dict[str, int] = {}
        for inst, _, qty, _ in lines:
            wanted[inst.id] = wanted.get(inst.id, 0) + qty
        for inst_id, qty in wanted.items():
            inst = self.instances[inst_id]
            if inst.sold + qty > inst.capacity:
                raise AcmeError(
                    400,
                    f"Only {inst.capacity - inst.sold} tickets left for event {inst_id}",
                    "CAPACITY_EXCEEDED",
                )
        total = sum((price * qty for _, _, qty, price in lines), Decimal(0))
        charge = body.get("chargeAmount")
        if charge is not None and Decimal(str(charge)).quantize(CENT) != total.quantize(CENT):
            raise AcmeError(
                400, f"chargeAmount {charge} does not match the items ({total})", "INVALID_AMOUNT"
            )
        now = self.now_iso()
        self._order_number += 1
        items = [Item(self._oid(), inst.id, pt, qty, qty, price) for inst, pt, qty, price in lines]
        order = Order(
            self._oid(), str(self._order_number), organization_id, dict(body), items, now, now
        )
        for inst_id, qty in wanted.items():
            self.instances[inst_id].sold += qty
        self.orders[order.id] = order
        self.stats.record_write(f"order:{order.id}", "create")
        return order

    def _order_line(self, event: dict[str, Any], raw: Any) -> tuple[Instance, str, int, Decimal]:
        if not isinstance(raw, dict):
            raise AcmeError(400, "an order item must be an object", "INVALID_REQUEST")
        event_id = str(raw.get("eventId") or event.get("eventId") or "")
        inst = self.instances.get(event_id)
        if inst is None or inst.state != "active":
            raise AcmeError(400, f"Unknown or inactive event {event_id!r}", "INVALID_EVENT")
        if raw.get("itemType", "Event") != "Event":
            raise AcmeError(400, "only itemType Event is supported here", "INVALID_REQUEST")
        pt = str(raw.get("personTypeId") or "")
        template = self.template(inst.template_id)
        assert template is not None
        if pt not in template.prices:
            raise AcmeError(
                400, f"Ticket type {pt!r} is not sold for event {event_id}", "INVALID_PERSON_TYPE"
            )
        qty = raw.get("quantity")
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            raise AcmeError(
                400, "quantity must be a whole number of at least 1", "INVALID_QUANTITY"
            )
        amount = raw.get("amount")
        price = template.prices[pt] if amount is None else Decimal(str(amount))
        return inst, pt, qty, price.quantize(CENT)

    def _order(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise AcmeError(404, f"Order {order_id} not found", "NOT_FOUND")
        return order

    def _lower(self, order: Order, item: Item, to: int) -> tuple[str, int, Decimal]:
        delta = item.quantity - to
        item.quantity = to
        self.instances[item.event_id].sold -= delta
        return item.id, delta, (item.unit_price * delta).quantize(CENT)

    def update_order(self, body: dict[str, Any]) -> Order:
        order = self._order(str(body.get("orderId") or ""))
        changes = body.get("orderItems")
        if not isinstance(changes, list) or not changes:
            raise AcmeError(400, "orderItems must be a non-empty list", "INVALID_REQUEST")
        by_id = {i.id: i for i in order.items}
        plan: list[tuple[Item, int]] = []
        for change in changes:
            item = by_id.get(str(change.get("orderItemId"))) if isinstance(change, dict) else None
            qty = change.get("quantity") if isinstance(change, dict) else None
            if item is None:
                raise AcmeError(400, "unknown orderItemId", "INVALID_ITEM")
            if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
                raise AcmeError(400, "quantity must be a whole number >= 0", "INVALID_QUANTITY")
            if qty > item.quantity:
                # [INFER] raising a quantity would be a new sale; the sandbox only lowers.
                raise AcmeError(400, "quantities can only be lowered here", "INVALID_QUANTITY")
            plan.append((item, qty))
        refunded = [self._lower(order, item, qty) for item, qty in plan if qty < item.quantity]
        order.updated_on = self.now_iso()
        self.stats.record_write(f"order:{order.id}", "update")
        if refunded:
            self._record_refund(order, "Miscellaneous", "update", refunded)
        return order

    def refund(self, body: dict[str, Any]) -> Refund:
        order = self._order(str(body.get("orderId") or ""))
        reason = body.get("incidentReasonCode")
        if reason not in REFUND_REASONS:
            raise AcmeError(
                400, f"incidentReasonCode must be one of {list(REFUND_REASONS)}", "INVALID_REASON"
            )
        by_id = {i.id: i for i in order.items}
        raw_items = body.get("refundItems")
        plan: list[tuple[Item, int]] = []
        if raw_items is None:
            plan = [(i, i.quantity) for i in order.items if i.quantity > 0]
        else:
            for raw in raw_items if isinstance(raw_items, list) else []:
                item = by_id.get(str(raw.get("orderItemId"))) if isinstance(raw, dict) else None
                qty = raw.get("quantity") if isinstance(raw, dict) else None
                if item is None or not isinstance(qty, int) or qty < 1 or qty > item.quantity:
                    raise AcmeError(
                        400,
                        "refundItems must name items of the order with 1..quantity tickets",
                        "INVALID_ITEM",
                    )
                plan.append((item, qty))
        if not plan:
            raise AcmeError(400, "Nothing left to refund on this order", "NOTHING_TO_REFUND")
        lines = [self._lower(order, item, item.quantity - qty) for item, qty in plan]
        order.updated_on = self.now_iso()
        self.stats.record_write(f"order:{order.id}", "update")
        return self._record_refund(order, str(reason), "refund", lines)

    def _record_refund(
        self, order: Order, reason: str, source: str, lines: list[tuple[str, int, Decimal]]
    ) -> Refund:
        refund = Refund(self._oid(), order.id, reason, source, lines, self.now_iso())
        order.refunds.append(refund)
        self.stats.record_write(f"refund:{refund.id}", "create")
        return refund

    # -- admin -----------------------------------------------------------------------------

    def mutate(self, params: dict[str, Any]) -> dict[str, Any]:
        """``permissions``: replace the API user's permissions; ``expire_sessions``: end every
        session; ``events``: ``[{id, soldQuantity?, capacity?, state?}]`` (box-office sales)."""
        changed: dict[str, Any] = {}
        if "permissions" in params:
            self.permissions = {str(p) for p in params["permissions"]}
            changed["permissions"] = sorted(self.permissions)
        if params.get("expire_sessions"):
            changed["expired_sessions"] = len(self.sessions)
            self.sessions.clear()
        for raw in params.get("events") or []:
            inst = self.instances.get(str(raw.get("id")))
            if inst is None:
                continue
            inst.sold = int(raw.get("soldQuantity", inst.sold))
            inst.capacity = int(raw.get("capacity", inst.capacity))
            inst.state = str(raw.get("state", inst.state))
            changed.setdefault("events", []).append(inst.id)
        return {"changed": changed}

    def dump(self) -> dict[str, Any]:
        touched = {i.event_id for o in self.orders.values() for i in o.items}
        return {
            "tenant_id": self.tenant_id,
            "permissions": sorted(self.permissions),
            "organizations": list(self.organizations),
            "person_types": [p.__dict__ for p in self.person_types],
            "templates": [
                {
                    "id": t.id,
                    "name": t.name,
                    "review_state": t.review_state,
                    "prices": {k: str(v) for k, v in t.prices.items()},
                }
                for t in self.templates
            ],
            "sold": {i: self.instances[i].sold for i in sorted(touched)},
            "orders": [self.order_dump(o) for o in self.orders.values()],
            "counts": {
                "templates": len(self.templates),
                "instances": len(self.instances),
                "orders": len(self.orders),
                "refunds": sum(len(o.refunds) for o in self.orders.values()),
            },
        }

    @staticmethod
    def order_dump(order: Order) -> dict[str, Any]:
        return {
            "id": order.id,
            "orderNumber": order.number,
            "organizationId": order.organization_id,
            "notes": order.body.get("notes"),
            "totalAmount": str(order.total),
            "refundAmount": str(order.refunded),
            "items": [
                {
                    "orderItemId": i.id,
                    "eventId": i.event_id,
                    "personTypeId": i.person_type_id,
                    "originalQuantity": i.original_quantity,
                    "quantity": i.quantity,
                    "unitPrice": str(i.unit_price),
                }
                for i in order.items
            ],
            "refunds": [
                {
                    "id": r.id,
                    "source": r.source,
                    "reason": r.reason,
                    "amount": str(r.amount),
                    "items": [{"orderItemId": i, "quantity": q} for i, q, _ in r.items],
                }
                for r in order.refunds
            ],
        }
