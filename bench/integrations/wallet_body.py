"""TicketCo events and item grosses -> Airship Wallet calls, in plain Python.

What a user of a generic tool writes to do the job of ticketbridge's TicketCo -> Airship Wallet
sync (the demo's settings, every option at its default): per event with tickets, one event
create under the event's id with one pass group (``event-<id>``); per ticket (item gross) one
attendee of an adaptive-link request (``adaptiveLinkExternalId`` = the ticket's id), the
attendees of one event 100 a request, which issues a pass per template (Apple and Google).
``tests/bench/test_wallet_body.py`` checks these requests equal to the ones ticketbridge's
``airship_wallet`` destination sends for the same tickets.

A stateless job cannot tell a first run from a rerun. What the scripts do on a rerun, the same
calls as a first run plus what the answers ask for (:func:`event_update`,
:func:`pass_updates`): an event create answered 400 (the external id exists) becomes an
update of that event by external id, which Wallet applies to every pass of the event; an
attendee answered with a 400 status (a Wallet that refuses a second link under one external
id) becomes a partial update of its passes, one per template. The Wallet sandbox takes a link
sent again under its external id as an update of that link and its passes
(``sandbox_store.py``, [INFER]), so there the link request itself carries a seat change.

Tickets ticketbridge would not send are left out the same way: an item gross without id and
ref_number, an unreadable date, a price in a currency Wallet does not take (ticketbridge
dead-letters those), and events without a start.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Europe/Oslo")  # TicketCo's naive timestamps are local time
CURRENCY = "NOK"  # item grosses without a currency
PROJECT_ID = 12345
TEMPLATES = (1001, 1002)  # iOS, Android
LINKS_PER_REQUEST = 100
MICROS = 6
# Minor-unit exponents of the currencies Wallet's faceValue takes (ISO 4217).
WALLET_CURRENCIES = {
    c: 0 if c in ("JPY", "KRW") else 2
    for c in (
        "USD EUR CNY JPY GBP RUB AUD CHF CAD HKD SEK NZD KRW SGD NOK MXN INR".split()  # noqa: SIM905
    )
}
CANCELLED_ITEM = frozenset({"cancelled", "canceled", "refunded", "void", "voided"})
CANCELLED_EVENT = frozenset({"cancelled", "canceled"})
SHOWN = {"valid": "Valid", "attended": "Attended", "cancelled": "Cancelled"}
_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y")


class Unusable(ValueError):
    """The ticket (or the event's tickets) cannot be sent: a date or price Wallet can't take."""


def _get(raw: dict[str, Any], *names: str) -> str | None:
    """The first of ``names`` the payload has, as text; blank is missing."""
    for name in names:
        if name in raw:
            value = raw[name]
            if value is None or (isinstance(value, str) and not value.strip()):
                return None
            return value if isinstance(value, str) else str(value)
    return None


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    text = text.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        for fmt in _FORMATS:
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            raise Unusable(f"unreadable date {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=ZONE)


def _wallet_time(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def event_id(event: dict[str, Any]) -> str:
    found = _get(event, "id")
    if found is None:
        raise Unusable("event without id")
    return found


def _seg(value: str) -> str:
    return quote(value, safe="")


def group_of(event: dict[str, Any]) -> str:
    return f"event-{event_id(event)}"


def event_fields(event: dict[str, Any]) -> dict[str, Any]:
    """The fields every pass of the event shares. Raises Unusable without a start."""
    out: dict[str, Any] = {
        "eventName": {
            "label": "Event",
            "value": _get(event, "title", "name") or f"Event {event_id(event)}",
        }
    }
    venue = " ".join((_get(event, "location_name", "location") or "").split())
    if venue:
        out["venueTitle"] = {"label": "Venue", "value": venue}
        address = _get(event, "street_address")
        if address:
            out["venueAddress"] = {"label": "Address", "value": address}
    starts = _time(_get(event, "start_at"))
    if starts is None:
        raise Unusable("event without start_at")
    times = (
        ("doorsOpen", "Doors Open", _time(_get(event, "doors_open_at", "doors_open", "door_time"))),
        ("startTime", "Start Time", starts),
        ("endTime", "End Time", _time(_get(event, "end_at"))),
    )
    for name, label, when in times:
        if when is not None:
            out[name] = {"label": label, "value": _wallet_time(when)}
    return out


def event_create(event: dict[str, Any], fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``POST /events/project/{projectId}/id/{externalId}``: path (under /v1) and body."""
    path = f"events/project/{PROJECT_ID}/id/{_seg(event_id(event))}"
    return path, {"passGroups": [group_of(event)], "fields": fields}


def event_update(event: dict[str, Any], fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The rerun's answer to a 400 on create: ``PUT`` the event by external id (Wallet then
    updates every pass of the event)."""
    return f"events/project/{PROJECT_ID}/id/{_seg(event_id(event))}", {"fields": fields}


def ref_of(item: dict[str, Any]) -> str | None:
    for name in ("ref_number", "reference_number", "order_number"):
        value = item.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _micros(raw: dict[str, Any]) -> dict[str, Any] | None:
    price = _get(raw, "price", "item_price", "gross", "amount")
    if price is None:
        return None
    text = price.replace(" ", "").replace("\u00a0", "").replace(",", ".")
    code = (_get(raw, "currency") or CURRENCY).strip().upper()
    if code not in WALLET_CURRENCIES:
        # ticketbridge refuses such a ticket (other_currencies: refuse): a dead letter.
        raise Unusable(f"faceValue currency {code} is not one Wallet accepts")
    exp = WALLET_CURRENCIES[code]
    try:
        minor = int(Decimal(text).quantize(Decimal(1).scaleb(-exp), ROUND_HALF_EVEN).scaleb(exp))
    except InvalidOperation:
        return None  # an unreadable price: the pass shows none
    return {"label": "Price", "currencyCode": code, "micros": minor * 10 ** (MICROS - exp)}


def attendee(event: dict[str, Any], item: dict[str, Any], index: int) -> dict[str, Any]:
    """One ticket's attendee (``index``: its position among its ref_number's items). Raises
    Unusable for a ticket ticketbridge would not send."""
    ref = ref_of(item)
    number = _get(item, "id")
    number = number.strip() if number else (f"{ref}-{index + 1}" if ref else None)
    if number is None:
        raise Unusable("item gross without id and ref_number")
    for name in ("transaction_datestamp", "checked_in_at", "cancelled_at"):
        _time(_get(item, name))  # an unreadable date makes the ticket a dead letter
    checked_in = _get(item, "checked_in_at") is not None
    cancelled = (_get(item, "status") or "").strip().lower() in CANCELLED_ITEM or _get(
        item, "cancelled_at"
    ) is not None
    if cancelled or (_get(event, "status") or "").lower() in CANCELLED_EVENT:
        status = "cancelled"
    else:
        status = "attended" if checked_in else "valid"
    face = _micros(item)
    names = (_get(item, "holder_first_name"), _get(item, "holder_last_name"))
    holder = " ".join(n.strip() for n in names if n and n.strip()) or None
    texts = (
        ("ticketHolderName", "Name", holder),
        ("seat", "Seat", _get(item, "seat_name", "seat")),
        ("row", "Row", _get(item, "row_name", "row")),
        ("section", "Section", _get(item, "section_name")),
        ("gate", "Gate", _get(item, "gate_name", "gate", "entrance_name", "entrance")),
        ("ticketType", "Type", _get(item, "item_type_title")),
        ("ticketNumber", "Ticket", number),
        ("confirmationCode", "Confirmation", ref),
    )
    fields: dict[str, Any] = {n: {"label": label, "value": v} for n, label, v in texts if v}
    fields["status"] = {"label": "Status", "value": SHOWN[status]}
    barcode = _get(item, "barcode")
    if status == "cancelled":  # a cancelled pass must not scan
        fields["barcode_value"] = {"value": "VOID"}
        fields["barcodeAltText"] = {"value": "CANCELLED"}
    elif barcode:
        fields["barcode_value"] = {"value": barcode}
        fields["barcodeAltText"] = {"value": barcode}
    if face is not None:
        fields["faceValue"] = face
    return {"adaptiveLinkExternalId": number, "fields": fields}


def attendees(event: dict[str, Any], items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The sendable attendees of an event's item grosses, in order. ``items`` may be the
    event's pages one after another: positions within a ref_number continue across them
    only if the same iterator is used (see :class:`Positions`)."""
    positions = Positions()
    for item in items:
        found = positions.attendee(event, item)
        if found is not None:
            yield found


class Positions:
    """Each item's position within its ref_number (its ticket number when it has no id),
    carried across the pages of one event."""

    def __init__(self) -> None:
        self.seen: dict[str | None, int] = {}

    def attendee(self, event: dict[str, Any], item: dict[str, Any]) -> dict[str, Any] | None:
        ref = ref_of(item)
        index = self.seen.get(ref, 0)
        self.seen[ref] = index + 1
        try:
            return attendee(event, item, index)
        except Unusable:
            return None


def links_request(event: dict[str, Any], batch: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """``POST /links/adaptive/multiple/project/{projectId}`` for one event's attendees."""
    body = {
        "iosTemplateId": TEMPLATES[0],
        "androidTemplateId": TEMPLATES[1],
        "payload": {"events": [{"eventExternalId": event_id(event), "attendees": batch}]},
    }
    return f"links/adaptive/multiple/project/{PROJECT_ID}", body


def batches(
    found: list[dict[str, Any]], size: int = LINKS_PER_REQUEST
) -> list[list[dict[str, Any]]]:
    return [found[i : i + size] for i in range(0, len(found), size)]


def pass_updates(batch: list[dict[str, Any]], answer: Any) -> list[tuple[str, dict[str, Any]]]:
    """The pass updates an adaptive-link answer asks for: an attendee Wallet answered 400
    (its link exists) has its passes updated by external id, one ``PUT`` per template."""
    items = answer.get("links") if isinstance(answer, dict) else answer
    refused = {
        str(a.get("adaptiveLinkExternalId"))
        for a in items or []
        if isinstance(a, dict) and a.get("status") == 400
    }
    return [
        (f"pass/template/{t}/id/{_seg(a['adaptiveLinkExternalId'])}", {"fields": a["fields"]})
        for a in batch
        if a["adaptiveLinkExternalId"] in refused
        for t in TEMPLATES
    ]
