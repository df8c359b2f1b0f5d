"""TicketCo item grosses -> Airship CRM ``POST /v1/contact`` bodies, in plain Python.

This is what a user of a generic tool (dlt, or a hand-written script) would write to do the
same job as ticketbridge's TicketCo -> Airship CRM sync: group item grosses by ``ref_number``,
derive the booking (status, party size, value, dates) and build the very body that
ticketbridge's Airship connector sends for a new booking, so the destination does the same work
for every contender. ``tests/bench/test_airship_body.py`` checks the bodies against
ticketbridge's own mapping on sandbox data.

Sync settings mirrored (``bench/contenders.py`` writes the same into the project file): groups
``per_venue: Booking`` and ``event_tags: [Golf, Bowling]`` in folder ``TicketCo``, match on
email then mobile, default status / source / type maps, value in ``deposit_paid``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Europe/Oslo")  # TicketCo's naive timestamps are local time
ACCOUNT_ID = 1
GROUP_TAGS = ("Golf", "Bowling")
PER_VENUE_GROUP = "Booking"
FOLDER = "TicketCo"
SOURCE_NAME = "TicketCo"
STAGES = {"booked": 1, "attended": 100, "cancelled": 550, "no_show": 560}
SOURCES = {
    "web": 1,
    "website": 1,
    "online": 1,
    "box office": 9,
    "box_office": 9,
    "boxoffice": 9,
    "in house": 9,
}
DEFAULT_SOURCE, DEFAULT_TYPE = 10, 13
CANCELLED_ITEM = frozenset({"cancelled", "canceled", "refunded", "void", "voided"})
ENDED_EVENT = frozenset({"ended", "finished", "completed", "past"})
CANCELLED_EVENT = frozenset({"cancelled", "canceled"})
_EMAIL = re.compile(r"^[^@\s]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})$")
_UK_MOBILE = re.compile(r"^\+?447[1-9]\d{8}$")
_OUT = "%Y-%m-%d %H:%M:%S"


class Unusable(ValueError):
    """The booking cannot be sent (no identifier Airship can match on, or a bad field)."""


def group_items(items: Iterable[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Consecutive runs of one ``ref_number``: TicketCo serves a booking's items together."""
    ref: str | None = None
    group: list[dict[str, Any]] = []
    for item in items:
        this = str(item.get("ref_number") or "")
        if group and this != ref:
            yield ref or "", group
            group = []
        ref = this
        group.append(item)
    if group:
        yield ref or "", group


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)  # raises ValueError on a malformed stamp
    return value if value.tzinfo else value.replace(tzinfo=ZONE)


def _utc(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime(_OUT) if value else None


def _email(raw: str | None) -> str | None:
    text = (raw or "").strip()
    found = _EMAIL.match(text)
    if not found:
        return None
    return text[: found.start(1)] + found.group(1).lower()


def _uk_mobile(raw: str | None) -> str | None:
    digits = re.sub(r"[\s\-()]", "", raw or "")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    return digits.lstrip("+") if _UK_MOBILE.match(digits) else None


def _first(values: Iterable[Any]) -> Any:
    return next((v for v in values if v is not None), None)


def _opt_in(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(text)


def venue_of(event: dict[str, Any]) -> str:
    return " ".join(str(event.get("location_name") or "").split())


def booking_fields(
    event: dict[str, Any], items: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    """The booking object for ``bookings[]`` (without ``unit_id``). Raises Unusable."""
    try:
        stamps = [_time(i.get("transaction_datestamp")) for i in items]
        checkins = [_time(i.get("checked_in_at")) for i in items]
        start, end = _time(event.get("start_at")), _time(event.get("end_at"))
    except ValueError as exc:
        raise Unusable(str(exc)) from None
    active = [
        n
        for n, i in enumerate(items)
        if str(i.get("status") or "").strip().lower() not in CANCELLED_ITEM
        and i.get("cancelled_at") is None
    ]
    event_status = str(event.get("status") or "").strip().lower()
    cancelled = not active or event_status in CANCELLED_EVENT
    counted = list(range(len(items))) if cancelled else active
    if cancelled:
        status = "cancelled"
    elif any(checkins[n] is not None for n in active):
        status = "attended"
    elif event_status in ENDED_EVENT or (end is not None and end < now):
        status = "no_show"
    else:
        status = "booked"
    total: Decimal | None = None
    for n in counted:
        price = items[n].get("price")
        if price is None:
            continue
        try:
            amount = Decimal(str(price).replace(" ", "").replace(",", ".")).quantize(
                Decimal("0.01")
            )
        except InvalidOperation:
            continue
        total = amount if total is None else total + amount
    channel = _first(i.get("sales_channel") for i in items)
    out: dict[str, Any] = {
        "booking_reference": str(items[0]["ref_number"]),
        "party_datetime": _utc(start),
        "party_enquirytime": _utc(min((s for s in stamps if s is not None), default=None)),
        "stage_value": STAGES[status],
        "source_id": SOURCES.get(str(channel).strip().casefold(), DEFAULT_SOURCE)
        if channel is not None
        else DEFAULT_SOURCE,
        # The sync has no type_map, so every booking type falls to the default.
        "type_id": DEFAULT_TYPE,
        "party_size": len(counted),
    }
    out = {k: v for k, v in out.items() if v is not None}
    if total is not None:
        out["deposit_paid"] = str(total)
    return out


def contact_fields(event: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """Profile fields plus the identifier (email, else a UK mobile). Raises Unusable."""
    email = _email(_first(i.get("buyer_email") for i in items))
    mobile = _uk_mobile(_first(i.get("buyer_phone") for i in items))
    if not email and not mobile:
        raise Unusable("no usable email or UK mobile")
    answers = [_opt_in(i.get("buyer_email_opt_in")) for i in items]
    opt_in = next((a for a in reversed(answers) if a is not None), None)
    first = (_first(i.get("buyer_first_name") for i in items) or "").strip() or None
    last = (_first(i.get("buyer_last_name") for i in items) or "").strip() or None
    out = {
        "first_name": first,
        "last_name": last,
        "email": email,
        "mobile_number": mobile,
        "allow_email": opt_in,
    }
    return {k: v for k, v in out.items() if v is not None}


def groups_of(event: dict[str, Any]) -> list[str]:
    tags = {str(t).strip().casefold() for t in event.get("tags") or []}
    names = {PER_VENUE_GROUP} | {t for t in GROUP_TAGS if t.casefold() in tags}
    return sorted(names)


def contact_body(
    event: dict[str, Any], items: list[dict[str, Any]], unit_id: int, now: datetime
) -> dict[str, Any]:
    """The ``POST /v1/contact`` body ticketbridge sends for a new booking. Raises Unusable."""
    body = contact_fields(event, items)
    body["source_name"] = SOURCE_NAME
    body["full_contact_object"] = False
    body["units"] = [
        {"id": unit_id, "groups": [{"name": g, "folder_name": FOLDER} for g in groups_of(event)]}
    ]
    body["rules"] = [{"rule_name": "preserve_consent"}]
    booking = booking_fields(event, items, now)
    booking["unit_id"] = unit_id
    body["bookings"] = [booking]
    body["account_id"] = ACCOUNT_ID
    return body


def unit_ids(units_page: dict[str, Any]) -> dict[str, int]:
    """Folded venue name -> unit id, from ``GET /v1/account/units`` (one page is enough here)."""
    return {
        " ".join(str(u["name"]).split()).casefold(): int(u["id"])
        for u in units_page.get("data", [])
    }


def bodies(
    event: dict[str, Any], items: list[dict[str, Any]], units: dict[str, int], now: datetime
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """``(ref, body)`` per booking of one event's items; ``body`` is None when unusable."""
    unit = units.get(venue_of(event).casefold())
    for ref, group in group_items(items):
        if unit is None:
            yield ref, None
            continue
        try:
            yield ref, contact_body(event, group, unit, now)
        except Unusable:
            yield ref, None
