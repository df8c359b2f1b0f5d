"""Pure mapping: Ticketmaster customer and order payloads -> canonical contacts and bookings."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from ticketbridge.connectors.ticketmaster.mapping import (
    MappingContext,
    customer_key,
    key_of,
    map_customer,
    map_order,
    order_key,
)
from ticketbridge.errors import MappingError
from ticketbridge.model import BookingStatus, ConsentState, Money

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
CTX = MappingContext(market="DK", now=NOW, default_region="DK")


def customer(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 2000001,
        "first_name": "Mette",
        "last_name": "Østergaard",
        "email": "mette@example.dk",
        "mobile": "+45 12 34 56 78",
        "marketing_consent": {"email": True, "sms": False, "updated_at": "2025-01-02T10:00:00Z"},
        "cards": {"Cardnumber": 1234567890, "Type": "Medlemskort"},
        "birth_date": "1988-01-28",
        "updated_at": "2025-05-01T08:00:00Z",
    }
    base.update(over)
    return base


def order(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "70000001",
        "customer_id": 2000001,
        "status": "COMPLETED",
        "created_at": "2025-05-01T09:00:00Z",
        "updated_at": "2025-05-01T09:00:00Z",
        "channel": "web",
        "currency": "DKK",
        "total": 742.5,
        "event": {
            "id": "vvG1ABC",
            "name": "Sommernat",
            "dates": {"start": {"dateTime": "2025-07-01T18:00:00Z"}, "status": {"code": "onsale"}},
            "venue": {
                "id": "KovZ1",
                "name": "Havnehallen",
                "address": {"line1": "Havnegade 12"},
                "postalCode": "1058",
                "city": {"name": "København K"},
            },
        },
        "tickets": [
            {
                "id": "7000000101",
                "barcode": "111",
                "section": "Parket A",
                "row": "4",
                "seat": "12",
                "type": "Voksen",
                "price": 495.0,
            },
            {
                "id": "7000000102",
                "barcode": "222",
                "section": "Parket A",
                "row": "4",
                "seat": "13",
                "type": "Barn",
                "price": 247.5,
            },
        ],
    }
    base.update(over)
    return base


def test_contact_fields_and_raw_attributes() -> None:
    c = map_customer(customer(), CTX)
    assert (c.external_id, c.first_name, c.last_name) == ("2000001", "Mette", "Østergaard")
    assert c.email == "mette@example.dk"
    assert c.mobile == "+4512345678"
    assert c.updated_at == datetime(2025, 5, 1, 8, tzinfo=UTC)
    # The raw payload, nested as received, so users can map cards.Cardnumber by path.
    assert c.attributes["cards"] == {"Cardnumber": 1234567890, "Type": "Medlemskort"}
    assert c.attributes["marketing_consent"]["email"] is True
    assert c.issues == []


@pytest.mark.parametrize(
    ("consent", "email", "sms"),
    [
        ({"email": True, "sms": True}, ConsentState.GRANTED, ConsentState.GRANTED),
        ({"email": True, "sms": False}, ConsentState.GRANTED, ConsentState.DENIED),
        ({"email": False, "sms": True}, ConsentState.DENIED, ConsentState.GRANTED),
        ({"email": False}, ConsentState.DENIED, ConsentState.UNKNOWN),
        ({"email": None, "sms": "0"}, ConsentState.UNKNOWN, ConsentState.DENIED),
        ({}, ConsentState.UNKNOWN, ConsentState.UNKNOWN),
        (None, ConsentState.UNKNOWN, ConsentState.UNKNOWN),
    ],
)
def test_consent_per_channel(consent: Any, email: ConsentState, sms: ConsentState) -> None:
    raw = customer(marketing_consent=consent)
    if consent is None:
        del raw["marketing_consent"]
    c = map_customer(raw, CTX)
    assert (c.email_consent.state, c.sms_consent.state) == (email, sms)
    assert c.email_consent.source == c.sms_consent.source == "ticketmaster"


def test_consent_timestamp_is_kept() -> None:
    c = map_customer(customer(), CTX)
    assert c.email_consent.at == datetime(2025, 1, 2, 10, tzinfo=UTC)
    assert c.sms_consent.at == datetime(2025, 1, 2, 10, tzinfo=UTC)


def test_unreadable_consent_fails_the_record_naming_the_field() -> None:
    with pytest.raises(MappingError) as info:
        map_customer(customer(marketing_consent={"email": "maybe"}), CTX)
    assert info.value.record_key == "contact:ticketmaster:DK:2000001"
    assert "marketing_consent.email" in info.value.reason


@pytest.mark.parametrize(
    "mobile",
    [
        "+45 12 34 56 78",
        "12345678",
        "004512345678",
        "0045 12345678",
        "+4512345678",
        "12 34 56 78",
        12345678,
    ],
)
def test_mobiles_in_every_format_normalise_to_one_e164(mobile: Any) -> None:
    assert map_customer(customer(mobile=mobile), CTX).mobile == "+4512345678"


def test_default_region_makes_local_numbers_danish_only_when_set() -> None:
    ctx = MappingContext(market="DK", now=NOW, default_region="NO")
    assert map_customer(customer(mobile="12345678"), ctx).mobile == "+4712345678"


def test_bad_email_and_mobile_are_issues_not_failures() -> None:
    c = map_customer(customer(email="mette@", mobile="ring efter kl. 17"), CTX)
    assert c.email is None and c.mobile is None
    assert {i.field for i in c.issues} == {"email", "mobile"}


def test_date_format_turns_birth_dates_into_iso() -> None:
    ctx = MappingContext(market="DK", now=NOW, default_region="DK", date_format="%d-%m-%Y")
    c = map_customer(customer(birth_date="28-01-1988"), ctx)
    assert c.attributes["birth_date"] == "1988-01-28"
    assert c.issues == []
    iso = map_customer(customer(), CTX)
    assert iso.attributes["birth_date"] == "1988-01-28"


def test_date_in_another_format_is_reported_and_kept_as_received() -> None:
    c = map_customer(customer(birth_date="28-01-1988"), CTX)  # ISO expected
    assert c.attributes["birth_date"] == "28-01-1988"
    assert [(i.field, i.value) for i in c.issues] == [("birth_date", "28-01-1988")]


def test_nested_date_fields_by_dotted_path() -> None:
    ctx = MappingContext(
        market="DK", now=NOW, date_format="%d.%m.%Y", date_fields=("cards.valid_until",)
    )
    raw = customer(cards={"Cardnumber": 1, "valid_until": "31.12.2026"})
    assert map_customer(raw, ctx).attributes["cards"]["valid_until"] == "2026-12-31"
    assert raw["cards"]["valid_until"] == "31.12.2026"  # the payload itself is untouched


def test_attributes_are_the_payload_copied_not_shared() -> None:
    """A record's attributes equal its payload but share no dict or list with it, so
    whatever later changes the one (a date rewrite, a dead letter's raw) leaves the other."""
    raw_customer, raw_order = customer(), order()
    contact = map_customer(raw_customer, CTX)
    booking = map_order(raw_order, raw_customer, CTX)
    for raw, attributes in ((raw_customer, contact.attributes), (raw_order, booking.attributes)):
        assert attributes == raw
        before = copy.deepcopy(raw)
        raw["marketing_consent" if "marketing_consent" in raw else "event"]["name"] = "changed"
        assert attributes == before
    raw_order["tickets"].append({"id": "extra"})
    assert len(booking.attributes["tickets"]) == len(raw_order["tickets"]) - 1


def test_missing_id_or_updated_at_fails_naming_the_field() -> None:
    raw = customer()
    del raw["id"]
    with pytest.raises(MappingError) as info:
        map_customer(raw, CTX)
    assert "id" in info.value.reason
    assert info.value.record_key.startswith("contact:ticketmaster:DK:unknown-")
    assert info.value.record_key == key_of("contact", raw, "DK")  # stable for retries
    with pytest.raises(MappingError, match="updated_at"):
        map_customer(customer(updated_at="yesterday"), CTX)


def test_order_maps_to_a_booking_with_its_customer() -> None:
    b = map_order(order(), customer(), CTX)
    assert b.confirmation_number == "70000001"
    assert b.status is BookingStatus.BOOKED  # the event is ahead of NOW
    assert b.booked_at == datetime(2025, 5, 1, 9, tzinfo=UTC)
    assert b.attendance_at == datetime(2025, 7, 1, 18, tzinfo=UTC)
    assert b.value == Money(minor=74250, currency="DKK")
    assert b.party_size == 2
    assert b.source == "web"
    assert b.venue is not None and b.venue.name == "Havnehallen"
    assert b.venue.address == "Havnegade 12, 1058 København K"
    assert b.event is not None and (b.event.external_id, b.event.name) == ("vvG1ABC", "Sommernat")
    assert b.event.status == "onsale"
    t = b.tickets[1]
    assert (t.number, t.barcode, t.section, t.row, t.seat, t.type) == (
        "7000000102",
        "222",
        "Parket A",
        "4",
        "13",
        "Barn",
    )
    assert t.price == Money(minor=24750, currency="DKK")
    assert b.contact is not None and b.contact.email == "mette@example.dk"
    assert b.contact.email_consent.state is ConsentState.GRANTED
    assert b.contact.sms_consent.state is ConsentState.DENIED
    assert b.attributes["event"]["venue"]["city"]["name"] == "København K"


@pytest.mark.parametrize(
    ("status", "event_at", "expected"),
    [
        ("COMPLETED", "2025-07-01T18:00:00Z", BookingStatus.BOOKED),
        ("COMPLETED", "2025-06-01T18:00:00Z", BookingStatus.ATTENDED),
        ("REFUNDED", "2025-07-01T18:00:00Z", BookingStatus.CANCELLED),
        ("CANCELLED", "2025-06-01T18:00:00Z", BookingStatus.CANCELLED),
    ],
)
def test_order_status(status: str, event_at: str, expected: BookingStatus) -> None:
    raw = order(status=status)
    raw["event"]["dates"]["start"]["dateTime"] = event_at
    assert map_order(raw, customer(), CTX).status is expected


def test_unknown_status_and_bad_currency_fail_naming_the_field() -> None:
    with pytest.raises(MappingError, match="status") as info:
        map_order(order(status="PENDING"), customer(), CTX)
    assert info.value.record_key == order_key("DK", "70000001")
    with pytest.raises(MappingError, match="currency"):
        map_order(order(currency="KRONER"), customer(), CTX)
    with pytest.raises(MappingError, match=r"event\.name"):
        map_order(order(event={"id": "E1"}), customer(), CTX)


def test_order_without_event_is_still_a_booking() -> None:
    b = map_order(order(event=None), customer(), CTX)
    assert b.event is None and b.venue is None and b.attendance_at is None
    assert b.status is BookingStatus.BOOKED


def test_order_without_its_customer_fails() -> None:
    with pytest.raises(MappingError, match="customer_id"):
        map_order(order(), None, CTX)
    with pytest.raises(MappingError, match="does not match"):
        map_order(order(customer_id=999), customer(), CTX)
    with pytest.raises(MappingError, match=r"customer 2000001: .*marketing_consent"):
        map_order(order(), customer(marketing_consent={"sms": "perhaps"}), CTX)


def test_keys() -> None:
    assert customer_key("DK", "2000001") == "contact:ticketmaster:DK:2000001"
    assert order_key("DK", "70000001") == "order:ticketmaster:DK:70000001"
