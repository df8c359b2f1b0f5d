"""Whole syncs through the engine into the S-360 sandbox: the ledger keeps the contact
numbers, ``Change.changed`` sends only what moved, unchanged tickets cost nothing, and
envelope refusals become dead letters with their ``statusDetail``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import RecordsSource
from ticketbridge.connectors.base import Record, StreamOptions, StreamSpec
from ticketbridge.connectors.secutix360 import TICKET_FEEDBACK, TicketFeedbackOptions
from ticketbridge.connectors.secutix360.sandbox_store import share_pick
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.policy import WritePolicy
from ticketbridge.engine.spec import SyncSpec
from ticketbridge.engine.state.sql import SqlStateStore, open_store

from .support import CREATE, SEARCH, STATUS, Harness, make_ticket, person

STREAM = StreamSpec("ticket_updates", "ticket", ("diff",))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def sync() -> SyncSpec:
    return SyncSpec(
        name="feedback",
        stream="ticket_updates",
        stream_options=StreamOptions(),
        obj="ticket_feedback",
        object_options=TicketFeedbackOptions(),
        policy=WritePolicy.build(dict(TICKET_FEEDBACK.default_policy), None),
        batch_size=25,
    )


def tickets(n: int) -> list[Record]:
    # Every ticket's owner is one of 10 buyers; each holder is its own spectator.
    return [
        make_ticket(
            f"S360-{i:06d}",
            status="ASSIGNED",
            owner=person(f"buyer{i % 10}@example.org", "Buyer", str(i % 10)),
            holder=person(f"spectator{i}@example.org", "Spec", str(i)),
        )
        for i in range(1, n + 1)
    ]


async def test_feedback_sync_writes_changes_only_and_never_duplicates_a_contact(
    store: SqlStateStore, harness: Harness
) -> None:
    records = tickets(60)
    source = RecordsSource(records, STREAM)
    first = await run_sync(store, sync(), source, harness.destination())
    assert first.outcome == "ok" and first.counters.created == 60
    data = await harness.data()
    assert data["contacts_created"] == 70  # 10 buyers + 60 spectators, once each
    assert {t["external_status"] for t in data["tickets"]} == {"ASSIGNED"}

    before = (await harness.stats())["total_requests"]
    again = await run_sync(store, sync(), source, harness.destination())
    assert again.counters.unchanged == 60
    assert (await harness.stats())["total_requests"] == before, "nothing new costs nothing"

    # Ticket 7 is transferred to buyer 3 (who exists), ticket 8 to a newcomer; 9 is scanned.
    moved = {
        7: make_ticket(
            "S360-000007",
            status="TRANSFERRED",
            owner=person("buyer3@example.org"),
            holder=person("BUYER3@example.org"),
        ),
        8: make_ticket(
            "S360-000008",
            status="TRANSFERRED",
            owner=person("new@example.org"),
            holder=person("new@example.org"),
        ),
        9: make_ticket(
            "S360-000009",
            status="CONTROLLED",
            owner=person("buyer9@example.org", "Buyer", "9"),
            holder=person("spectator9@example.org", "Spec", "9"),
        ),
    }
    source.records = [moved.get(i + 1, r) for i, r in enumerate(records)]
    requests = await harness.requests()
    third = await run_sync(store, sync(), source, harness.destination())
    assert third.outcome == "ok" and third.counters.updated == 3
    after = await harness.requests()
    assert after[STATUS] - requests[STATUS] == 3, "exactly the changed tickets"
    assert after[CREATE] - requests[CREATE] == 1 and after[SEARCH] - requests[SEARCH] == 2
    data = await harness.data()
    assert data["contacts_created"] == 71 and data["duplicate_emails"] == []
    rows = {t["ticket_id"]: t for t in data["tickets"]}
    buyer3 = next(c for c in data["contacts"] if c["email"] == "buyer3@example.org")
    assert rows["S360-000007"]["holder_contact_number"] == buyer3["contact_number"]
    assert rows["S360-000009"]["external_status"] == "CONTROLLED"


async def test_refused_tickets_are_dead_letters_with_the_status_detail_and_faults_change_nothing(
    store: SqlStateStore, harness: Harness, tmp_path: Path
) -> None:
    records = tickets(40)
    await harness.mutate(
        op="refuse", share=0.1, code="INVALID_PARAMETER", detail="Ticket is locked"
    )
    await harness.faults(rate_5xx=0.1, rate_429=0.1, retry_after_s=0, seed=3)
    result = await run_sync(store, sync(), RecordsSource(records, STREAM), harness.destination())
    refused = {t for t in (r.data.number for r in records) if _picked(t)}  # type: ignore[union-attr]
    assert refused and result.counters.rejected == len(refused)
    assert result.counters.created == 40 - len(refused)
    dead = store.list_dead_letters("feedback")
    assert {d.key for d in dead} == {f"ticket:tixngo:{t}" for t in refused}
    assert all("INVALID_PARAMETER: Ticket is locked" in d.reason for d in dead)
    faulted = (await harness.stats())["faults"]
    assert faulted.get("5xx") and faulted.get("429"), faulted

    # The same tickets without faults, into a fresh sandbox and ledger: the same final state.
    clean = Harness()
    try:
        await clean.mutate(
            op="refuse", share=0.1, code="INVALID_PARAMETER", detail="Ticket is locked"
        )
        other = open_store(f"sqlite:///{tmp_path / 'clean.db'}")
        try:
            await run_sync(other, sync(), RecordsSource(records, STREAM), clean.destination())
        finally:
            other.close()
        assert _state(await clean.data()) == _state(await harness.data())
    finally:
        await clean.aclose()


def _picked(ticket_id: str) -> bool:
    return share_pick(ticket_id, 0.1)


def _state(data: dict[str, object]) -> object:
    """Tickets with their people by e-mail (numbers differ with creation order)."""
    contacts = {c["contact_number"]: c["email"] for c in data["contacts"]}  # type: ignore[attr-defined]
    return sorted(
        (
            t["ticket_id"],
            t["external_status"],
            contacts.get(t["owner_contact_number"]),
            contacts.get(t["holder_contact_number"]),
        )
        for t in data["tickets"]  # type: ignore[attr-defined]
    ), sorted(contacts.values())
