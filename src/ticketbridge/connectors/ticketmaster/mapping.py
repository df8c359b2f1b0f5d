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

import copy
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from ticketbridge.connectors.ticketmaster.schemas import Customer, Order, OrderTicket
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
    attributes = copy.deepcopy(raw)
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
    event_raw = order.event
    starts_at = event_raw.starts_at() if event_raw is not None else None
    venue = event = None
    if event_raw is not None:
        if event_raw.venue is not None and event_raw.venue.name:
            venue = Venue(
                external_id=event_raw.venue.id,
                name=event_raw.venue.name,
                address=event_raw.venue.address_text(),
            )
        event = Event(
            external_id=event_raw.id,
            name=event_raw.name,
            venue=venue,
            starts_at=starts_at,
            status=event_raw.status(),
        )
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
        attributes=copy.deepcopy(raw),
    )
