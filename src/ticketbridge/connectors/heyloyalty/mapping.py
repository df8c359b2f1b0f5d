"""Pure functions: canonical contact -> list member fields, canonical order -> tracking rows.

Nothing here does I/O, and the output depends only on the record, the options and the list's
country (the connection's ``default_region``): the engine hashes it to skip unchanged records.
Lists and product lines come out in a fixed order for the same reason.

Mobile format: Heyloyalty lists have a country and Heyloyalty prefixes that country's calling
code when it sends an SMS (guides.heyloyalty.com, "Lists and fields"); its own upsert example
writes bare digits. So a mobile of the list's country is written as its national digits
(``+45 12 34 56 78`` -> ``12345678``). A foreign number would get the wrong prefix: it is left
out, or the record is refused when mobile is the match field [INFER].
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
import phonenumbers
from pydantic import BaseModel

from ticketbridge.connectors.base import Mapped, Record
from ticketbridge.connectors.heyloyalty.config import (
    CANONICAL_FIELDS,
    PLATFORM,
    PURCHASE_EVENT,
    REQUIRED_TRACKING_FIELDS,
    STATUS,
    MembersOptions,
)
from ticketbridge.errors import RecordRejected
from ticketbridge.model import (
    Booking,
    BookingStatus,
    ConsentState,
    Contact,
    Money,
    Ticket,
    normalize_email,
    normalize_mobile,
)

MEMBER = "member"
PURCHASE = "purchase"
PRODUCTS = "products"  # product lines of a mapped purchase; each becomes one tracking row

_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_EMPTY: tuple[Any, ...] = (None, "", [], {})


class _Refuse(Exception):
    """A per-record refusal found while mapping; becomes RecordRejected with the record key."""


def _reject(record: Record, message: str) -> RecordRejected:
    return RecordRejected(f"{record.key}: {message}", record_key=record.key, platform=PLATFORM)


def resolve(root: Any, parts: Sequence[str]) -> Any:
    """Walk ``parts`` through dicts, pydantic models (fields, then extra keys) and lists
    (numeric parts). A missing step gives None: absent data is not an error."""
    current = root
    for part in parts:
        if current is None:
            return None
        if isinstance(current, BaseModel):
            if part in type(current).model_fields:
                current = getattr(current, part)
            else:
                current = (current.model_extra or {}).get(part)
        elif isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list | tuple) and part.isdigit():
            index = int(part)
            current = current[index] if index < len(current) else None
        else:
            return None
    return current


# -- identities -----------------------------------------------------------------------------


def list_mobile(raw: str | None, region: str | None) -> str | None:
    """A mobile in the form the list stores it: national digits for the list's country, E.164
    when the list's country is unknown, None when unusable (invalid, or another country)."""
    if raw is None or not str(raw).strip():
        return None
    try:
        e164 = normalize_mobile(str(raw), region)
    except ValueError:
        return None
    if region is None:
        return e164
    number = phonenumbers.parse(e164)
    if number.country_code != phonenumbers.country_code_for_region(region.upper()):
        return None
    return phonenumbers.national_significant_number(number)


def match_key(field: str, value: Any, region: str | None) -> str | None:
    """What two values of the match field are compared by: lower-cased email, E.164 mobile.

    The same rule on both sides (what we send, what the list returns) makes a member match
    whatever format either side wrote (``+45 12 34 56 78``, ``4512345678``, ``12345678``).
    """
    if value in _EMPTY:
        return None
    text = str(value).strip()
    if field == "email":
        return text.lower()
    try:
        return normalize_mobile(text, region)
    except ValueError:
        return None


def status_of(contact: Contact) -> dict[str, str]:
    """The member's per-channel status from consent: only what the source actually said.

    Unknown consent is never written, so a member's subscription is not changed by a source
    that does not know it (DESIGN guarantee 4).
    """
    out: dict[str, str] = {}
    for channel, consent in (("email", contact.email_consent), ("mobile", contact.sms_consent)):
        if consent.state is ConsentState.GRANTED:
            out[channel] = "active"
        elif consent.state is ConsentState.DENIED:
            out[channel] = "unsubscribed"
    return out


# -- values ---------------------------------------------------------------------------------


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):  # datetime included
        return value
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        try:
            return datetime.fromisoformat(value.strip().replace(" ", "T"))
        except ValueError:
            return None
    return None


def _scalar(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Money):
        return str(value.as_decimal())
    if isinstance(value, Decimal):
        return str(value)
    return value


def list_value(value: Any, options: MembersOptions) -> Any:
    """A source value as a list field takes it; None for "nothing to send".

    Dates (objects or ISO 8601 strings) are written with ``date_format``; text is trimmed;
    numbers and booleans stay as they are; a list becomes a list of such values
    (multiple-choice fields). An object raises _Refuse: which of its keys
    is meant is the user's choice, made with a longer path.
    """
    value = _scalar(value)
    if isinstance(value, bool | int | float):
        return value
    found = _as_date(value)
    if found is not None:
        return found.strftime(options.mapping.date_format)
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list | tuple):
        items = [list_value(v, options) for v in value]
        return [i for i in items if i is not None] or None
    if value is None:
        return None
    raise _Refuse("is an object, not a value; map one of its keys with a longer path")


def tracking_value(value: Any) -> Any:
    """A value for a tracking row: money as a decimal string, instants in ISO 8601 UTC.

    The import is sent with ``date_format: iso8601``; naive datetimes are taken as UTC, the
    same rule every destination here applies to instants without a zone.
    """
    value = _scalar(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value.strip() or None
    if value is None or isinstance(value, bool | int | float):
        return value
    raise _Refuse("is an object, not a value; map one of its keys with a longer path")


# -- members --------------------------------------------------------------------------------


def _source(contact: Contact, path: str, sep: str) -> Any:
    if path in CANONICAL_FIELDS:
        return getattr(contact, path)
    return resolve(contact.attributes, path.split(sep))


def member_fields(
    record: Record, contact: Contact, options: MembersOptions, region: str | None
) -> dict[str, Any]:
    """``{list field: value}`` for one contact; raises RecordRejected naming the field."""
    mapping = options.mapping
    out: dict[str, Any] = {}
    for name, path in sorted(options.mapping.member_fields().items()):
        if name == STATUS and path == STATUS:
            status = status_of(contact)
            if status:
                out[STATUS] = status
            continue
        raw = _source(contact, path, mapping.separator)
        try:
            value = list_value(raw, options)
        except _Refuse as exc:
            raise _reject(record, f"list field {name!r} <- {path!r} {exc}") from None
        if value is None:
            continue
        if name == "mobile":
            value = list_mobile(str(value), region)
            if value is None:
                continue  # the identity check below refuses it when mobile is the match field
        elif name == "email" and path != "email":
            try:
                value = normalize_email(str(value))
            except ValueError:
                continue
        out[name] = value
    if options.match not in out:
        raise _reject(record, _identity_problem(contact, options, region))
    return out


def _identity_problem(contact: Contact, options: MembersOptions, region: str | None) -> str:
    field = options.match
    issue = next((i for i in contact.issues if i.field == field), None)
    if issue is not None:
        detail = issue.reason
    elif field == "mobile" and contact.mobile:
        detail = (
            f"{contact.mobile} is not a {region} mobile; the list's SMS sending adds "
            f"the {region} country code"
        )
    else:
        detail = "missing"
    return f"no usable {field} to match the member on (match: {field}; {field}: {detail})"


def prepare_member(record: Record, options: MembersOptions, region: str | None) -> Mapped:
    contact = record.data
    if not isinstance(contact, Contact):
        raise _reject(record, "expected a contact")
    return {MEMBER: member_fields(record, contact, options, region)}


# -- purchases ------------------------------------------------------------------------------


def _lines(booking: Booking) -> list[Ticket]:
    """Tickets with the order's event where they carry none; an order without tickets is one
    line worth the order's value."""
    if not booking.tickets:
        return [
            Ticket(number=booking.confirmation_number, price=booking.value, event=booking.event)
        ]
    return [
        t if t.event is not None else t.model_copy(update={"event": booking.event})
        for t in booking.tickets
    ]


def _tracking_fields(root: Any, fields: dict[str, list[str]], record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, parts in fields.items():
        try:
            value = tracking_value(resolve(root, parts))
        except _Refuse as exc:
            raise _reject(record, f"tracking field {name!r} {exc}") from None
        if value is not None:
            out[name] = value
    return out


def prepare_purchase(record: Record, options: MembersOptions) -> Mapped:
    """``{"purchase": {order-level fields, "event_type", "products": [...]}}`` for one order.

    Identical product lines are merged with a ``quantity``. A cancelled order maps to an empty
    purchase (``{"purchase": {}}``): a purchase event for it would start "thank you for
    buying" automations [INFER]. It is empty rather than absent so the ledger stores its hash
    and later runs see it as unchanged, at no cost.
    """
    booking = record.data
    if not isinstance(booking, Booking):
        raise _reject(record, "expected an order")
    if booking.status is BookingStatus.CANCELLED:
        return {PURCHASE: {}}
    sep = options.mapping.separator
    order_paths: dict[str, list[str]] = {}
    line_paths: dict[str, list[str]] = {}
    for name, path in options.mapping.tracking_fields.items():
        root, *rest = path.split(sep)
        (order_paths if root == "order" else line_paths)[name] = rest
    order = _tracking_fields(booking, order_paths, record)
    if "email" in order:
        try:
            order["email"] = normalize_email(str(order["email"]))
        except ValueError as exc:
            raise _reject(record, f"buyer email: {exc}") from None
    counted: dict[bytes, tuple[dict[str, Any], int]] = {}
    for ticket in _lines(booking):
        line = _tracking_fields(ticket, line_paths, record)
        key = orjson.dumps(line, option=orjson.OPT_SORT_KEYS)
        found = counted.get(key)
        counted[key] = (line, (found[1] if found else 0) + 1)
    products = [{**line, "quantity": n} for key, (line, n) in sorted(counted.items())]
    for name in REQUIRED_TRACKING_FIELDS:
        missing = name not in order and any(name not in p for p in products)
        if missing:
            path = options.mapping.tracking_fields[name]
            what = "no buyer email" if name == "email" else f"no {name}"
            raise _reject(record, f"{what} (tracking field {name!r} <- {path!r})")
    return {PURCHASE: {**order, "event_type": PURCHASE_EVENT, PRODUCTS: products}}


def tracking_rows(purchase: dict[str, Any]) -> list[dict[str, Any]]:
    """The import rows of one mapped purchase: one per product line, order fields repeated."""
    order = {k: v for k, v in purchase.items() if k != PRODUCTS}
    return [{**order, **product} for product in purchase.get(PRODUCTS) or [{}]]


def prepare_members(record: Record, options: MembersOptions, region: str | None) -> Mapped:
    """Contact -> ``{"member": ...}``; order (booking) -> ``{"purchase": ...}``.

    Raises RecordRejected naming the record and the field: a contact without the match field,
    an order without a buyer email, a mapped path that resolves to an object.
    """
    if record.kind == "contact":
        return prepare_member(record, options, region)
    if record.kind == "booking":
        return prepare_purchase(record, options)
    raise _reject(record, f"Heyloyalty members accepts contacts and orders, not {record.kind}")
