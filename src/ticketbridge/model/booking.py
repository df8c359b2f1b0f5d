"""Bookings, tickets and money."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ticketbridge.model.contact import Contact, FieldIssue, Person
from ticketbridge.model.currency import exponent
from ticketbridge.model.event import Event, Venue
from ticketbridge.model.times import UtcDatetime


class Money(BaseModel):
    """An amount in integer minor units (pence, øre) of an ISO 4217 currency.

    Integers avoid float drift when booking values are summed from many ticket lines.
    """

    model_config = ConfigDict(frozen=True)

    minor: int
    currency: str

    @field_validator("currency")
    @classmethod
    def _iso4217(cls, value: str) -> str:
        code = value.strip().upper()
        exponent(code)  # raises ValueError naming the bad code
        return code

    @classmethod
    def from_decimal(cls, amount: Decimal | float | int | str, currency: str) -> Money:
        if cls is Money:
            return _money(str(amount), currency)
        return cls._from_text(str(amount), currency)

    @classmethod
    def _from_text(cls, amount: str, currency: str) -> Money:
        code = currency.strip().upper()
        exp = exponent(code)
        quantum = Decimal(1).scaleb(-exp)
        value = Decimal(amount).quantize(quantum, rounding=ROUND_HALF_EVEN)
        return cls(minor=int(value.scaleb(exp)), currency=code)

    def as_decimal(self) -> Decimal:
        return Decimal(self.minor).scaleb(-exponent(self.currency))

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return _summed(self.minor + other.minor, self.currency)


@lru_cache(maxsize=4096)
def _money(amount: str, currency: str) -> Money:
    """Money is frozen, and sources repeat a few prices (ticket types) across thousands of
    tickets: one validated object per distinct price instead of one per ticket."""
    return Money._from_text(amount, currency)


@lru_cache(maxsize=4096)
def _summed(minor: int, currency: str) -> Money:
    """As :func:`_money`: a booking's value is the sum of a few ticket prices, so the same
    totals recur across thousands of bookings."""
    return Money(minor=minor, currency=currency)


class BookingStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    ATTENDED = "attended"
    NO_SHOW = "no_show"


class Ticket(BaseModel):
    number: str
    barcode: str | None = None
    seat: str | None = None
    row: str | None = None
    section: str | None = None
    gate: str | None = None
    type: str | None = None
    price: Money | None = None
    holder: Person | None = None
    owner: Person | None = None
    assignee: Person | None = None
    mobile_status: str | None = None
    # Which status list ``mobile_status`` is from (TIXNGO's "lifecycle" or legacy "history"
    # mode): a destination stores the two differently.
    mobile_status_mode: str | None = None
    status: str | None = None
    event: Event | None = None
    updated_at: UtcDatetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class Booking(BaseModel):
    """One reservation/order: a contact, an event at a venue, and its tickets.

    ``party_size`` and ``value`` may be missing at the source; that is not an error.
    """

    confirmation_number: str
    booked_at: UtcDatetime | None = None
    attendance_at: UtcDatetime | None = None
    status: BookingStatus = BookingStatus.BOOKED
    source: str | None = None
    type: str | None = None
    party_size: int | None = None
    value: Money | None = None
    contact: Contact | None = None
    venue: Venue | None = None
    event: Event | None = None
    tickets: list[Ticket] = Field(default_factory=list)
    updated_at: UtcDatetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    issues: list[FieldIssue] = Field(default_factory=list)
