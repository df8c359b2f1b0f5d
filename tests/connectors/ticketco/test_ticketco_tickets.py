"""The TicketCo ``tickets`` stream against its sandbox: one ticket per item gross, with its
event, compared field by field with what the API serves (read over plain HTTP)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ticketbridge.connectors.base import Page, ReadRequest, Window
from ticketbridge.connectors.ticketco import BookingsOptions, TicketcoSource
from ticketbridge.errors import MappingError
from ticketbridge.model import Ticket

from .support import Harness, window

VENUES = ["Riverside Hall", "Harbour Stage"]


async def read_tickets(
    source: TicketcoSource,
    *,
    win: Window | None = None,
    venues: list[str] | None = None,
    position: dict[str, Any] | None = None,
) -> list[Page]:
    request = ReadRequest(
        stream="tickets",
        options=BookingsOptions(venues=venues or []),
        window=win,
        position=position,
        page_size=25,
    )
    return [page async for page in source.read(request)]


async def served(h: Harness, win: Window) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """item id -> (event, item) for every item gross of an event starting in ``win``."""
    out: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for event in await h.events():
        if not win.start <= datetime.fromisoformat(event["start_at"]) < win.end:
            continue
        for item in await h.items(event["id"]):
            out[str(item["id"])] = (event, item)
    return out


def tickets_of(pages: list[Page]) -> dict[str, Ticket]:
    out: dict[str, Ticket] = {}
    for page in pages:
        for record in page.records:
            assert record.kind == "ticket" and isinstance(record.data, Ticket)
            assert record.key == f"ticket:ticketco:{record.data.number}"
            assert record.key not in out, f"{record.key} emitted twice"
            out[record.data.number] = record.data
    return out


def expected_status(item: dict[str, Any]) -> str:
    if item["status"] != "sold":
        return "cancelled"
    return "attended" if item["checked_in_at"] else "valid"


async def test_every_item_gross_is_one_ticket_with_the_fields_the_api_serves(
    harness: Harness,
) -> None:
    win = window(-3, 10)  # yesterday's events are checked in; later ones are not
    truth = await served(harness, win)
    pages = await read_tickets(harness.source(), win=win)
    assert not [f for p in pages for f in p.failures]
    got = tickets_of(pages)
    assert set(got) == set(truth)
    statuses = set()
    for number, ticket in got.items():
        event, item = truth[number]
        ev = ticket.event
        assert ev is not None and ev.venue is not None
        assert ev.external_id == str(event["id"]) and ev.name == event["title"]
        assert ev.venue.name == " ".join(event["location_name"].split())
        assert ev.venue.address == event["street_address"]
        assert ev.starts_at == datetime.fromisoformat(event["start_at"])
        assert ev.doors_open_at == datetime.fromisoformat(event["doors_open_at"])
        assert ev.ends_at == datetime.fromisoformat(event["end_at"])
        assert ticket.holder is not None
        assert (ticket.holder.first_name, ticket.holder.last_name) == (
            item["holder_first_name"],
            item["holder_last_name"],
        )
        assert (ticket.seat, ticket.row, ticket.section, ticket.gate) == (
            item.get("seat_name"),
            item.get("row_name"),
            item["section_name"],
            item.get("gate_name"),
        )
        assert ticket.type == item["item_type_title"]
        assert ticket.barcode == item["barcode"]
        assert ticket.attributes["confirmation_code"] == str(item["ref_number"])
        assert ticket.price is not None and ticket.price.currency == item["currency"]
        assert ticket.price.as_decimal() == Decimal(item["price"])
        assert ticket.status == expected_status(item)
        statuses.add(ticket.status)
    assert statuses == {"valid", "cancelled", "attended"}, "the seed has each status"
    assert any(t.seat for t in got.values()) and any(t.seat is None for t in got.values())
    assert any(t.gate for t in got.values())


async def test_missing_fields_leave_the_pass_without_them_not_a_failure(
    harness: Harness,
) -> None:
    dropped = ("seat_name", "row_name", "gate_name", "barcode", "price", "holder_first_name")

    def strip(body: Any) -> None:
        for item in body["item_grosses"]:
            for name in dropped:
                item.pop(name, None)

    source = harness.source(transport=harness.rewriting("/item_grosses", strip))
    pages = await read_tickets(source, win=window(0, 4))
    assert not [f for p in pages for f in p.failures]
    got = tickets_of(pages)
    assert got
    assert all(
        t.seat is None and t.row is None and t.gate is None and t.barcode is None
        for t in got.values()
    )
    assert all(t.price is None for t in got.values())
    assert all(t.holder is not None and t.holder.first_name is None for t in got.values())


async def test_a_bad_item_fails_alone_under_its_ticket_key_and_remaps_when_fixed(
    harness: Harness,
) -> None:
    win = window(0, 4)
    first_id: list[Any] = []

    def spoil(body: Any) -> None:
        for item in body["item_grosses"]:
            if not first_id:
                first_id.append(item["id"])
            if item["id"] == first_id[0]:
                item["checked_in_at"] = "not a date"

    source = harness.source(transport=harness.rewriting("/item_grosses", spoil))
    pages = await read_tickets(source, win=win)
    [failed] = [f for p in pages for f in p.failures]
    assert failed.key == f"ticket:ticketco:{first_id[0]}"
    assert "item.checked_in_at" in failed.reason
    clean = tickets_of(await read_tickets(harness.source(), win=win))
    assert len(tickets_of(pages)) == len(clean) - 1, "the rest of its booking is still read"

    spec = harness.source().streams()[1]
    with pytest.raises(MappingError, match="checked_in_at"):
        harness.source().remap("tickets", failed.raw or {}, spec.options())
    raw = dict(failed.raw or {})
    fixed = {**raw, "item": {**raw["item"], "checked_in_at": None}}
    again = harness.source().remap("tickets", fixed, spec.options())
    assert again.key == failed.key and again.data == clean[str(first_id[0])]


async def test_tickets_resume_after_an_event_like_bookings(harness: Harness) -> None:
    win = window(0, 6)
    pages = await read_tickets(harness.source(), win=win)
    at = next(i for i, p in enumerate(pages[:-2]) if p.position is not None)
    later = [r.key for p in pages[at + 1 :] for r in p.records]
    resumed = await read_tickets(harness.source(), win=win, position=pages[at].position)
    assert [r.key for p in resumed for r in p.records] == later


async def test_sandbox_ops_change_one_seat_and_one_event_start(harness: Harness) -> None:
    win = window(0, 4)
    truth = await served(harness, win)
    number, (event, item) = next(iter(truth.items()))
    changed = await harness.admin(
        "mutate", {"op": "item", "item_id": int(number), "seat_name": "99", "row_name": "Z"}
    )
    assert changed["seat_name"] == "99"
    moved = await harness.admin(
        "mutate", {"op": "event_start", "event_id": event["id"], "minutes": 45}
    )
    got = tickets_of(await read_tickets(harness.source(), win=win))
    assert (got[number].seat, got[number].row) == ("99", "Z")
    new_start = datetime.fromisoformat(event["start_at"]) + timedelta(minutes=45)
    assert datetime.fromisoformat(moved["start_at"]) == new_start
    of_event = [t for t in got.values() if t.event and t.event.external_id == str(event["id"])]
    assert of_event and all(t.event and t.event.starts_at == new_start for t in of_event)
    others = [t for n, t in got.items() if n != number]
    assert all(t.seat == (truth[n][1].get("seat_name")) for n, t in got.items() if n != number)
    assert others
    await harness.admin("reset", {})
    again = tickets_of(await read_tickets(harness.source(), win=win))
    assert again[number].seat == item.get("seat_name")
