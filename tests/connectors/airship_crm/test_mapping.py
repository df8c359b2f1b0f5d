"""prepare(): the pure mapping the engine hashes. No HTTP here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from ticketbridge.connectors.airship_crm import ContactBookingsOptions
from ticketbridge.connectors.airship_crm.mapping import (
    airship_datetime,
    airship_mobile,
    prepare_contact_bookings,
)
from ticketbridge.errors import RecordRejected
from ticketbridge.model import BookingStatus, ConsentState, Contact, stable_hash

from .support import make_booking

OPTS = ContactBookingsOptions()


def test_full_shape() -> None:
    mapped = prepare_contact_bookings(make_booking("R123"), OPTS)
    assert mapped == {
        "contact": {
            "first_name": "Jane",
            "last_name": "Doe",
            "email": "jane.doe@example.com",
            "mobile_number": "447700900123",
            "allow_email": True,
            "venue": "Riverside Hall",
            "groups": ["Booking"],
        },
        "booking": {
            "booking_reference": "R123",
            "venue": "Riverside Hall",
            "party_datetime": "2024-06-01 19:00:00",
            "party_enquirytime": "2024-05-01 09:30:00",
            "stage_value": 1,
            "source_id": 1,
            "type_id": 13,
            "party_size": 2,
            "deposit_paid": "45.00",
        },
    }


def test_unknown_consent_is_omitted_denied_is_written() -> None:
    unknown = prepare_contact_bookings(
        make_booking(email_consent=ConsentState.UNKNOWN, sms_consent=ConsentState.UNKNOWN), OPTS
    )["contact"]
    assert "allow_email" not in unknown and "allow_sms" not in unknown
    denied = prepare_contact_bookings(
        make_booking(email_consent=ConsentState.DENIED, sms_consent=ConsentState.GRANTED), OPTS
    )["contact"]
    assert denied["allow_email"] is False and denied["allow_sms"] is True


@pytest.mark.parametrize(
    ("e164", "expected"),
    [
        ("+447700900123", "447700900123"),
        ("+447100900123", "447100900123"),
        ("+447000900123", None),  # 070 personal numbers are not mobiles for Airship
        ("+442071234567", None),
        ("+4512345678", None),
        (None, None),
    ],
)
def test_airship_mobile(e164: str | None, expected: str | None) -> None:
    assert airship_mobile(e164) == expected


def test_groups_from_venue_and_configured_tags() -> None:
    opts = ContactBookingsOptions.model_validate(
        {"groups": {"event_tags": ["Golf", "Bowling", "Darts"]}}
    )
    record = make_booking(tags=("golf", "BOWLING", "Karaoke"))
    groups = prepare_contact_bookings(record, opts)["contact"]["groups"]
    # Configured spelling, case-insensitive match, only configured tags, sorted.
    assert groups == ["Booking", "Bowling", "Golf"]


def test_foreign_mobile_with_valid_email_sends_email_only() -> None:
    contact = prepare_contact_bookings(make_booking(mobile="+45 12 34 56 78"), OPTS)["contact"]
    assert contact["email"] == "jane.doe@example.com"
    assert "mobile_number" not in contact


def test_mobile_only_contact_is_fine() -> None:
    contact = prepare_contact_bookings(make_booking(email=None), OPTS)["contact"]
    assert contact["mobile_number"] == "447700900123" and "email" not in contact


def test_rejection_names_record_fields_and_issues() -> None:
    record = make_booking("R123", email="x@", mobile="+45 12 34 56 78")
    with pytest.raises(RecordRejected) as caught:
        prepare_contact_bookings(record, OPTS)
    reason = caught.value.message
    assert reason.startswith("booking:ticketco:R123: no email and no valid UK mobile (")
    assert "email: invalid email 'x@'" in reason
    assert "mobile: +4512345678 is not a UK mobile" in reason
    assert caught.value.record_key == "booking:ticketco:R123"


def test_rejection_reports_mobile_issue_and_missing_email() -> None:
    with pytest.raises(RecordRejected) as caught:
        prepare_contact_bookings(make_booking(email=None, mobile="12"), OPTS)
    assert "email: missing" in caught.value.message
    assert "mobile: invalid mobile '12'" in caught.value.message


def test_match_on_email_only_rejects_mobile_only_contact() -> None:
    opts = ContactBookingsOptions(match=["email"])
    with pytest.raises(RecordRejected, match=r"no email \(email: missing\)"):
        prepare_contact_bookings(make_booking(email=None), opts)


def test_missing_source_fields_are_omitted_not_errors() -> None:
    record = make_booking(party_size=None, value=None, source=None)
    record.data.booked_at = None  # type: ignore[union-attr]
    contact = Contact(email="a@example.com")  # no names, no mobile
    record.data.contact = contact  # type: ignore[union-attr]
    mapped = prepare_contact_bookings(record, OPTS)
    assert mapped["contact"] == {
        "email": "a@example.com",
        "venue": "Riverside Hall",
        "groups": ["Booking"],
    }
    booking = mapped["booking"]
    assert "party_size" not in booking and "deposit_paid" not in booking
    assert "party_enquirytime" not in booking
    assert booking["source_id"] == 10  # missing source -> default (Third Party)


def test_no_venue_is_rejected() -> None:
    with pytest.raises(RecordRejected, match="no venue"):
        prepare_contact_bookings(make_booking(venue=None), OPTS)


def test_status_source_type_and_value_field_are_configurable() -> None:
    opts = ContactBookingsOptions.model_validate(
        {
            "status_map": {"no_show": 580},
            "source_map": {"Box Office": 9},
            "type_map": {"Birthday": 13},
            "value_field": "data.element_05",
        }
    )
    record = make_booking(status=BookingStatus.NO_SHOW, source="BOX OFFICE")
    booking = prepare_contact_bookings(record, opts)["booking"]
    assert booking["stage_value"] == 580 and booking["source_id"] == 9
    assert booking["data"] == {"element_05": "45.00"} and "deposit_paid" not in booking
    assert opts.status_map["cancelled"] == 550  # a partial map keeps the other defaults


def test_default_status_map() -> None:
    stages = {
        s: prepare_contact_bookings(make_booking(status=s), OPTS)["booking"]["stage_value"]
        for s in BookingStatus
    }
    assert stages == {
        BookingStatus.BOOKED: 1,
        BookingStatus.ATTENDED: 100,
        BookingStatus.CANCELLED: 550,
        BookingStatus.NO_SHOW: 560,
    }


@pytest.mark.parametrize(
    "bad", [{"value_field": "value"}, {"status_map": {"lost": 1}}, {"match": []}, {"unknown": 1}]
)
def test_bad_options_are_config_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ContactBookingsOptions.model_validate(bad)


def test_datetimes_are_utc() -> None:
    oslo = timezone(timedelta(hours=2))
    assert airship_datetime(datetime(2024, 6, 1, 21, 0, tzinfo=oslo)) == "2024-06-01 19:00:00"
    assert airship_datetime(datetime(2024, 6, 1, 19, 0)) == "2024-06-01 19:00:00"


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 10, 5, 12, 0, 0, 999_999, tzinfo=UTC),
        datetime(2026, 3, 29, 0, 59, 59, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 12, 31, 23, 59, 59, 1),
        datetime(999, 1, 1, 0, 0, tzinfo=UTC),
        datetime(1, 1, 1, 0, 0),
    ],
)
def test_datetimes_keep_the_text_hashed_so_far(value: datetime) -> None:
    # The format is in every acknowledged booking's hash: any change re-sends every booking.
    utc = value.astimezone(UTC) if value.tzinfo is not None else value
    assert airship_datetime(value) == utc.strftime("%Y-%m-%d %H:%M:%S")


def test_deterministic_for_hashing() -> None:
    opts = ContactBookingsOptions.model_validate({"groups": {"event_tags": ["Golf", "Bowling"]}})
    first = prepare_contact_bookings(make_booking(tags=("Golf", "Bowling")), opts)
    second = prepare_contact_bookings(make_booking(tags=("Bowling", "Golf")), opts)
    assert stable_hash(first) == stable_hash(second)
