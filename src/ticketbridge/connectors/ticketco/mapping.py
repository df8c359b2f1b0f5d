"""Pure functions: TicketCo events + item grosses -> canonical :class:`Booking` and
:class:`Ticket`.

TicketCo has no booking object. A booking here is every item gross (sold item) that shares a
``ref_number`` (platforms.md 1.5, [INFER]): party size counts its active items and its value
sums their prices. Nothing in this module does I/O or reads the clock; ``now`` is passed in so
the same payload maps to the same record in tests, in runs and in dead-letter retries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from ticketbridge.connectors.ticketco.schemas import ItemGross, TicketcoEvent, opt_in_value
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
    normalize_email,
    record_key,
)

PLATFORM = "ticketco"
ENDED_STATES = frozenset({"ended", "finished", "completed", "past"})
CANCELLED_EVENT_STATES = frozenset({"cancelled", "canceled"})
_REF_KEYS = ("ref_number", "reference_number", "order_number")
# Formats beyond ISO 8601 that TicketCo-like exports use; tried in order.
_EXTRA_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y")


@dataclass(frozen=True)
class MappingContext:
    """Everything a mapping needs besides the payload.

    ``now`` decides whether an event without an explicit status is over (no-show rule);
    ``zone`` is applied to timestamps without an offset.
    """

    now: datetime
    zone: tzinfo
    default_region: str | None = "NO"
    currency: str = "NOK"


def booking_key(ref_number: str) -> str:
    return record_key("booking", PLATFORM, ref_number)


def orphan_key(event_id: object, item_id: object, index: int) -> str:
    """Key of an item gross without a ref_number: unique per event and item, stable."""
    item = item_id if item_id not in (None, "") else f"n{index}"
    return record_key("booking", PLATFORM, f"noref-{event_id}-{item}")


def venue_key(name: str | None) -> str:
    """Venue names match case- and whitespace-insensitively ("Bowl  arena " == "Bowl Arena")."""
    return " ".join((name or "").split()).casefold()


def clean_venue_name(name: str | None) -> str | None:
    cleaned = " ".join((name or "").split())
    return cleaned or None


def parse_time(value: str | None, zone: tzinfo) -> datetime | None:
    """Parse a TicketCo timestamp; naive values are read in ``zone``. ``None`` if missing.

    Raises ``ValueError`` for a value that is present but not a date.
    """
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        for fmt in _EXTRA_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(f"unparsable date {text!r}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def event_start(raw: Mapping[str, Any], zone: tzinfo) -> datetime | None:
    """The event's start for filtering and ordering; ``None`` when missing or unparsable
    (its bookings then fail mapping with the reason, rather than vanishing from the read)."""
    try:
        return parse_time(raw.get("start_at"), zone)
    except ValueError:
        return None


def ref_of(item: object) -> str | None:
    if not isinstance(item, Mapping):
        return None
    for key in _REF_KEYS:
        value = item.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def group_items(items: Iterable[dict[str, Any]]) -> list[tuple[str | None, list[dict[str, Any]]]]:
    """Group item grosses by ref_number, in order of first appearance (deterministic).

    Items without a ref_number each form a group of their own (key ``None``): they cannot
    be joined to anything, and each must be reported separately.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    out: list[tuple[str | None, list[dict[str, Any]]]] = []
    for item in items:
        ref = ref_of(item)
        if ref is None:
            out.append((None, [item]))
            continue
        if ref not in groups:
            groups[ref] = []
            out.append((ref, groups[ref]))
        groups[ref].append(item)
    return out


def map_event(raw: Mapping[str, Any], zone: tzinfo, key: str) -> tuple[TicketcoEvent, Event]:
    """Canonical event; raises MappingError (under ``key``) naming a bad id or date field."""
    try:
        payload = TicketcoEvent.model_validate(dict(raw))
    except ValidationError as exc:
        raise MappingError(key, f"event: {_first_error(exc)}") from None
    if payload.id is None:
        raise MappingError(key, "event.id missing")
    starts = _time(payload.start_at, zone, key, "event.start_at")
    if starts is None:
        raise MappingError(key, "event.start_at missing")
    venue_name = clean_venue_name(payload.location_name)
    venue = Venue(name=venue_name, address=payload.street_address) if venue_name else None
    event = Event(
        external_id=payload.id,
        name=payload.title or f"Event {payload.id}",
        venue=venue,
        starts_at=starts,
        ends_at=_time(payload.end_at, zone, key, "event.end_at"),
        doors_open_at=_time(payload.doors_open_at, zone, key, "event.doors_open_at"),
        tags=payload.tags,
        status=payload.status,
    )
    return payload, event


def map_booking(
    event_raw: Mapping[str, Any],
    items_raw: list[dict[str, Any]],
    ctx: MappingContext,
    *,
    prepared: tuple[TicketcoEvent, Event] | None = None,
) -> Booking:
    """Map one ref_number group of item grosses and its event to a :class:`Booking`.

    Invariants: the key is ``booking:ticketco:<ref_number>``; a missing optional field is
    left empty (with a :class:`FieldIssue` when a value was present but unusable); a missing
    ref_number, a missing event start or any unparsable date raises :class:`MappingError`
    whose reason names the field. ``prepared`` is ``map_event(event_raw)``, passed in by
    callers that map many bookings of one event.
    """
    ref = ref_of(items_raw[0]) if items_raw else None
    if ref is None:
        first = items_raw[0] if items_raw else {}
        key = orphan_key(event_raw.get("id"), first.get("id"), 0)
        raise MappingError(key, "ref_number missing")
    key = booking_key(ref)
    if any(ref_of(item) != ref for item in items_raw):
        raise MappingError(key, "items of several ref_numbers in one group")
    payload, event = prepared or map_event(event_raw, ctx.zone, key)
    items = [_item(raw, n, key) for n, raw in enumerate(items_raw)]

    stamps = [
        _time(it.transaction_datestamp, ctx.zone, key, f"items[{n}].transaction_datestamp")
        for n, it in enumerate(items)
    ]
    checkins = [
        _time(it.checked_in_at, ctx.zone, key, f"items[{n}].checked_in_at")
        for n, it in enumerate(items)
    ]
    cancels = [
        _time(it.cancelled_at, ctx.zone, key, f"items[{n}].cancelled_at")
        for n, it in enumerate(items)
    ]

    active = [n for n, it in enumerate(items) if not it.cancelled]
    event_cancelled = (payload.status or "").lower() in CANCELLED_EVENT_STATES
    cancelled = not active or event_cancelled
    # A cancelled booking keeps what was booked: party size and value of all its items.
    counted = list(range(len(items))) if cancelled else active

    if cancelled:
        status = BookingStatus.CANCELLED
    elif any(checkins[n] is not None for n in active):
        status = BookingStatus.ATTENDED
    elif _is_over(payload.status, event.ends_at, ctx.now):
        status = BookingStatus.NO_SHOW
    else:
        status = BookingStatus.BOOKED

    issues: list[FieldIssue] = []
    prices = [_price(it, n, ctx.currency, issues) for n, it in enumerate(items)]
    value = _sum([prices[n] for n in counted], issues)
    booked_at = min((s for s in stamps if s is not None), default=None)
    seen = [t for t in (*stamps, *checkins, *cancels) if t is not None]

    tickets = [
        Ticket(**_ticket_fields(it, n, ref, prices[n], checkins[n], issues))
        for n, it in enumerate(items)
    ]
    first_checkin = min((c for c in checkins if c is not None), default=None)
    return Booking(
        confirmation_number=ref,
        booked_at=booked_at,
        attendance_at=event.starts_at,
        status=status,
        source=_first_of(items, "sales_channel"),
        type=_most_common(items[n].item_type_type or items[n].item_type_title for n in counted),
        party_size=len(counted),
        value=value,
        contact=_contact(items, booked_at, ctx),
        venue=event.venue,
        event=event,
        tickets=tickets,
        updated_at=max(seen, default=None),
        attributes={"checked_in_at": first_checkin.isoformat()} if first_checkin else {},
        issues=issues,
    )


def ticket_key(number: str) -> str:
    return record_key("ticket", PLATFORM, number)


def ticket_number(item: Mapping[str, Any], ref: str | None, index: int) -> str | None:
    """The ticket's number: the item gross id, else ``<ref_number>-<position in its
    booking, from 1>`` (as :func:`map_booking` numbers tickets); ``None`` with neither."""
    item_id = item.get("id")
    if item_id is not None and str(item_id).strip():
        return str(item_id).strip()
    return f"{ref}-{index + 1}" if ref is not None else None


def map_ticket(
    event_raw: Mapping[str, Any],
    item_raw: dict[str, Any],
    index: int,
    ctx: MappingContext,
    *,
    prepared: tuple[TicketcoEvent, Event] | None = None,
) -> Ticket:
    """Map one item gross (``index``: its position among its ref_number's items) and its event
    to a canonical :class:`Ticket`.

    Invariants: the key is ``ticket:ticketco:<number>`` (:func:`ticket_number`); the ticket
    carries its event, the booking reference as ``attributes["confirmation_code"]`` and a
    status of ``valid``, ``cancelled`` (the item, or its event) or ``attended`` (checked in);
    a missing optional field is left empty; a bad date raises :class:`MappingError` naming it.
    """
    ref = ref_of(item_raw)
    number = ticket_number(item_raw, ref, index)
    if number is None:
        key = record_key("ticket", PLATFORM, f"noref-{event_raw.get('id')}-n{index}")
        raise MappingError(key, "item gross has neither id nor ref_number")
    key = ticket_key(number)
    payload, event = prepared or map_event(event_raw, ctx.zone, key)
    item = _item(item_raw, index, key)
    stamp = _time(item.transaction_datestamp, ctx.zone, key, "item.transaction_datestamp")
    checked_in_at = _time(item.checked_in_at, ctx.zone, key, "item.checked_in_at")
    cancelled_at = _time(item.cancelled_at, ctx.zone, key, "item.cancelled_at")
    issues: list[FieldIssue] = []
    price = _price(item, index, ctx.currency, issues)  # an unusable price is left out
    fields = _ticket_fields(item, index, ref or "", price, checked_in_at, issues)
    event_cancelled = (payload.status or "").lower() in CANCELLED_EVENT_STATES
    if item.cancelled or event_cancelled:
        status = "cancelled"
    elif checked_in_at is not None:
        status = "attended"
    else:
        status = "valid"
    attributes = fields["attributes"]
    if ref is not None:
        attributes["confirmation_code"] = ref
    seen = [t for t in (stamp, checked_in_at, cancelled_at) if t is not None]
    # One validated Ticket: building the booking's kind first and then a copy of it with
    # these fields validated every ticket twice (an eighth of a tickets read).
    return Ticket(
        **{
            **fields,
            "number": number,
            "status": status,
            "event": event,
            "attributes": attributes,
            "updated_at": max(seen, default=None),
        }
    )


def _item(raw: dict[str, Any], n: int, key: str) -> ItemGross:
    try:
        return ItemGross.model_validate(raw)
    except ValidationError as exc:
        raise MappingError(key, f"items[{n}]: {_first_error(exc)}") from None


def _time(value: str | None, zone: tzinfo, key: str, field: str) -> datetime | None:
    try:
        return parse_time(value, zone)
    except ValueError as exc:
        raise MappingError(key, f"{field}: {exc}") from None


def _is_over(status: str | None, ends_at: datetime | None, now: datetime) -> bool:
    if (status or "").strip().lower() in ENDED_STATES:
        return True
    return ends_at is not None and ends_at < now


def _price(item: ItemGross, n: int, currency: str, issues: list[FieldIssue]) -> Money | None:
    if item.price is None:
        return None
    text = item.price.replace(" ", "").replace("\u00a0", "").replace(",", ".")
    try:
        return Money.from_decimal(Decimal(text), item.currency or currency)
    except (InvalidOperation, ValueError) as exc:
        reason = "not a number" if isinstance(exc, InvalidOperation) else str(exc)
        issues.append(FieldIssue(field=f"items[{n}].price", value=item.price, reason=reason))
        return None


def _sum(prices: list[Money | None], issues: list[FieldIssue]) -> Money | None:
    known = [p for p in prices if p is not None]
    if not known:
        return None
    total = known[0]
    for price in known[1:]:
        try:
            total = total + price
        except ValueError as exc:
            # A value in two currencies has no single amount; say so rather than guess.
            issues.append(FieldIssue(field="value", value=price.currency, reason=str(exc)))
            return None
    return total


def _contact(items: list[ItemGross], at: datetime | None, ctx: MappingContext) -> Contact | None:
    fields = {
        "external_id": _first_of(items, "buyer_id"),
        "first_name": _first_of(items, "buyer_first_name"),
        "last_name": _first_of(items, "buyer_last_name"),
    }
    email = _first_of(items, "buyer_email")
    mobile = _first_of(items, "buyer_phone")
    # The latest explicit answer wins: items are transaction lines in time order.
    answers = [opt_in_value(it.buyer_email_opt_in) for it in items]
    opt_in = next((a for a in reversed(answers) if a is not None), None)
    if opt_in is None and not any((*fields.values(), email, mobile)):
        return None  # pii=false, or an anonymous box-office sale
    if opt_in is None:
        state = ConsentState.UNKNOWN
    else:
        state = ConsentState.GRANTED if opt_in else ConsentState.DENIED
    consent = Consent(
        state=state, source=PLATFORM, at=at if state is not ConsentState.UNKNOWN else None
    )
    return Contact.build(
        email=email,
        mobile=mobile,
        default_region=ctx.default_region,
        email_consent=consent,
        **fields,
    )


def _ticket_fields(
    item: ItemGross,
    n: int,
    ref: str,
    price: Money | None,
    checked_in_at: datetime | None,
    issues: list[FieldIssue],
) -> dict[str, Any]:
    """A booking's ticket as :class:`Ticket`'s arguments (``attributes`` a new dict)."""
    holder_email = None
    if item.holder_email is not None:
        holder_email, error = _email(item.holder_email)
        if error is not None:
            issues.append(
                FieldIssue(field=f"items[{n}].holder_email", value=item.holder_email, reason=error)
            )
    holder = None
    if item.holder_first_name or item.holder_last_name or holder_email:
        holder = Person(
            first_name=item.holder_first_name, last_name=item.holder_last_name, email=holder_email
        )
    if item.cancelled:
        status = "cancelled"
    elif checked_in_at is not None:
        status = "checked_in"
    else:
        status = "valid"
    return {
        "number": item.id or f"{ref}-{n + 1}",
        "barcode": item.barcode,
        "seat": item.seat_name,
        "row": item.row_name,
        "section": item.section_name,
        "gate": item.gate_name,
        "type": item.item_type_title,
        "price": price,
        "holder": holder,
        "status": status,
        "attributes": {"checked_in_at": checked_in_at.isoformat()} if checked_in_at else {},
    }


@lru_cache(maxsize=8192)
def _email(raw: str) -> tuple[str | None, str | None]:
    """Normalised e-mail or the reason it is not one. Cached: validation is the costliest
    step of a mapping, and the first holder usually repeats the buyer's address."""
    try:
        return normalize_email(raw), None
    except ValueError as exc:
        return None, str(exc)


def _first_of(items: list[ItemGross], name: str) -> str | None:
    """The first item's ``name`` that is not None (a plain loop: this runs six times per
    booking)."""
    for item in items:
        value = getattr(item, name)
        if value is not None:
            return value  # type: ignore[no-any-return]
    return None


def _most_common(values: Iterable[str | None]) -> str | None:
    counts: dict[str, int] = {}
    for value in values:
        if value is not None:
            counts[value] = counts.get(value, 0) + 1
    # ``max`` returns the first of equal counts, and the dict keeps first-seen order, so ties
    # resolve deterministically (to the value seen first, as ``Counter.most_common`` did).
    return max(counts, key=counts.__getitem__) if counts else None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "payload"
    return f"{where}: {err.get('msg', 'invalid')}"
