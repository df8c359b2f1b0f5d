"""Parse and validate what Tiqets sends, raising the spec's error for the first problem.

Order of checks (it decides which error a request with several problems gets): presence of
every required argument first (1000, in the spec's order), then types (2004), then formats
(2000), then values (2005). Unknown fields are ignored: the spec requires tolerance of new
fields. Dates and times are the venue's wall-clock values, as Tiqets sends them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ticketbridge.supplier import errors

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:00)?$")
CUSTOMER_FIELDS = ("first_name", "last_name", "email", "phone", "country")


def parse_date(value: str) -> date:
    if not _DATE.match(value):
        raise errors.malformed_date(value, "YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise errors.malformed_date(value, "YYYY-MM-DD") from None


def parse_range(params: Mapping[str, str]) -> tuple[date, date]:
    """``start``/``end`` of an availability request: inclusive, ``end >= start``."""
    for name in ("start", "end"):
        if not params.get(name):
            raise errors.missing_argument(name)
    start, end = parse_date(params["start"]), parse_date(params["end"])
    if end < start:
        raise errors.bad_range()
    return start, end


@dataclass(frozen=True)
class ReservationRequest:
    """A reservation request. ``tickets`` maps variant id -> quantity (repeats are summed)."""

    day: date
    time: str  # "HH:MM"; "00:00" for products without timeslots
    tickets: dict[str, int]
    customer: dict[str, str]
    order_data: dict[str, Any] = field(default_factory=dict)

    @property
    def slot(self) -> str:
        return f"{self.day.isoformat()}T{self.time}"

    @property
    def quantity(self) -> int:
        return sum(self.tickets.values())


def _object(body: Any, name: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.wrong_type(name, "an object", body)
    return body


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise errors.wrong_type(name, "a string", value)
    return value


def parse_reservation(body: Any) -> ReservationRequest:
    payload = _object(body, "body")
    for name in ("datetime", "tickets", "customer"):
        if payload.get(name) in (None, ""):
            raise errors.missing_argument(name)
    raw_when = _text(payload["datetime"], "datetime")
    raw_tickets = payload["tickets"]
    if not isinstance(raw_tickets, list):
        raise errors.wrong_type("tickets", "a list", raw_tickets)
    customer = _object(payload["customer"], "customer")
    found = _DATETIME.match(raw_when)
    if not found:
        raise errors.malformed_date(raw_when, "YYYY-MM-DDTHH:MM")
    try:
        moment = datetime.fromisoformat(f"{found.group(1)}T{found.group(2)}")
    except ValueError:
        raise errors.malformed_date(raw_when, "YYYY-MM-DDTHH:MM") from None
    tickets: dict[str, int] = {}
    for i, raw in enumerate(raw_tickets):
        line = _object(raw, f"tickets[{i}]")
        for name in ("variant_id", "quantity"):
            if line.get(name) is None:
                raise errors.missing_argument(f"tickets[{i}].{name}")
        variant = _text(line["variant_id"], f"tickets[{i}].variant_id")
        quantity = line["quantity"]
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise errors.wrong_type(f"tickets[{i}].quantity", "an integer", quantity)
        if quantity < 1:
            raise errors.invalid_value(f"The quantity of variant {variant} must be at least 1")
        tickets[variant] = tickets.get(variant, 0) + quantity
    if not tickets:
        raise errors.invalid_value("A reservation needs at least one ticket")
    people: dict[str, str] = {}
    for name in CUSTOMER_FIELDS:
        if customer.get(name) is None:
            raise errors.missing_argument(f"customer.{name}")
        people[name] = _text(customer[name], f"customer.{name}")
    order_data = payload.get("required_order_data")
    return ReservationRequest(
        day=moment.date(),
        time=moment.strftime("%H:%M"),
        tickets=tickets,
        customer=people,
        order_data=order_data if isinstance(order_data, dict) else {},
    )


def parse_booking(body: Any) -> tuple[str, str]:
    """``(reservation_id, order_reference)`` of a booking request."""
    payload = _object(body, "body")
    for name in ("reservation_id", "order_reference"):
        if payload.get(name) in (None, ""):
            raise errors.missing_argument(name)
    reservation_id = _text(payload["reservation_id"], "reservation_id")
    reference = _text(payload["order_reference"], "order_reference")
    # The spec says "at most 12 digits", yet Tiqets' own tester sends 19: only the length of
    # what is stored is bounded.
    if len(reference) > 64:
        raise errors.invalid_value("order_reference is longer than 64 characters")
    return reservation_id, reference
