"""Pure mapping: contacts -> list member fields, orders -> tracking rows, and the options."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ticketbridge.connectors.heyloyalty import MembersOptions
from ticketbridge.connectors.heyloyalty.mapping import (
    list_mobile,
    match_key,
    prepare_members,
    tracking_rows,
)
from ticketbridge.errors import RecordRejected
from ticketbridge.model import ConsentState

from .support import make_contact, make_order, options

DK = "DK"


def member(record_opts: MembersOptions, **contact: object) -> dict[str, object]:
    return prepare_members(make_contact(**contact), record_opts, DK)["member"]  # type: ignore[arg-type]


def test_default_customer_mapping() -> None:
    assert member(options()) == {
        "firstname": "Jane",
        "lastname": "Doe",
        "email": "jane.doe@example.com",
        "mobile": "12345678",
        "birthdate": "1985-03-02",
        "status": {"email": "active"},
    }


def test_prepare_is_deterministic() -> None:
    record, opts = make_contact(), options(mapping={"fields": {"Cardnumber": "cards.Cardnumber"}})
    assert prepare_members(record, opts, DK) == prepare_members(record, opts, DK)


def test_mobile_is_national_digits_for_the_list_country() -> None:
    for raw in ("+45 12 34 56 78", "12345678", "0045 12345678", "4512345678"):
        assert list_mobile(raw, DK) == "12345678", raw
    assert list_mobile("+46 70 123 45 67", DK) is None  # +45 would be put in front of it
    assert list_mobile("+46 70 123 45 67", None) == "+46701234567"
    assert match_key("mobile", "+45 12 34 56 78", DK) == match_key("mobile", "12345678", DK)
    assert match_key("email", " Jane@Example.COM", DK) == "jane@example.com"


def test_status_follows_consent_and_never_invents_it() -> None:
    opts = options()
    assert member(opts, sms_consent=ConsentState.DENIED)["status"] == {
        "email": "active",
        "mobile": "unsubscribed",
    }
    unknown = member(opts, email_consent=ConsentState.UNKNOWN)
    assert "status" not in unknown


def test_nested_field_mapping_and_custom_separator() -> None:
    added = member(options(mapping={"fields": {"Cardnumber": "cards.Cardnumber"}}))
    assert added["Cardnumber"] == 1234
    slash = options(mapping={"separator": "/", "fields": {"Cardnumber": "cards/Cardnumber"}})
    assert member(slash)["Cardnumber"] == 1234
    # With "/" as separator a dotted name is one key, which the payload does not have.
    assert "Cardnumber" not in member(
        options(mapping={"separator": "/", "fields": {"Cardnumber": "cards.Cardnumber"}})
    )


def test_removing_a_field_stops_sending_it() -> None:
    got = member(options(mapping={"remove": ["birthdate", "status"]}))
    assert "birthdate" not in got and "status" not in got and got["email"]


def test_mapping_an_object_is_refused_naming_the_field() -> None:
    with pytest.raises(RecordRejected, match="'Cardnumber' <- 'cards'"):
        member(options(mapping={"fields": {"Cardnumber": "cards"}}))


def test_dates_use_the_date_format() -> None:
    assert member(options(mapping={"date_format": "%d-%m-%Y"}))["birthdate"] == "02-03-1985"
    stamp = member(options(), attributes={"birth_date": "1985-03-02T00:00:00+01:00"})
    assert stamp["birthdate"] == "1985-03-02"
    text = member(options(), attributes={"birth_date": "02.03.1985"})  # not ISO: sent as is
    assert text["birthdate"] == "02.03.1985"


def test_contact_without_the_match_field_is_refused() -> None:
    with pytest.raises(RecordRejected, match=r"contact:ticketmaster:DK:1: no usable mobile"):
        member(options(match="mobile"), mobile=None)
    with pytest.raises(RecordRejected, match="not a DK mobile"):
        member(options(match="mobile"), mobile="+46 70 123 45 67")
    with pytest.raises(RecordRejected, match="no usable email"):
        member(options(), email=None)
    # match on mobile: no email is fine
    assert member(options(match="mobile"), email=None)["mobile"] == "12345678"


def test_match_accepts_a_one_element_list_only() -> None:
    assert options(match=["mobile"]).match == "mobile"
    with pytest.raises(ValidationError, match="one field"):
        options(match=["email", "mobile"])
    with pytest.raises(ValidationError, match="must be sent"):
        options(match="email", mapping={"remove": ["email"]})


def test_order_maps_to_one_purchase_with_product_lines() -> None:
    purchase = prepare_members(make_order("987", tickets=2), options(), DK)["purchase"]
    assert purchase == {
        "email": "jane.doe@example.com",
        "order_id": "987",
        "created_at": "2024-05-01T09:30:00Z",
        "event_type": "purchasedBasket",
        "products": [
            {
                "product_id": "EV-1",
                "description": "Aarhus Jazz Night",
                "product_price": "450.00",
                "original_price": "450.00",
                "currency": "DKK",
                "quantity": 2,
            }
        ],
    }
    [row] = tracking_rows(purchase)
    assert row["email"] == "jane.doe@example.com" and row["quantity"] == 2


def test_order_without_tickets_is_one_line_worth_the_order() -> None:
    purchase = prepare_members(make_order(tickets=0, price="120.50"), options(), DK)["purchase"]
    assert purchase["products"][0]["product_price"] == "120.50"


def test_tracking_fields_can_be_added_and_dropped() -> None:
    opts = options(
        mapping={"tracking_fields": {"venue_order": "order.attributes.channel", "description": ""}}
    )
    purchase = prepare_members(make_order(), opts, DK)["purchase"]
    assert "description" not in purchase["products"][0]
    with pytest.raises(ValidationError, match="cannot be removed"):
        options(mapping={"tracking_fields": {"email": ""}})
    with pytest.raises(ValidationError, match="must start with"):
        options(mapping={"tracking_fields": {"x": "contact.email"}})


def test_order_without_buyer_email_is_refused() -> None:
    with pytest.raises(RecordRejected, match="order:ticketmaster:DK:987: no buyer email"):
        prepare_members(make_order(email=None), options(), DK)


def test_cancelled_order_maps_to_nothing() -> None:
    assert prepare_members(make_order(cancelled=True), options(), DK) == {"purchase": {}}
