"""Pure functions: Ticketmaster customers and orders -> canonical Contact and Booking.

No I/O and no clock here: ``now`` comes in through :class:`MappingContext`, so a payload maps
to the same record in a run, in a test and in a dead-letter retry.

Invariants:

* A contact's ``attributes`` is the customer payload as received (nested dicts kept, so a
  user mapping can read ``cards.Cardnumber``), except that the configured date fields are
  rewritten to ISO 8601 dates; a date that does not parse stays as received and is reported
  in ``issues``.
* Consent is per channel: ``true`` -> granted, ``false`` -> denied, absent -> unknown, never a
  guess (an unreadable flag fails the record instead).
* Every failure raises :class:`MappingError` whose reason names the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from ticketbridge.connectors.base import Failed, Record
from ticketbridge.connectors.ticketmaster.schemas import (
    Customer,
    Order,
    OrderEvent,
    OrderTicket,
    TicketOrder,
)
from ticketbridge.errors import MappingError
from ticketbridge.model import (
    Booking,
    BookingStatus,
    Consent,
    ConsentState,
    Contact,
    Event,
    FieldIssue,
    Money,
    Person,
    Ticket,
    Venue,
    record_key,
    stable_hash,
)

PLATFORM = "ticketmaster"
# Order statuses of platforms.md 4.5; CANCELED is Discovery's spelling of event statuses.
_BOOKED = frozenset({"COMPLETED"})
_CANCELLED = frozenset({"REFUNDED", "CANCELLED", "CANCELED"})


@dataclass(frozen=True)
class MappingContext:
    """What a mapping needs besides the payload.

    ``now`` decides whether a completed order's event is over (attended) or still ahead
    (booked); ``date_format`` is the strptime format of the venue's own dates (None: ISO).
    """

    market: str
    now: datetime
    default_region: str | None = None
    date_format: str | None = None
    date_fields: tuple[str, ...] = field(default=("birth_date",))


def customer_key(market: str, customer_id: str) -> str:
    return record_key("contact", PLATFORM, market, customer_id)


def order_key(market: str, order_id: str) -> str:
    return record_key("order", PLATFORM, market, order_id)


def key_of(kind: str, raw: Any, market: str) -> str:
    """The record key of a raw customer (``kind="contact"``) or order (``"order"``); a payload
    without a usable id gets a stable key from its content, so its dead letter is retried
    under the same key."""
    rid = raw.get("id") if isinstance(raw, dict) else None
    text = str(rid).strip() if rid is not None else ""
    if not text:
        text = "unknown-" + stable_hash(raw)[:16]
    return record_key(kind, PLATFORM, market, text)


def copy_json(value: Any) -> Any:
    """A copy of a decoded JSON value whose dicts and lists are new and whose leaves are
    shared (strings, numbers, booleans and None do not change): a record's ``attributes``
    never alias the payload a dead letter keeps. A fourth of ``copy.deepcopy``'s time,
    which walks its memo for every leaf; this runs for every customer and order read."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def _fields_reason(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{prefix}{where}: {msg}")
    return "; ".join(parts)


def _validate(model: type[BaseModel], raw: Any, key: str, prefix: str = "") -> Any:
    if not isinstance(raw, dict):
        raise MappingError(key, f"{prefix or 'payload'} is not an object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise MappingError(key, _fields_reason(exc, prefix)) from None


# -- customers ---------------------------------------------------------------------------


def _consent(flag: bool | None, at: datetime | None) -> Consent:
    if flag is None:
        return Consent(state=ConsentState.UNKNOWN, source=PLATFORM)
    state = ConsentState.GRANTED if flag else ConsentState.DENIED
    return Consent(state=state, source=PLATFORM, at=at)


def parse_date(value: Any, date_format: str | None) -> date:
    """A venue date (e.g. a birth date) in ``date_format``, or ISO 8601 when None."""
    text = str(value).strip()
    if date_format:
        return datetime.strptime(text, date_format).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()


def _with_iso_dates(
    raw: dict[str, Any], ctx: MappingContext
) -> tuple[dict[str, Any], list[FieldIssue]]:
    attributes = copy_json(raw)
    issues: list[FieldIssue] = []
    for dotted in ctx.date_fields:
        *parents, leaf = dotted.split(".")
        holder: Any = attributes
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if not isinstance(holder, dict) or holder.get(leaf) in (None, ""):
            continue
        value = holder[leaf]
        try:
            holder[leaf] = parse_date(value, ctx.date_format).isoformat()
        except (ValueError, TypeError):
            fmt = ctx.date_format or "ISO 8601"
            issues.append(
                FieldIssue(field=dotted, value=str(value), reason=f"not a date in format {fmt}")
            )
    return attributes, issues


def map_customer(raw: Any, ctx: MappingContext) -> Contact:
    """A customer payload -> Contact. Raises MappingError naming the field that failed."""
    key = key_of("contact", raw, ctx.market)
    customer: Customer = _validate(Customer, raw, key)
    consent = customer.marketing_consent
    at = consent.updated_at if consent is not None else None
    attributes, date_issues = _with_iso_dates(raw, ctx)
    contact = Contact.build(
        email=customer.email,
        mobile=customer.mobile,
        default_region=ctx.default_region,
        external_id=customer.id,
        first_name=customer.first_name,
        last_name=customer.last_name,
        email_consent=_consent(consent.email if consent else None, at),
        sms_consent=_consent(consent.sms if consent else None, at),
        updated_at=customer.updated_at,
        attributes=attributes,
    )
    contact.issues.extend(date_issues)
    return contact


# -- orders ------------------------------------------------------------------------------


def _status(order: Order, starts_at: datetime | None, now: datetime, key: str) -> BookingStatus:
    code = order.status.upper()
    if code in _CANCELLED:
        return BookingStatus.CANCELLED
    if code in _BOOKED:
        # A completed order is "attended" once its event has started; the API says nothing
        # about scanning [GAP], so presence is inferred from the date [INFER].
        return (
            BookingStatus.ATTENDED
            if starts_at is not None and starts_at <= now
            else BookingStatus.BOOKED
        )
    raise MappingError(
        key,
        f"status: unknown order status {order.status!r} (known: COMPLETED, REFUNDED, CANCELLED)",
    )


def _money(amount: Any, currency: str | None, key: str, where: str) -> Money | None:
    if amount is None:
        return None
    if not currency:
        raise MappingError(key, f"currency: missing, needed for {where}")
    try:
        return Money.from_decimal(amount, currency)
    except ValueError as exc:
        raise MappingError(key, f"currency: {exc}") from None


def _ticket(t: OrderTicket, n: int, order: Order, key: str) -> Ticket:
    return Ticket(
        number=t.id or f"{order.id}-{n + 1}",
        barcode=t.barcode,
        section=t.section,
        row=t.row,
        seat=t.seat,
        type=t.type,
        price=_money(t.price, order.currency, key, f"tickets.{n}.price"),
        status=t.status,
    )


def order_event(event_raw: OrderEvent | None) -> Event | None:
    """An order's event (Discovery's shape: ``dates.start.dateTime``, ``venue.address``)."""
    if event_raw is None:
        return None
    venue = None
    if event_raw.venue is not None and event_raw.venue.name:
        venue = Venue(
            external_id=event_raw.venue.id,
            name=event_raw.venue.name,
            address=event_raw.venue.address_text(),
        )
    return Event(
        external_id=event_raw.id,
        name=event_raw.name,
        venue=venue,
        starts_at=event_raw.starts_at(),
        status=event_raw.status(),
    )


def map_order(raw: Any, customer_raw: Any, ctx: MappingContext) -> Booking:
    """An order and its customer -> Booking (with the customer as contact, consent included).

    Raises MappingError naming the field; a customer that fails mapping fails its order too,
    because a purchase without its member is useless to the destination.
    """
    key = key_of("order", raw, ctx.market)
    order: Order = _validate(Order, raw, key)
    if customer_raw is None:
        raise MappingError(key, f"customer_id: customer {order.customer_id} not found")
    if str(customer_raw.get("id", "")).strip() != order.customer_id:
        raise MappingError(
            key,
            f"customer_id: {order.customer_id} does not match the "
            f"customer given ({customer_raw.get('id')!r})",
        )
    try:
        contact = map_customer(customer_raw, ctx)
    except MappingError as exc:
        raise MappingError(key, f"customer {order.customer_id}: {exc.reason}") from None
    event = order_event(order.event)
    starts_at = event.starts_at if event is not None else None
    venue = event.venue if event is not None else None
    tickets = [_ticket(t, n, order, key) for n, t in enumerate(order.tickets)]
    return Booking(
        confirmation_number=order.id,
        booked_at=order.created_at,
        attendance_at=starts_at,
        status=_status(order, starts_at, ctx.now, key),
        source=order.channel,
        party_size=len(tickets),
        value=_money(order.total, order.currency, key, "total"),
        contact=contact,
        venue=venue,
        event=event,
        tickets=tickets,
        updated_at=order.updated_at,
        attributes=copy_json(raw),
    )


# -- tickets (each purchased ticket of an order) ------------------------------------------

# Ticket statuses [INFER]: the sandbox's ISSUED and the order statuses of 4.5 repeated per
# ticket, and the usual spellings of a scanned ticket. An unknown one is kept as given.
_TICKET_VALID = frozenset({"ISSUED", "VALID", "ACTIVE", "SOLD", "COMPLETED"})
_TICKET_ATTENDED = frozenset({"SCANNED", "USED", "ATTENDED", "CHECKED_IN", "REDEEMED"})
_TICKET_CANCELLED = frozenset({"VOID", "VOIDED", *_CANCELLED})


def ticket_key(market: str, number: str) -> str:
    return record_key("ticket", PLATFORM, market, number)


def ticket_number(order_raw: Any, index: int) -> str:
    """The ticket's id, else ``<order id>-<position from 1>`` (as bookings number them); an
    order without an id gets a stable stand-in from its content (its failure is keyed)."""
    tickets = order_raw.get("tickets") if isinstance(order_raw, dict) else None
    item = tickets[index] if isinstance(tickets, list) and 0 <= index < len(tickets) else None
    own = item.get("id") if isinstance(item, dict) else None
    if own is not None and str(own).strip():
        return str(own).strip()
    oid = order_raw.get("id") if isinstance(order_raw, dict) else None
    order_id = str(oid).strip() if oid is not None and str(oid).strip() else ""
    return f"{order_id or 'unknown-' + stable_hash(order_raw)[:16]}-{index + 1}"


def ticket_status(own: str | None, order: str | None, event: str | None) -> str | None:
    """``cancelled`` (the ticket, its order or its event), ``attended`` (scanned), ``valid``;
    an unknown ticket status as given, lower case; None when nothing says."""
    own_code, order_code = (own or "").strip().upper(), (order or "").strip().upper()
    if (
        own_code in _TICKET_CANCELLED
        or order_code in _CANCELLED
        or (event or "").strip().upper() in _CANCELLED
    ):
        return "cancelled"
    if own_code in _TICKET_ATTENDED:
        return "attended"
    if own_code in _TICKET_VALID or (not own_code and order_code in _BOOKED):
        return "valid"
    return own_code.lower() or None


def _ticket_price(raw: Any, currency: str | None, where: str, issues: list[str]) -> Money | None:
    """A usable price, or None (noted in ``issues``): a pass simply shows no price."""
    if raw in (None, ""):
        return None
    if not currency:
        issues.append(f"{where}: no currency on the order")
        return None
    try:
        return Money.from_decimal(str(raw).strip(), currency)
    except (ArithmeticError, ValueError) as exc:
        reason = "not a number" if isinstance(exc, ArithmeticError) else str(exc)
        issues.append(f"{where}: {reason}")
        return None


def map_order_ticket(order_raw: Any, index: int, customer_raw: Any, ctx: MappingContext) -> Ticket:
    """The ``index``-th ticket of an order -> canonical :class:`Ticket`, with the order's event,
    the buyer as holder (``customer_raw``, None when not looked up or unknown), the order id
    as confirmation code and the order's ``updated_at``.

    Only the order's id and ``updated_at`` and the ticket being an object are required;
    every other missing or unusable field is left out. Raises MappingError naming the
    field."""
    key = ticket_key(ctx.market, ticket_number(order_raw, index))
    order: TicketOrder = _validate(TicketOrder, order_raw, key)
    tickets = order_raw.get("tickets")
    if not isinstance(tickets, list):
        raise MappingError(key, "tickets: not a list")
    if not 0 <= index < len(tickets):
        raise MappingError(key, f"tickets.{index}: missing")
    raw = tickets[index]
    if not isinstance(raw, dict):
        raise MappingError(key, f"tickets.{index} is not an object")
    own: OrderTicket = _validate(
        OrderTicket, {k: v for k, v in raw.items() if k != "price"}, key, f"tickets.{index}."
    )
    issues: list[str] = []
    price = _ticket_price(raw.get("price"), order.currency, f"tickets.{index}.price", issues)
    event = order_event(order.event)
    holder = None
    if isinstance(customer_raw, dict):
        first, last = (str(customer_raw.get(k) or "").strip() for k in ("first_name", "last_name"))
        if first or last:
            holder = Person(first_name=first or None, last_name=last or None)
    attributes: dict[str, Any] = {"confirmation_code": order.id, "order_id": order.id}
    for name, value in (("customer_id", order.customer_id), ("channel", order.channel)):
        if value:
            attributes[name] = value
    if issues:
        attributes["issues"] = issues
    return Ticket(
        number=ticket_number(order_raw, index),
        barcode=own.barcode,
        seat=own.seat,
        row=own.row,
        section=own.section,
        gate=own.gate,
        type=own.type,
        price=price,
        holder=holder,
        status=ticket_status(own.status, order.status, event.status if event else None),
        event=event,
        updated_at=order.updated_at,
        attributes=attributes,
    )


def ticket_entry(stored: dict[str, Any], ctx: MappingContext) -> Record | Failed:
    """``{"order", "customer", "index"}`` -> the ticket's record, or its failure with the
    reason and ``stored`` (what a dead-letter retry maps again), under the ticket's key."""
    order, index = stored["order"], stored["index"]
    try:
        ticket = map_order_ticket(order, index, stored["customer"], ctx)
    except MappingError as exc:
        return Failed(exc.record_key, exc.reason, stored)
    except (ValueError, TypeError) as exc:  # a payload shape nobody foresaw
        key = ticket_key(ctx.market, ticket_number(order, index))
        return Failed(key, f"{type(exc).__name__}: {exc}", stored)
    return Record(
        key=ticket_key(ctx.market, ticket.number),
        kind="ticket",
        data=ticket,
        cursor=ticket.updated_at,
    )
