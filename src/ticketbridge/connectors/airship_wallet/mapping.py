"""Pure functions: canonical tickets -> Airship Wallet event and attendee bodies.

Invariants:

* :func:`prepare_event_tickets` depends only on the record and the options: the engine hashes
  its result per entity to tell the destination what changed.
* The result is split by entity: ``"event"`` holds the fields every pass of the event shares
  (name, venue, times), ``"pass"`` the ticket's own (holder, seat, status, barcode, price).
  An event change is therefore one pass-group update; a ticket change one pass update.
* A field the ticket does not have is absent, never sent empty.
* Field values are Wallet field objects (``{"label", "value"}``; ``faceValue`` carries
  ``currencyCode`` and ``micros``), ready to send; change messages are added at write time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ticketbridge.connectors.airship_wallet.config import PLATFORM, EventTicketsOptions
from ticketbridge.connectors.base import Mapped, Record
from ticketbridge.errors import RecordRejected
from ticketbridge.model import Event, Ticket
from ticketbridge.model.currency import exponent

EVENT = "event"
PASS = "pass"  # noqa: S105 - an entity name
MICROS_EXPONENT = 6  # "The face value amount in micros": millionths of the currency unit


def _refuse(record: Record, message: str) -> RecordRejected:
    return RecordRejected(f"{record.key}: {message}", record_key=record.key, platform=PLATFORM)


def ticket_of(record: Record) -> Ticket:
    if not isinstance(record.data, Ticket):
        raise _refuse(record, f"event_tickets accepts tickets, not {record.kind}")
    return record.data


def event_of(record: Record) -> Event:
    event = ticket_of(record).event
    if event is None:
        raise _refuse(record, "ticket has no event (eventName is required)")
    return event


def event_external_id(record: Record, opts: EventTicketsOptions) -> str:
    return opts.event_id_prefix + event_of(record).external_id


def pass_group(record: Record, opts: EventTicketsOptions) -> str:
    return opts.pass_group.format(event=event_external_id(record, opts))


def link_external_id(record: Record, opts: EventTicketsOptions) -> str:
    """The ticket's ``adaptiveLinkExternalId``, which also addresses its passes."""
    return ticket_of(record).number if opts.link_id == "number" else record.key


def wallet_time(value: datetime, opts: EventTicketsOptions) -> str:
    utc = value.astimezone(UTC).replace(microsecond=0, tzinfo=None)
    return utc.isoformat() + ("Z" if opts.time_format == "utc_z" else "")


def micros(minor: int, currency: str) -> int:
    """Minor units (pence) -> micros: ``2500`` GBP pence is 25 pounds, ``25_000_000``."""
    return int(minor * 10 ** (MICROS_EXPONENT - exponent(currency)))


def _field(name: str, value: str, opts: EventTicketsOptions) -> dict[str, Any]:
    label = opts.labels.get(name)
    return {"label": label, "value": value} if label else {"value": value}


def event_fields(record: Record, opts: EventTicketsOptions) -> dict[str, Any]:
    event = event_of(record)
    out: dict[str, Any] = {"eventName": _field("eventName", event.name, opts)}
    venue = event.venue
    if venue is not None:
        for venue_field in opts.venue_fields:
            out[venue_field] = _field(venue_field, venue.name, opts)
        if venue.address:
            out["venueAddress"] = _field("venueAddress", venue.address, opts)
    for name, when in (
        ("doorsOpen", event.doors_open_at),
        ("startTime", event.starts_at),
        ("endTime", event.ends_at),
    ):
        if when is not None:
            out[name] = _field(name, wallet_time(when, opts), opts)
    return out


def holder_name(ticket: Ticket) -> str | None:
    person = ticket.holder
    if person is None:
        return None
    name = " ".join(p.strip() for p in (person.first_name, person.last_name) if p and p.strip())
    return name or None


def is_cancelled(ticket: Ticket, opts: EventTicketsOptions) -> bool:
    return (ticket.status or "").strip().casefold() in opts.cancelled_statuses


def pass_fields(record: Record, opts: EventTicketsOptions) -> dict[str, Any]:
    ticket = ticket_of(record)
    out: dict[str, Any] = {}
    texts = {
        "ticketHolderName": holder_name(ticket),
        "seat": ticket.seat,
        "row": ticket.row,
        "section": ticket.section,
        "gate": ticket.gate,
        "ticketType": ticket.type,
        "ticketNumber": ticket.number,
    }
    code = ticket.attributes.get(opts.confirmation_attribute)
    if code not in (None, ""):
        texts["confirmationCode"] = str(code)
    for name, text in texts.items():
        if text not in (None, ""):
            out[name] = _field(name, str(text), opts)
    if ticket.status:
        shown = opts.status_values.get(ticket.status.strip().casefold(), ticket.status)
        out[opts.status_field] = _field("status", shown, opts)
    if is_cancelled(ticket, opts):
        # A cancelled pass must not scan: the barcode is replaced (Wallet has no void call).
        out["barcode_value"] = {"value": opts.voided_barcode}
        out["barcodeAltText"] = {"value": opts.voided_alt_text}
    elif ticket.barcode:
        out["barcode_value"] = {"value": ticket.barcode}
        out["barcodeAltText"] = {"value": ticket.barcode}
    price = ticket.price
    if price is not None and price.currency not in opts.currencies:
        if opts.other_currencies == "refuse":
            raise _refuse(
                record,
                f"faceValue currency {price.currency} is not one Wallet accepts "
                f"(options.currencies: {', '.join(opts.currencies)}; other_currencies: "
                "omit sends the pass without a price)",
            )
        price = None
    if price is not None:
        currency = price.currency
        value: dict[str, Any] = {
            "currencyCode": currency,
            "micros": micros(price.minor, currency),
        }
        if opts.labels.get("faceValue"):
            value = {"label": opts.labels["faceValue"], **value}
        out["faceValue"] = value
    if opts.sharing_status:
        out["sharingStatus"] = {"value": opts.sharing_status}
    return out


def prepare_event_tickets(record: Record, opts: EventTicketsOptions) -> Mapped:
    """``{"event": {...}, "pass": {...}}`` for one ticket. Raises RecordRejected naming the
    record and the field when the ticket cannot become a pass."""
    return {EVENT: event_fields(record, opts), PASS: pass_fields(record, opts)}


def with_change_messages(fields: dict[str, Any], opts: EventTicketsOptions) -> dict[str, Any]:
    """``fields`` for an update: each with its configured ``changeMessage``."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        message = opts.change_messages.get(name)
        out[name] = {**value, "changeMessage": message} if message else dict(value)
    return out


def event_body(fields: dict[str, Any], group: str) -> dict[str, Any]:
    """``POST /events/project/{projectId}/id/{externalId}``: fields and its pass group."""
    return {"passGroups": [group], "fields": fields}


def attendee(external_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"adaptiveLinkExternalId": external_id, "fields": fields}
