"""Mapping is pure and puts every documented field where Wallet expects it."""

from __future__ import annotations

import copy

import pytest

from ticketbridge.connectors.airship_wallet import EventTicketsOptions
from ticketbridge.connectors.airship_wallet.mapping import (
    micros,
    prepare_event_tickets,
    with_change_messages,
)
from ticketbridge.errors import RecordRejected
from ticketbridge.model import Money, Ticket

from .support import make_event, make_ticket

OPTS = EventTicketsOptions()


def test_prepare_is_pure_and_split_by_entity() -> None:
    record = make_ticket("T1", confirmation_code="CONF-9")
    before = copy.deepcopy(record.data)
    first = prepare_event_tickets(record, OPTS)
    assert first == prepare_event_tickets(record, OPTS)
    assert record.data == before, "prepare must not change the record"
    assert set(first) == {"event", "pass"}
    # The event's fields are shared by every pass; none of them sit with the ticket's own.
    assert not set(first["event"]) & set(first["pass"])


def test_event_fields_are_labelled_as_in_the_schema() -> None:
    event = prepare_event_tickets(make_ticket(), OPTS)["event"]
    assert event == {
        "eventName": {"label": "Event", "value": "New Year Gala"},
        "venueTitle": {"label": "Venue", "value": "Riverside Hall"},
        "venueAddress": {"label": "Address", "value": "1 High Street, Leeds"},
        "doorsOpen": {"label": "Doors Open", "value": "2026-12-31T18:30:00Z"},
        "startTime": {"label": "Start Time", "value": "2026-12-31T19:30:00Z"},
        "endTime": {"label": "End Time", "value": "2026-12-31T23:30:00Z"},
    }
    both = EventTicketsOptions(venue_fields=["venueTitle", "venueName"], time_format="naive_utc")
    event = prepare_event_tickets(make_ticket(), both)["event"]
    assert event["venueName"]["value"] == event["venueTitle"]["value"] == "Riverside Hall"
    assert event["startTime"]["value"] == "2026-12-31T19:30:00"


def test_attendee_fields_with_face_value_in_micros_and_gbp() -> None:
    fields = prepare_event_tickets(make_ticket("T7", confirmation_code="CONF-9"), OPTS)["pass"]
    assert fields == {
        "ticketHolderName": {"label": "Name", "value": "Jane Doe"},
        "seat": {"label": "Seat", "value": "A12"},
        "row": {"label": "Row", "value": "A"},
        "section": {"label": "Section", "value": "Stalls"},
        "gate": {"label": "Gate", "value": "3"},
        "ticketType": {"label": "Type", "value": "Adult"},
        "ticketNumber": {"label": "Ticket", "value": "T7"},
        "confirmationCode": {"label": "Confirmation", "value": "CONF-9"},
        "status": {"label": "Status", "value": "Valid"},
        "barcode_value": {"value": "BCT7"},
        "barcodeAltText": {"value": "BCT7"},
        "faceValue": {"label": "Price", "currencyCode": "GBP", "micros": 25_000_000},
    }


def test_micros_follow_the_currency_exponent() -> None:
    assert micros(2500, "GBP") == 25_000_000
    assert micros(1500, "JPY") == 1_500_000_000  # yen have no minor unit
    record = make_ticket(price=Money(minor=1500, currency="JPY"))
    assert prepare_event_tickets(record, OPTS)["pass"]["faceValue"]["micros"] == 1_500_000_000


def test_the_seed_pages_gpb_is_not_a_currency() -> None:
    assert "GBP" in OPTS.currencies and "GPB" not in OPTS.currencies
    with pytest.raises(ValueError, match="GPB"):
        Money(minor=100, currency="GPB")


def test_missing_fields_are_absent() -> None:
    bare = make_ticket(
        "T2",
        seat=None,
        row=None,
        section=None,
        gate=None,
        status=None,
        holder=None,
        barcode="",
        event=make_event(starts=None, address=None),
    )
    bare.data = Ticket.model_validate({**bare.data.model_dump(), "price": None, "type": None})
    mapped = prepare_event_tickets(bare, OPTS)
    assert mapped["pass"] == {"ticketNumber": {"label": "Ticket", "value": "T2"}}
    assert set(mapped["event"]) == {"eventName", "venueTitle"}


def test_cancelled_ticket_says_so_and_its_barcode_is_voided() -> None:
    fields = prepare_event_tickets(make_ticket(status="cancelled"), OPTS)["pass"]
    assert fields["status"]["value"] == "Cancelled"
    assert fields["barcode_value"] == {"value": "VOID"}
    assert fields["barcodeAltText"] == {"value": "CANCELLED"}
    custom = EventTicketsOptions(voided_barcode="X", status_values={"cancelled": "Void"})
    fields = prepare_event_tickets(make_ticket(status="Cancelled"), custom)["pass"]
    assert fields["barcode_value"] == {"value": "X"} and fields["status"]["value"] == "Void"


def test_refusals_name_the_record_and_the_field() -> None:
    with pytest.raises(RecordRejected, match=r"ticket:test:T3: .*faceValue currency DKK"):
        prepare_event_tickets(make_ticket("T3", price=Money(minor=100, currency="DKK")), OPTS)
    with pytest.raises(RecordRejected, match=r"ticket:test:T4: .*eventName"):
        prepare_event_tickets(make_ticket("T4", no_event=True), OPTS)


def test_a_currency_wallet_lacks_can_leave_the_price_out_instead() -> None:
    omit = EventTicketsOptions(other_currencies="omit")
    fields = prepare_event_tickets(make_ticket(price=Money(minor=100, currency="DKK")), omit)
    assert "faceValue" not in fields["pass"] and fields["pass"]["seat"]["value"] == "A12"
    gbp = prepare_event_tickets(make_ticket(price=Money(minor=2500, currency="GBP")), omit)
    assert gbp["pass"]["faceValue"]["micros"] == 25_000_000


def test_change_messages_are_added_for_updates_only() -> None:
    fields = prepare_event_tickets(make_ticket(), OPTS)["pass"]
    assert "changeMessage" not in fields["seat"]
    sent = with_change_messages(fields, OPTS)
    assert sent["seat"]["changeMessage"] == "Seat changed to %@"
    assert "changeMessage" not in sent["ticketNumber"]
