"""The benchmark's plain-Python mapping sends exactly what ticketbridge's connector sends.

dlt and the raw ceiling use ``bench.airship_body``; if its bodies drifted from ticketbridge's,
the destination would not do the same work for every contender and the comparison would lie.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bench import airship_body
from ticketbridge.connectors.airship_crm.config import ContactBookingsOptions
from ticketbridge.connectors.airship_crm.mapping import (
    booking_body,
    contact_body,
    identity_of,
    prepare_contact_bookings,
)
from ticketbridge.connectors.base import Record
from ticketbridge.connectors.ticketco.mapping import MappingContext, map_booking, map_event
from ticketbridge.connectors.ticketco.sandbox import ZONE, TicketcoStore
from ticketbridge.errors import MappingError, RecordRejected

UNITS = {"riverside hall": 1001, "bowl arena": 1002, "harbour stage": 1003}
OPTIONS = ContactBookingsOptions.model_validate(
    {"groups": {"per_venue": "Booking", "event_tags": ["Golf", "Bowling"]}}
)


def _ticketbridge_body(
    event: dict[str, Any], items: list[dict[str, Any]], now: datetime
) -> dict[str, Any] | None:
    ctx = MappingContext(now=now, zone=ZONE)
    try:
        booking = map_booking(event, items, ctx, prepared=map_event(event, ZONE, "e"))
        record = Record(
            key=f"booking:ticketco:{items[0]['ref_number']}", kind="booking", data=booking
        )
        fields = prepare_contact_bookings(record, OPTIONS)
    except (MappingError, RecordRejected):
        return None
    unit = UNITS[airship_body.venue_of(event).casefold()]
    body = contact_body(
        dict(fields["contact"]), identity_of(fields["contact"], OPTIONS.match), unit, OPTIONS
    )
    body["bookings"] = [booking_body(dict(fields["booking"]), unit)]
    return {"account_id": 1, **body}


def test_bodies_match_ticketbridge_on_sandbox_data() -> None:
    store = TicketcoStore(
        seed=3, records=3000, today=datetime(2026, 3, 1, tzinfo=UTC), page_size=100
    )
    store.mutate(
        {
            "share": 0.05,
            "cancel_share": 0.03,
            "no_shows": True,
            "opt_in_flip_share": 0.1,
            "malformed_share": 0.01,
            "seed": 2,
        }
    )
    now = datetime.now(UTC)
    compared = unusable = 0
    for ev in store.events:
        event = store.event_json(ev)
        items = store.item_page([ev], 1, 100_000, pii=True)
        for ref, body in airship_body.bodies(event, items, UNITS, now):
            group = [i for i in items if i["ref_number"] == ref]
            expected = _ticketbridge_body(event, group, now)
            assert body == expected, ref
            compared += 1
            unusable += body is None
    assert compared == 3000
    assert 0 < unusable < 300  # bad e-mails exist, and are refused by both
