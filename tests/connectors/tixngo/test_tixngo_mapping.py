"""Pure mapping of one TIXNGO update to a canonical ticket (no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ticketbridge.connectors.tixngo.mapping import key_of, map_update
from ticketbridge.errors import MappingError
from ticketbridge.model import Event, Person, Venue

BASE: dict[str, Any] = {
    "ticketId": "S360-0001",
    "status": "TRANSFERRED",
    "previousStatus": "PENDING_TRANSFER",
    "updatedAt": "2024-05-01T10:00:00Z",
    "owner": {"id": "u123", "email": "a@B.CH", "firstName": "A", "lastName": "B"},
    "holder": {"email": "c@d.ch", "firstName": "C", "lastName": "D"},
}


def test_the_documented_update_maps_field_by_field() -> None:
    ticket = map_update(BASE, "lifecycle")
    assert ticket.number == "S360-0001"
    assert (ticket.mobile_status, ticket.mobile_status_mode) == ("TRANSFERRED", "lifecycle")
    assert ticket.owner == Person(external_id="u123", email="a@b.ch", first_name="A", last_name="B")
    assert ticket.holder == Person(email="c@d.ch", first_name="C", last_name="D")
    assert ticket.assignee is None and ticket.event is None and ticket.status is None
    assert ticket.updated_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert ticket.attributes == {"previous_status": "PENDING_TRANSFER"}
    assert key_of(BASE) == "ticket:tixngo:S360-0001"


def test_the_holder_is_the_named_spectator_whatever_the_feed_calls_them() -> None:
    assignee = {"email": "e@f.ch", "firstName": "E", "lastName": "F"}
    no_holder = {k: v for k, v in BASE.items() if k != "holder"}
    as_assignee = map_update({**no_holder, "assignee": assignee}, "lifecycle")
    assert (
        as_assignee.holder
        == as_assignee.assignee
        == Person(email="e@f.ch", first_name="E", last_name="F")
    )
    as_spectator = map_update({**no_holder, "spectatorDetails": assignee}, "lifecycle")
    assert as_spectator.holder is not None and as_spectator.assignee is None
    nobody = map_update({**no_holder, "owner": None}, "lifecycle")
    assert nobody.holder is None and nobody.owner is None


def test_status_case_and_numbers_as_ids_are_tolerated() -> None:
    ticket = map_update({**BASE, "status": " controlled ", "ticketId": 4711}, "lifecycle")
    assert (ticket.number, ticket.mobile_status) == ("4711", "CONTROLLED")
    assert key_of({**BASE, "ticketId": 4711}) == "ticket:tixngo:4711"


def test_an_event_on_the_update_becomes_the_tickets_event() -> None:
    event = {
        "id": "EVT1",
        "name": "Match A",
        "startTime": "2024-05-01T19:00:00+02:00",
        "address": {"site": "Stadium", "city": "Geneva", "countryCode": "CH", "zip": "1200"},
    }
    ticket = map_update({**BASE, "event": event}, "lifecycle")
    assert ticket.event == Event(
        external_id="EVT1",
        name="Match A",
        starts_at=datetime(2024, 5, 1, 17, tzinfo=UTC),
        venue=Venue(name="Stadium", address="1200, Geneva, CH"),
    )


@pytest.mark.parametrize(
    ("change", "mode", "reason"),
    [
        ({"status": None}, "lifecycle", "status: missing"),
        ({"status": "SOLD"}, "lifecycle", "status: 'SOLD' is not a TIXNGO lifecycle-mode status"),
        (
            {"status": "DOWNLOADED"},
            "history",
            "status: 'DOWNLOADED' is not a TIXNGO history-mode status (it is a lifecycle-mode "
            "status: is status_mode right?)",
        ),
        ({"updatedAt": "1.5.2024"}, "lifecycle", "updatedAt: not an RFC 3339 time: '1.5.2024'"),
        ({"holder": {"email": "c@"}}, "lifecycle", "holder.email: invalid email 'c@'"),
        ({"ticketId": None}, "lifecycle", "ticketId: missing"),
    ],
)
def test_an_update_that_is_no_ticket_names_the_field(
    change: dict[str, Any], mode: Any, reason: str
) -> None:
    raw = {**BASE, **change}
    with pytest.raises(MappingError) as raised:
        map_update(raw, mode)
    assert raised.value.reason.startswith(reason)
    assert raised.value.record_key == key_of(raw)
