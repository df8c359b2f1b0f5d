"""Ticketmaster's own payloads (the client-data shape of platforms.md 4.5), parsed tolerantly.

Every key here is [INFER]: there is no public spec [GAP]. Names follow platforms.md 4.5
(``id, email, first_name, last_name, mobile, marketing_consent{email,sms}, updated_at``;
orders with ``event``, ``tickets[]``, ``total``, ``currency``, ``status``) and, where 4.5 is
silent, Ticketmaster's Discovery API (``dates.start.dateTime``, venue ``address.line1``,
``city.name``, ``postalCode``). Unknown keys are kept (``extra="allow"``); mapping reads them
from the raw dict, so a field the models do not name still reaches destinations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


def parse_flag(value: Any) -> bool | None:
    """A consent flag: booleans, 0/1 and their usual spellings; blank is "not given".

    Anything else is an error rather than a guess, because a wrong guess would opt someone
    in (guarantee 4).
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().casefold()
        if not text:
            return None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"not a yes/no value: {value!r}")


def parse_stamp(value: Any) -> datetime | None:
    """ISO 8601 timestamp -> aware UTC datetime. Without an offset it is read as UTC
    (Discovery's ``dateTime`` values are UTC with a ``Z``) [INFER]."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        stamp = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        stamp = datetime.fromisoformat(text)
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def format_stamp(value: datetime) -> str:
    """The query-string spelling of a timestamp: UTC, ``Z``, microseconds only if any
    (Discovery's ``startDateTime=2024-05-01T00:00:00Z`` style)."""
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    spec = "seconds" if utc.microsecond == 0 else "microseconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


Flag = Annotated[bool | None, BeforeValidator(parse_flag)]
Stamp = Annotated[datetime | None, BeforeValidator(parse_stamp)]
Text = Annotated[str | None, BeforeValidator(_text)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")


class MarketingConsent(_Payload):
    """Per-channel marketing consent: true = given, false = refused, absent = not asked."""

    email: Flag = None
    sms: Flag = None
    updated_at: Stamp = None  # when the customer last answered [INFER]


class Customer(_Payload):
    id: Annotated[str, BeforeValidator(_text)]
    email: Text = None
    first_name: Text = None
    last_name: Text = None
    mobile: Text = None  # numbers arrive as strings or bare integers (12345678)
    marketing_consent: MarketingConsent | None = None
    created_at: Stamp = None
    updated_at: Annotated[datetime, BeforeValidator(parse_stamp)]


class OrderTicket(_Payload):
    id: Text = None
    barcode: Text = None
    section: Text = None
    row: Text = None
    seat: Text = None
    gate: Text = None  # [INFER] the entrance printed on the ticket, when the venue sets one
    type: Text = None
    price: Decimal | None = None
    status: Text = None


class OrderVenue(_Payload):
    id: Text = None
    name: Text = None

    def address_text(self) -> str | None:
        """``line1, postalCode city`` from Discovery-style venue fields, skipping blanks."""
        extra = self.model_extra or {}
        line1 = _text(dig(extra, "address.line1")) or _text(extra.get("address"))
        town = " ".join(
            p for p in (_text(extra.get("postalCode")), _text(dig(extra, "city.name"))) if p
        )
        return ", ".join(p for p in (line1, town) if p) or None


class OrderEvent(_Payload):
    id: Annotated[str, BeforeValidator(_text)]
    name: Annotated[str, BeforeValidator(_text)]
    venue: OrderVenue | None = None

    def starts_at(self) -> datetime | None:
        """``dates.start.dateTime`` (UTC), Discovery's spelling."""
        return parse_stamp(dig(self.model_extra or {}, "dates.start.dateTime"))

    def status(self) -> str | None:
        return _text(dig(self.model_extra or {}, "dates.status.code"))


class Order(_Payload):
    id: Annotated[str, BeforeValidator(_text)]
    customer_id: Annotated[str, BeforeValidator(_text)]
    status: Annotated[str, BeforeValidator(_text)]
    created_at: Stamp = None
    updated_at: Annotated[datetime, BeforeValidator(parse_stamp)]
    total: Decimal | None = None
    currency: Text = None
    channel: Text = None
    event: OrderEvent | None = None  # missing at the source is not an error (seeds README 1)
    tickets: list[OrderTicket] = Field(default_factory=list)


class TicketOrder(_Payload):
    """An order as the ``tickets`` stream reads it: only what keys and orders its tickets is
    required (``id``, ``updated_at``); the rest may be missing, and each ticket
    (``tickets[n]``, kept unvalidated here) is read on its own, so one bad ticket fails alone."""

    id: Annotated[str, BeforeValidator(_text)]
    updated_at: Annotated[datetime, BeforeValidator(parse_stamp)]
    customer_id: Text = None
    status: Text = None
    created_at: Stamp = None
    currency: Text = None
    channel: Text = None
    event: OrderEvent | None = None


class PageInfo(BaseModel):
    """Discovery's ``page`` object; ``number`` is 0-based [DOC platforms.md 4.2]."""

    model_config = ConfigDict(extra="allow")

    size: int = 0
    totalElements: int = 0
    totalPages: int = 0
    number: int = 0


@dataclass(frozen=True)
class ListPage:
    """One page of a list endpoint: raw items (as received) and the page object."""

    items: list[dict[str, Any]]
    page: PageInfo


def dig(body: Any, dotted: str) -> Any:
    """The value at ``a.b.c`` inside nested dicts, or None when any step is missing."""
    found = body
    for part in dotted.split("."):
        if not isinstance(found, dict):
            return None
        found = found.get(part)
    return found
