"""The Ticketmaster ``tickets`` stream (issue 15, "Sources"): each purchased ticket a canonical
ticket, compared field by field with the orders the sandbox holds (not read through the
connector)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ticketbridge.connectors.base import Page, ReadRequest
from ticketbridge.connectors.ticketmaster import TicketmasterSource
from ticketbridge.connectors.ticketmaster.config import TicketsOptions
from ticketbridge.connectors.ticketmaster.mapping import (
    MappingContext,
    map_order_ticket,
    ticket_status,
)
from ticketbridge.connectors.ticketmaster.sandbox_store import parse
from ticketbridge.errors import MappingError
from ticketbridge.model import Ticket

from .support import NOW, Harness, failures, read_pages, records

CTX = MappingContext(market="DK", now=NOW)


async def read_tickets(
    source: TicketmasterSource,
    *,
    since: datetime | None = None,
    position: dict[str, Any] | None = None,
    page_size: int | None = None,
    holders: bool = True,
) -> list[Page]:
    request = ReadRequest(
        stream="tickets",
        options=TicketsOptions(holders=holders),
        since=since,
        position=position,
        page_size=page_size,
    )
    return [page async for page in source.read(request)]


def tickets_of(pages: list[Page]) -> dict[str, Ticket]:
    out: dict[str, Ticket] = {}
    for record in records(pages):
        assert record.kind == "ticket" and isinstance(record.data, Ticket)
        assert record.key == f"ticket:ticketmaster:DK:{record.data.number}"
        assert record.key not in {f"ticket:ticketmaster:DK:{n}" for n in out}, "emitted twice"
        assert record.cursor == record.data.updated_at
        out[record.data.number] = record.data
    return out


def served(h: Harness) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """ticket id -> (order, ticket) for every ticket the sandbox holds."""
    return {t["id"]: (o, t) for o in h.store.orders.values() for t in o["tickets"]}


async def test_every_purchased_ticket_is_one_ticket_with_the_fields_the_api_serves(
    harness: Harness,
) -> None:
    src = harness.source()
    pages = await read_tickets(src)
    assert failures(pages) == []
    got = tickets_of(pages)
    truth = served(harness)
    assert set(got) == set(truth) and len(truth) > 300
    statuses = set()
    for number, (order, raw) in truth.items():
        ticket = got[number]
        customer = harness.store.customers[order["customer_id"]]
        assert ticket.holder is not None
        assert (ticket.holder.first_name, ticket.holder.last_name) == (
            customer["first_name"],
            customer["last_name"],
        )
        assert (ticket.seat, ticket.row, ticket.section, ticket.gate) == (
            raw["seat"],
            raw["row"],
            raw["section"],
            raw.get("gate"),
        )
        assert (ticket.type, ticket.barcode) == (raw["type"], raw["barcode"])
        assert ticket.price is not None and ticket.price.currency == "DKK"
        assert ticket.price.as_decimal() == Decimal(str(raw["price"]))
        assert ticket.attributes["confirmation_code"] == order["id"]
        assert ticket.updated_at == parse(order["updated_at"])
        expected = "valid" if order["status"] == "COMPLETED" else "cancelled"
        assert ticket.status == expected
        statuses.add(ticket.status)
        event = order["event"]
        assert ticket.event is not None
        assert (ticket.event.external_id, ticket.event.name) == (event["id"], event["name"])
        assert ticket.event.starts_at == parse(event["dates"]["start"]["dateTime"])
        assert ticket.event.venue is not None
        assert ticket.event.venue.name == event["venue"]["name"]
    assert statuses == {"valid", "cancelled"}
    assert any(t.gate for t in got.values()) and any(t.gate is None for t in got.values())
    assert any(t.seat is None for t in got.values()), "standing tickets have no seat"
    buyers = {str(o["customer_id"]) for o in harness.store.orders.values()}
    assert src.customer_lookups == len(buyers), "each buyer read once"


async def test_holders_off_reads_no_customer(harness: Harness) -> None:
    src = harness.source()
    got = tickets_of(await read_tickets(src, holders=False))
    assert len(got) == len(served(harness))
    assert all(t.holder is None for t in got.values())
    assert src.customer_lookups == 0
    assert not any("customers" in route for route in harness.sandbox.stats.requests)


def test_missing_fields_are_not_errors() -> None:
    bare = {"id": "9001", "updated_at": "2025-06-01T10:00:00Z", "tickets": [{}]}
    ticket = map_order_ticket(bare, 0, None, CTX)
    assert ticket.number == "9001-1"
    assert ticket.event is None and ticket.holder is None and ticket.price is None
    assert (ticket.seat, ticket.row, ticket.section, ticket.gate, ticket.barcode) == (None,) * 5
    assert ticket.status is None and ticket.attributes == {
        "confirmation_code": "9001",
        "order_id": "9001",
    }
    # A price that cannot be used is left out, and said so.
    no_currency = {**bare, "tickets": [{"id": "T", "price": 100}]}
    assert map_order_ticket(no_currency, 0, None, CTX).price is None
    bad = {**bare, "currency": "DKK", "tickets": [{"id": "T", "price": "lots"}]}
    priced = map_order_ticket(bad, 0, None, CTX)
    assert priced.price is None
    assert priced.attributes["issues"] == ["tickets.0.price: not a number"]


@pytest.mark.parametrize(
    ("own", "order", "event", "expected"),
    [
        ("ISSUED", "COMPLETED", "onsale", "valid"),
        (None, "COMPLETED", None, "valid"),
        ("REFUNDED", "REFUNDED", None, "cancelled"),
        ("ISSUED", "CANCELLED", None, "cancelled"),
        ("ISSUED", "COMPLETED", "canceled", "cancelled"),
        ("SCANNED", "COMPLETED", None, "attended"),
        ("Transferred", "COMPLETED", None, "transferred"),
        (None, None, None, None),
    ],
)
def test_ticket_status(
    own: str | None, order: str | None, event: str | None, expected: str
) -> None:
    assert ticket_status(own, order, event) == expected


async def test_a_bad_ticket_fails_alone_under_its_key_and_remaps_when_fixed(
    harness: Harness,
) -> None:
    oid = next(o for o, v in harness.store.orders.items() if len(v["tickets"]) >= 2)
    order = harness.store.orders[oid]
    good_id = order["tickets"][1]["id"]
    order["tickets"][0] = "seat 12, row 4"  # not an object: numbered by its place
    broken = dict(harness.store.orders["70000001"], id="79999998", tickets="none")
    harness.store.orders["79999998"] = broken
    harness.store.mutate({"share": 0})
    src = harness.source()
    pages = await read_tickets(src)
    by_key = {f.key: f for f in failures(pages)}
    bad_key = f"ticket:ticketmaster:DK:{oid}-1"
    assert set(by_key) == {bad_key, "ticket:ticketmaster:DK:79999998-1"}
    failed = by_key[bad_key]
    assert "tickets.0 is not an object" in failed.reason and failed.raw["index"] == 0
    assert by_key["ticket:ticketmaster:DK:79999998-1"].reason == "tickets: not a list"
    assert good_id in tickets_of(pages), "its order's other tickets are fine"

    with pytest.raises(MappingError, match=r"tickets\.0 is not an object"):
        src.remap("tickets", failed.raw, TicketsOptions())
    fixed = copy.deepcopy(failed.raw)
    fixed["order"]["tickets"][0] = {"seat": "12", "row": "4"}
    record = src.remap("tickets", fixed, TicketsOptions())
    assert record.key == failed.key and isinstance(record.data, Ticket)
    assert (record.data.seat, record.data.row) == ("12", "4")
    assert record.data.holder is not None, "the buyer stored with the failure"
    with pytest.raises(MappingError, match="'order' and 'index'"):
        src.remap("tickets", {"order": {}}, TicketsOptions())


async def test_a_seat_change_is_read_again_since_the_cursor(harness: Harness) -> None:
    src = harness.source()
    first = tickets_of(await read_tickets(src))
    number = next(n for n, t in first.items() if t.seat and t.status == "valid")
    cursor = max(t.updated_at for t in first.values() if t.updated_at)
    changed = await harness.admin("mutate", {"op": "ticket", "ticket_id": number, "seat": "99"})
    assert changed["seat"] == "99"
    again = tickets_of(await read_tickets(harness.source(), since=cursor + timedelta(seconds=1)))
    order = harness.store.orders[changed["order_id"]]
    assert set(again) == {t["id"] for t in order["tickets"]}, "just that order's tickets"
    assert again[number].seat == "99"
    assert {n: t for n, t in again.items() if n != number} == {
        n: t.model_copy(update={"updated_at": again[n].updated_at})
        for n, t in first.items()
        if n in again and n != number
    }, "its other tickets are unchanged but for the order's update time"


async def test_tickets_resume_from_a_position_and_never_from_another_streams(
    harness: Harness,
) -> None:
    full = await read_tickets(harness.source(), page_size=20)
    assert len(full) > 4
    cut = len(full) // 2
    position = full[cut - 1].position
    assert position is not None
    rest = await read_tickets(harness.source(), position=position, page_size=20)
    assert [r.key for r in records(rest)] == [r.key for r in records(full[cut:])]
    # A customers-stream position (or one read with other options) starts over, whole.
    customers = await read_pages(harness.source(), page_size=20, members=False)
    theirs = customers[len(customers) // 2].position
    over = await read_tickets(harness.source(), position=theirs, page_size=20)
    assert len(records(over)) == len(records(full))
    other = await read_tickets(harness.source(), position=position, holders=False)
    assert len(records(other)) == len(records(full))
