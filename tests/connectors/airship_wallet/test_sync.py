"""Whole syncs through the engine into the Wallet sandbox: the ledger's dest_ids and the
plan's ``Change.changed`` drive pass and pass-group updates; unchanged tickets cost nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes import RecordsSource
from ticketbridge.connectors.airship_wallet import EVENT_TICKETS, EventTicketsOptions
from ticketbridge.connectors.base import (
    StreamOptions,
    StreamSpec,
)
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.policy import WritePolicy
from ticketbridge.engine.spec import SyncSpec
from ticketbridge.engine.state.sql import SqlStateStore, open_store

from .support import STARTS, Harness, make_event, make_ticket

GROUP_PUT = "PUT /v1/events/project/{project_id}/passGroups/{group}"
PASS_PUT = "PUT /v1/pass/template/{template_id}/id/{external_id}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def sync() -> SyncSpec:
    return SyncSpec(
        name="wallet",
        stream="tickets",
        stream_options=StreamOptions(),
        obj="event_tickets",
        object_options=EventTicketsOptions(),
        policy=WritePolicy.build(dict(EVENT_TICKETS.default_policy), None),
        batch_size=50,
    )


async def test_syncs_follow_ticket_and_event_changes(
    store: SqlStateStore, harness: Harness
) -> None:
    event = make_event("E1")
    tickets = [make_ticket(f"T{i:02d}", event=event) for i in range(30)]
    source = RecordsSource(tickets, StreamSpec("tickets", "ticket", ("window", "cursor", "diff")))
    first = await run_sync(store, sync(), source, harness.destination())
    assert first.outcome == "ok" and first.counters.created == 30
    assert len((await harness.data())["links"]) == 30

    before = (await harness.stats())["total_requests"]
    unchanged = await run_sync(store, sync(), source, harness.destination())
    assert unchanged.counters.unchanged == 30
    assert (await harness.stats())["total_requests"] == before, "unchanged tickets cost nothing"

    source.records = [
        make_ticket("T03", event=event, seat="Z9") if r.key.endswith("T03") else r for r in tickets
    ]
    seat = await run_sync(store, sync(), source, harness.destination())
    assert seat.counters.updated == 1
    requests = (await harness.stats())["requests"]
    assert requests[PASS_PUT] == 2 and GROUP_PUT not in requests  # its two passes only

    later = make_event("E1", starts=STARTS.replace(hour=21))
    source.records = [make_ticket(r.data.number, event=later) for r in tickets]  # type: ignore[union-attr]
    moved = await run_sync(store, sync(), source, harness.destination())
    assert moved.outcome == "ok" and moved.counters.updated == 30
    requests = (await harness.stats())["requests"]
    assert requests[GROUP_PUT] == 1
    # The seat of T03 went back to A12 with this run: one more pass update, not 30.
    assert requests[PASS_PUT] == 4
    data = await harness.data()
    assert {p["fields"]["startTime"]["value"] for p in data["passes"]} == {"2026-12-31T21:30:00Z"}


async def test_ticketmaster_tickets_become_passes_and_a_seat_change_is_one_pass_update(
    store: SqlStateStore, harness: Harness
) -> None:
    """The Ticketmaster ``tickets`` stream into Wallet, both sandboxes over HTTP: one link per
    purchased ticket, the buyer as holder, the order id as confirmation code; a seat changed
    at Ticketmaster is one update of that ticket's passes."""
    from tests.connectors.ticketmaster.support import TODAY
    from tests.connectors.ticketmaster.support import Harness as TmHarness
    from ticketbridge.connectors.ticketmaster import TicketsOptions, create_sandbox

    tm = TmHarness(create_sandbox(seed=3, records=40, today=TODAY, spike_arrest_per_s=None))
    try:
        # Wallet's currency list has no DKK: the passes go without a price.
        spec = replace(
            sync(),
            stream_options=TicketsOptions(),
            object_options=EventTicketsOptions(other_currencies="omit"),
            strategy="cursor",
        )
        first = await run_sync(store, spec, tm.source(), harness.destination())
        orders = tm.store.orders.values()
        truth = {t["id"]: (o, t) for o in orders for t in o["tickets"]}
        assert first.outcome == "ok" and first.counters.created == len(truth) > 20
        data = await harness.data()
        links = {x["external_id"]: x for x in data["links"]}
        assert set(links) == set(truth)
        for number, (order, raw) in truth.items():
            fields = {k: v["value"] for k, v in links[number]["fields"].items() if "value" in v}
            buyer = tm.store.customers[order["customer_id"]]
            assert fields["ticketHolderName"] == f"{buyer['first_name']} {buyer['last_name']}"
            assert fields["confirmationCode"] == order["id"]
            assert fields.get("seat") == raw["seat"] and fields.get("gate") == raw.get("gate")
            assert "faceValue" not in links[number]["fields"]
        assert {e["external_id"] for e in data["events"]} == {o["event"]["id"] for o in orders}

        seated = next(n for n, (o, t) in truth.items() if t["seat"] and o["status"] == "COMPLETED")
        await tm.admin("mutate", {"op": "ticket", "ticket_id": seated, "seat": "99"})
        before = await harness.requests()
        again = await run_sync(store, spec, tm.source(), harness.destination())
        assert again.outcome == "ok" and again.counters.updated == 1, again.counters
        after = await harness.requests()
        assert {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)} == {
            PASS_PUT: 2
        }
        seats = {
            p["fields"]["seat"]["value"]
            for p in (await harness.data())["passes"]
            if p["external_id"] == seated
        }
        assert seats == {"99"}
    finally:
        await tm.aclose()


async def test_an_event_moved_across_several_batches_is_still_one_pass_group_update(
    store: SqlStateStore, harness: Harness
) -> None:
    """Bench W1 found it: 1,066 tickets of a moved event in batches of 500 made 3 pass-group
    updates. The first reaches every pass of the event; the later batches need none."""
    event = make_event("E1")
    tickets = [make_ticket(f"T{i:02d}", event=event) for i in range(30)]
    source = RecordsSource(tickets, StreamSpec("tickets", "ticket", ("window", "cursor", "diff")))
    small = replace(sync(), batch_size=7)
    assert (await run_sync(store, small, source, harness.destination())).counters.created == 30
    for n, hour in enumerate((21, 22), start=1):
        later = make_event("E1", starts=STARTS.replace(hour=hour))
        source.records = [make_ticket(r.data.number, event=later) for r in tickets]  # type: ignore[union-attr]
        moved = await run_sync(store, small, source, harness.destination())
        assert moved.outcome == "ok" and moved.counters.updated == 30
        assert (await harness.requests())[GROUP_PUT] == n, "one per run, not one per batch"
        starts = {p["fields"]["startTime"]["value"] for p in (await harness.data())["passes"]}
        assert starts == {f"2026-12-31T{hour}:30:00Z"}
