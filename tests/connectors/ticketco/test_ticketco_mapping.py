"""Pure mapping rules: item grosses grouped by ref_number -> canonical Booking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ticketbridge.connectors.ticketco.mapping import (
    MappingContext,
    group_items,
    map_booking,
    parse_time,
    venue_key,
)
from ticketbridge.errors import MappingError
from ticketbridge.model import BookingStatus, ConsentState, Money

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2025, 6, 15, 6, 0, tzinfo=OSLO)
CTX = MappingContext(now=NOW, zone=OSLO, default_region="NO", currency="NOK")


def event(**over: Any) -> dict[str, Any]:
    base = {
        "id": 31001,
        "title": "Bowling Night",
        "start_at": "2025-06-20T19:00:00+02:00",
        "end_at": "2025-06-20T21:00:00+02:00",
        "location_name": " Bowl  Arena ",
        "tags": ["Bowling", "Family"],
        "status": "available",
    }
    return {**base, **over}


def item(n: int = 0, **over: Any) -> dict[str, Any]:
    base = {
        "id": 100 + n,
        "ref_number": "R1",
        "event_id": 31001,
        "transaction_datestamp": f"2025-06-01 1{n}:00:00",
        "item_type_title": "Standard",
        "item_type_type": "TicketType",
        "section_name": "Bane 2",
        "price": "249.00",
        "status": "sold",
        "sales_channel": "web",
        "barcode": f"00{n}",
        "checked_in_at": None,
        "buyer_id": 500001,
        "buyer_first_name": "Kari",
        "buyer_last_name": "Nordmann",
        "buyer_email": "kari@example.no",
        "buyer_phone": "412 34 567",
        "buyer_email_opt_in": True,
        "holder_first_name": "Kari",
        "holder_last_name": "Nordmann",
    }
    return {**base, **over}


def test_groups_by_ref_in_first_seen_order_and_keeps_orphans_apart() -> None:
    items = [
        item(0, ref_number="B"),
        item(1, ref_number="A"),
        item(2, ref_number=None),
        item(3, ref_number="B"),
        item(4, ref_number=" "),
    ]
    groups = group_items(items)
    assert [(ref, [i["id"] for i in g]) for ref, g in groups] == [
        ("B", [100, 103]),
        ("A", [101]),
        (None, [102]),
        (None, [104]),
    ]


def test_a_booking_with_everything() -> None:
    booking = map_booking(event(), [item(0), item(1, price="149,50", item_type_title="Child")], CTX)
    assert booking.confirmation_number == "R1"
    assert booking.booked_at == datetime(2025, 6, 1, 10, 0, tzinfo=OSLO)  # naive -> Oslo
    assert booking.attendance_at == datetime(2025, 6, 20, 17, 0, tzinfo=UTC)
    assert booking.status is BookingStatus.BOOKED
    assert (booking.source, booking.type, booking.party_size) == ("web", "TicketType", 2)
    assert booking.value == Money(minor=39850, currency="NOK")
    assert booking.venue and booking.venue.name == "Bowl Arena"
    assert booking.event and booking.event.tags == ["Bowling", "Family"]
    contact = booking.contact
    assert contact is not None
    assert (contact.email, contact.mobile, contact.external_id) == (
        "kari@example.no",
        "+4741234567",
        "500001",
    )
    assert contact.email_consent.state is ConsentState.GRANTED
    assert contact.email_consent.source == "ticketco"
    assert [t.number for t in booking.tickets] == ["100", "101"]
    assert booking.tickets[1].type == "Child" and booking.tickets[1].holder is not None


@pytest.mark.parametrize(
    ("items", "ev", "status", "party"),
    [
        (
            [item(0, status="cancelled"), item(1, status="refunded")],
            event(),
            BookingStatus.CANCELLED,
            2,
        ),
        ([item(0), item(1, status="cancelled")], event(), BookingStatus.BOOKED, 1),
        (
            [item(0, checked_in_at="2025-06-20T18:40:00+02:00"), item(1)],
            event(status="ended"),
            BookingStatus.ATTENDED,
            2,
        ),
        ([item(0)], event(status="ended"), BookingStatus.NO_SHOW, 1),
        (
            [item(0)],
            event(
                status=None,
                start_at="2025-06-10T19:00:00+02:00",
                end_at="2025-06-10T21:00:00+02:00",
            ),
            BookingStatus.NO_SHOW,
            1,
        ),
        ([item(0)], event(status=None, end_at=None), BookingStatus.BOOKED, 1),
        (
            [item(0, checked_in_at="2025-06-20T18:40:00+02:00")],
            event(status="cancelled"),
            BookingStatus.CANCELLED,
            1,
        ),
    ],
)
def test_status_rules(
    items: list[dict[str, Any]], ev: dict[str, Any], status: BookingStatus, party: int
) -> None:
    booking = map_booking(ev, items, CTX)
    assert booking.status is status
    assert booking.party_size == party


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        (["Child", "Adult", "Adult"], "Adult"),  # the most common
        (["Child", "Adult", "Adult", "Child"], "Child"),  # a tie: the first seen
        ([None, "Adult"], "Adult"),  # an item without a type does not count
    ],
)
def test_booking_type_is_the_most_common_item_type(types: list[str | None], expected: str) -> None:
    items = [item(n, item_type_type=t, item_type_title=None) for n, t in enumerate(types)]
    assert map_booking(event(), items, CTX).type == expected


def test_contact_fields_come_from_the_first_item_that_has_them() -> None:
    items = [
        item(0, buyer_id=None, buyer_first_name=None, sales_channel=None, buyer_phone=None),
        item(1, buyer_id=7, buyer_first_name="Ola", sales_channel="box", buyer_phone=None),
        item(2, buyer_id=8, buyer_first_name="Per", sales_channel="web", buyer_phone=None),
    ]
    booking = map_booking(event(), items, CTX)
    assert booking.source == "box"
    assert booking.contact is not None
    assert (booking.contact.external_id, booking.contact.first_name) == ("7", "Ola")
    assert booking.contact.mobile is None


def test_missing_optional_fields_are_not_errors() -> None:
    bare = {"ref_number": 777, "id": 5}
    booking = map_booking(event(end_at=None, location_name=None, tags=None), [bare], CTX)
    assert booking.confirmation_number == "777"
    assert (booking.value, booking.booked_at, booking.contact, booking.venue) == (
        None,
        None,
        None,
        None,
    )
    assert booking.party_size == 1 and booking.tickets[0].number == "5"


def test_unusable_values_are_issues() -> None:
    booking = map_booking(
        event(),
        [item(0, buyer_email="kari@", buyer_phone="ring meg", holder_email="nope", price="gratis")],
        CTX,
    )
    assert booking.contact is not None
    assert {i.field for i in booking.contact.issues} == {"email", "mobile"}
    assert (booking.contact.email, booking.contact.mobile) == (None, None)
    assert booking.contact.last_name == "Nordmann"
    assert {i.field for i in booking.issues} == {"items[0].price", "items[0].holder_email"}
    assert booking.value is None


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        (True, ConsentState.GRANTED),
        ("false", ConsentState.DENIED),
        ("0", ConsentState.DENIED),
        (None, ConsentState.UNKNOWN),
        ("maybe", ConsentState.UNKNOWN),
    ],
)
def test_email_opt_in(raw: object, state: ConsentState) -> None:
    booking = map_booking(event(), [item(0, buyer_email_opt_in=raw)], CTX)
    assert booking.contact is not None
    assert booking.contact.email_consent.state is state
    assert (booking.contact.email_consent.at is None) == (state is ConsentState.UNKNOWN)


def test_other_spellings_of_inferred_keys_are_read() -> None:
    raw = item(0)
    for key in ("buyer_email", "price"):
        raw.pop(key)
    raw.update(purchaser_email="ola@example.no", item_price=99)
    booking = map_booking(event(), [raw], CTX)
    assert booking.contact and booking.contact.email == "ola@example.no"
    assert booking.value == Money(minor=9900, currency="NOK")


@pytest.mark.parametrize(
    ("ev", "items", "field"),
    [
        (event(), [item(0, ref_number=None)], "ref_number"),
        (event(start_at="soon"), [item(0)], "event.start_at"),
        (event(start_at=None), [item(0)], "event.start_at"),
        (event(end_at="31/02/2025"), [item(0)], "event.end_at"),
        (
            event(),
            [item(0), item(1, transaction_datestamp="yesterday")],
            "items[1].transaction_datestamp",
        ),
        (event(), [item(0, checked_in_at="25:61")], "items[0].checked_in_at"),
        (event(id=None), [item(0)], "event.id"),
    ],
)
def test_bad_groups_raise_mapping_error_naming_the_field(
    ev: dict[str, Any], items: list[dict[str, Any]], field: str
) -> None:
    with pytest.raises(MappingError) as caught:
        map_booking(ev, items, CTX)
    assert field in caught.value.reason
    assert caught.value.record_key.startswith("booking:ticketco:")


def test_parse_time_formats() -> None:
    assert parse_time("2025-06-01T10:00:00Z", OSLO) == datetime(2025, 6, 1, 10, tzinfo=UTC)
    assert parse_time("2025-06-01 10:00:00", OSLO) == datetime(2025, 6, 1, 8, tzinfo=UTC)
    assert parse_time("01.06.2025 10:00", OSLO) == datetime(2025, 6, 1, 10, tzinfo=OSLO)
    assert parse_time("2025-01-01", OSLO) == datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=-1)
    assert parse_time(None, OSLO) is None and parse_time(" ", OSLO) is None
    with pytest.raises(ValueError, match="unparsable"):
        parse_time("31/02/2024 25:61", OSLO)


def test_venue_names_match_loosely() -> None:
    assert venue_key(" Bowl  ARENA ") == venue_key("bowl arena")
    assert venue_key(None) == ""
