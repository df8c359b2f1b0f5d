"""Products, availability, reservation, booking and cancellation, against the ACME sandbox."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ticketbridge.connectors.acme import sandbox_mapping

from .support import ENTRY, TOUR, Clock, Harness, supplier_config

SLOT_KEY = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")


def _orders(h: Harness) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = h.sandbox.store.dump()["orders"]
    return found


async def test_products_are_the_mapped_templates_only(harness: Harness) -> None:
    products = (await harness.http.get("/v2/products")).json()
    assert products == [
        {
            "id": ENTRY,
            "name": "Museum entry",
            "description": "All-day entry to the museum.",
            "use_timeslots": False,
            "is_refundable": True,
            "provides_pricing": True,
            "cutoff_time": 0,
        },
        {
            "id": TOUR,
            "name": "Highlights tour",
            "description": "A guided hour through the collection.",
            "use_timeslots": True,
            "is_refundable": True,
            "provides_pricing": True,
            "cutoff_time": 0,
        },
    ]  # "Late Opening" exists in ACME but is not mapped: not offered


async def test_a_mapped_template_missing_from_acme_is_not_offered(sqlite_url: str) -> None:
    mapping = sandbox_mapping(42)
    mapping["products"]["ghost"] = {**mapping["products"][TOUR], "event_template_id": "nope"}
    h = Harness(sqlite_url, config=supplier_config(mappings={"sandbox": mapping}))
    try:
        ids = [p["id"] for p in (await h.http.get("/v2/products")).json()]
        assert ids == [ENTRY, TOUR]
    finally:
        await h.aclose()


async def test_timeslots_are_inferred_when_not_configured(sqlite_url: str) -> None:
    mapping = sandbox_mapping(42)
    for product in mapping["products"].values():
        product.pop("use_timeslots")
    h = Harness(sqlite_url, config=supplier_config(mappings={"sandbox": mapping}))
    try:
        found = {p["id"]: p["use_timeslots"] for p in (await h.http.get("/v2/products")).json()}
        assert found == {ENTRY: False, TOUR: True}
    finally:
        await h.aclose()


async def test_availability_with_and_without_timeslots(harness: Harness) -> None:
    today = datetime.now(UTC).date()
    tour = await harness.availability(TOUR, today, days=2)
    assert tour and all(SLOT_KEY.match(k) for k in tour)
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert [k[11:] for k in tour if k.startswith(tomorrow)] == [
        "10:00",
        "11:30",
        "13:00",
        "14:30",
        "16:00",
    ]
    slot = tour[f"{tomorrow}T10:00"]
    instance = harness.sandbox.store.instances[  # type: ignore[attr-defined]
        harness.instance_of(TOUR, f"{tomorrow}T10:00")
    ]
    left = instance.capacity - instance.sold
    assert slot == {
        "available_tickets": left,
        "variants": [
            {
                "id": "adult",
                "name": "Adult",
                "available_tickets": left,
                "price": {"amount": "18.00", "currency": "EUR"},
            },
            {
                "id": "child",
                "name": "Child",
                "available_tickets": left,
                "price": {"amount": "9.00", "currency": "EUR"},
            },
            {
                "id": "ota-adult",
                "name": "Adult (online)",
                "available_tickets": left,
                "price": {"amount": "16.50", "currency": "EUR"},
            },
        ],
    }
    entry = await harness.availability(ENTRY, today + timedelta(days=1), days=2)
    assert list(entry) == [f"{today + timedelta(days=d)}T00:00" for d in (1, 2, 3)]
    assert entry[f"{tomorrow}T00:00"]["variants"][0]["price"]["amount"] == "25.00"


async def test_past_days_answer_nothing_and_huge_ranges_are_cut(harness: Harness) -> None:
    today = datetime.now(UTC).date()
    assert await harness.availability(ENTRY, today - timedelta(days=5), days=2) == {}
    past_and_today = await harness.availability(ENTRY, today - timedelta(days=1), days=1)
    assert all(not k.startswith((today - timedelta(days=1)).isoformat()) for k in past_and_today)
    assert len(await harness.availability(ENTRY, today, days=3650)) <= 60
    assert await harness.availability(ENTRY, today + timedelta(days=200), days=3) == {}


async def test_a_sold_out_slot_shows_zero_and_no_variants(harness: Harness) -> None:
    slot, _ = await harness.open_slot(TOUR)
    instance = harness.instance_of(TOUR, slot)
    harness.sandbox.store.mutate({"events": [{"id": instance, "soldQuantity": 20}]})
    found = await harness.availability(TOUR, datetime.fromisoformat(slot).date(), days=0)
    assert found[slot] == {"available_tickets": 0, "variants": []}


async def test_live_reservations_hold_tickets_and_expired_ones_do_not(sqlite_url: str) -> None:
    clock = Clock()
    h = Harness(sqlite_url, clock=clock)
    try:
        slot, before = await h.open_slot(TOUR)
        day = datetime.fromisoformat(slot).date()
        answer = await h.reserve(TOUR, slot, adult=2, child=1)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"reservation_id", "expires_at", "unit_price"}
        expires = datetime.fromisoformat(body["expires_at"])
        assert expires.utcoffset() == timedelta(0)
        assert expires - clock.now >= timedelta(minutes=14, seconds=59)
        assert body["unit_price"] == {
            "adult": {"amount": "18.00", "currency": "EUR"},
            "child": {"amount": "9.00", "currency": "EUR"},
        }
        held = (await h.availability(TOUR, day, days=0))[slot]
        assert held["available_tickets"] == before["available_tickets"] - 3
        clock.advance(minutes=16)
        released = (await h.availability(TOUR, day, days=0))[slot]
        assert released["available_tickets"] == before["available_tickets"]
    finally:
        await h.aclose()


async def test_a_retried_booking_is_the_same_booking_and_one_acme_order(
    harness: Harness,
) -> None:
    slot, _ = await harness.open_slot(TOUR)
    instance = harness.instance_of(TOUR, slot)
    sold = harness.sandbox.store.instances[instance].sold  # type: ignore[attr-defined]
    reservation = (await harness.reserve(TOUR, slot, adult=2, ota_adult=1)).json()
    first = await harness.book(reservation["reservation_id"])
    assert first.status_code == 200, first.text
    booking = first.json()
    assert booking["barcode_format"] == "QRCODE" and booking["barcode_scope"] == "ticket"
    assert set(booking) == {"booking_id", "barcode_format", "barcode_scope", "tickets"}
    codes = [c for cs in booking["tickets"].values() for c in cs]
    assert {k: len(v) for k, v in booking["tickets"].items()} == {"adult": 2, "ota-adult": 1}
    assert len(set(codes)) == 3

    retries = await asyncio.gather(*(harness.book(reservation["reservation_id"]) for _ in range(3)))
    assert all(r.status_code == 200 and r.json() == booking for r in retries)
    orders = _orders(harness)
    assert len(orders) == 1 and orders[0]["id"] == booking["booking_id"]
    assert first.headers["x-acme-order-id"] == booking["booking_id"]
    assert harness.sandbox.stats.as_dict()["writes"] == {
        f"order:{booking['booking_id']}": {"create": 1}
    }
    order = orders[0]
    assert order["organizationId"] == sandbox_mapping()["organization_id"]
    assert [(i["eventId"], i["quantity"]) for i in order["items"]] == [(instance, 2), (instance, 1)]
    assert "Tiqets order 123456789012" in order["notes"]
    assert harness.sandbox.store.instances[instance].sold == sold + 3  # type: ignore[attr-defined]


async def test_an_expired_reservation_cannot_be_booked(sqlite_url: str) -> None:
    clock = Clock()
    h = Harness(sqlite_url, clock=clock)
    try:
        slot, _ = await h.open_slot(ENTRY)
        reservation = (await h.reserve(ENTRY, slot, adult=1)).json()
        clock.advance(minutes=17)
        answer = await h.book(reservation["reservation_id"])
        assert answer.status_code == 400
        assert answer.json()["error_code"] == 3001
        assert answer.json()["error"] == "Reservation expired"
        assert answer.json()["message"] == "Your reservation has expired 2 minutes ago"
        assert _orders(h) == []
    finally:
        await h.aclose()


async def test_set_expiry_ends_a_hold_early(harness: Harness) -> None:
    slot, _ = await harness.open_slot(ENTRY)
    reservation = (await harness.reserve(ENTRY, slot, adult=1)).json()
    past = datetime.now(UTC) - timedelta(minutes=1)
    assert harness.service.store.set_expiry("sandbox", reservation["reservation_id"], past)
    assert (await harness.book(reservation["reservation_id"])).json()["error_code"] == 3001


async def test_cancellation_cancels_in_acme_and_a_second_one_is_3003(harness: Harness) -> None:
    slot, _ = await harness.open_slot(TOUR)
    instance = harness.instance_of(TOUR, slot)
    sold = harness.sandbox.store.instances[instance].sold  # type: ignore[attr-defined]
    reservation = (await harness.reserve(TOUR, slot, adult=2, child=1)).json()
    booking = (await harness.book(reservation["reservation_id"])).json()
    cancelled = await harness.http.delete(f"/v2/booking/{booking['booking_id']}")
    assert cancelled.status_code == 204 and cancelled.content == b""
    assert cancelled.headers["x-acme-cancellation"] == "method=order_update;items=2;amount=45.00"
    order = _orders(harness)[0]
    assert [i["quantity"] for i in order["items"]] == [0, 0]
    assert order["refundAmount"] == "45.00" and order["refunds"][0]["source"] == "update"
    assert harness.sandbox.store.instances[instance].sold == sold  # type: ignore[attr-defined]
    writes = harness.sandbox.stats.as_dict()["writes"]
    assert writes[f"order:{booking['booking_id']}"] == {"create": 1, "update": 1}

    again = await harness.http.delete(f"/v2/booking/{booking['booking_id']}")
    assert again.status_code == 400
    assert again.json() == {
        "error_code": 3003,
        "error": "Already cancelled",
        "message": f"The booking with ID {booking['booking_id']} was already cancelled",
    }
    # A cancelled booking is not booked again (issue 20.8: it answered 200 with the cancelled
    # booking): the spec's "incorrect reservation", and ACME keeps its one order.
    rebooked = await harness.book(reservation["reservation_id"])
    assert rebooked.status_code == 400
    assert rebooked.json()["error_code"] == 3002
    assert len(_orders(harness)) == 1


async def test_cancellation_by_refund(sqlite_url: str) -> None:
    h = Harness(sqlite_url, config=supplier_config(cancellation="refund"))
    try:
        slot, _ = await h.open_slot(ENTRY)
        reservation = (await h.reserve(ENTRY, slot, adult=1, child=2)).json()
        booking = (await h.book(reservation["reservation_id"])).json()
        cancelled = await h.http.delete(f"/v2/booking/{booking['booking_id']}")
        assert cancelled.status_code == 204
        refund = _orders(h)[0]["refunds"]
        assert len(refund) == 1 and refund[0]["source"] == "refund"
        assert refund[0]["amount"] == "50.00"
        assert (
            cancelled.headers["x-acme-cancellation"]
            == f"method=refund;refund_id={refund[0]['id']};amount=50.00"
        )
        assert h.sandbox.stats.as_dict()["writes"][f"refund:{refund[0]['id']}"] == {"create": 1}
        second = await h.http.delete(f"/v2/booking/{booking['booking_id']}")
        assert second.json()["error_code"] == 3003
    finally:
        await h.aclose()


async def test_no_cancellation_after_the_visit_or_for_a_non_refundable_product(
    sqlite_url: str,
) -> None:
    clock = Clock()
    mapping = sandbox_mapping(42)
    mapping["products"][ENTRY]["is_refundable"] = False
    h = Harness(sqlite_url, clock=clock, config=supplier_config(mappings={"sandbox": mapping}))
    try:
        slot, _ = await h.open_slot(TOUR)
        booking = (
            await h.book((await h.reserve(TOUR, slot, adult=1)).json()["reservation_id"])
        ).json()
        entry_slot, _ = await h.open_slot(ENTRY)
        entry = (
            await h.book((await h.reserve(ENTRY, entry_slot, adult=1)).json()["reservation_id"])
        ).json()
        refused = await h.http.delete(f"/v2/booking/{entry['booking_id']}")
        assert refused.json()["error_code"] == 3004
        assert refused.json()["error"] == "Cancellation not possible"
        clock.now = datetime.fromisoformat(slot).replace(tzinfo=UTC) + timedelta(minutes=1)
        late = await h.http.delete(f"/v2/booking/{booking['booking_id']}")
        assert late.json()["error_code"] == 2009 and late.json()["error"] == "Incorrect date"
        assert all(i["quantity"] == 1 for o in _orders(h) for i in o["items"])
    finally:
        await h.aclose()
