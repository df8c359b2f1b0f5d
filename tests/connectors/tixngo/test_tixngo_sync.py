"""The engine running the TIXNGO source against its sandbox (real HTTP, in process), into an
in-memory destination of tickets: the diff strategy's pagination key, the skip list with
bare ticket ids, dead letters of unknown statuses."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ticketbridge.connectors.base import (
    Change,
    CheckResult,
    Mapped,
    ObjectOptions,
    ObjectSpec,
    Outcome,
    Record,
    StreamOptions,
)
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.policy import WritePolicy
from ticketbridge.engine.spec import RunResult, SyncSpec
from ticketbridge.engine.state.sql import SqlStateStore, open_store
from ticketbridge.errors import RetryableError
from ticketbridge.model import Person, Ticket

from .support import Harness

N = 2500


class TicketDestination:
    """Keeps the last fields written per ticket key and counts writes."""

    platform = "tickets"

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.writes: Counter[str] = Counter()
        self.calls = 0
        self.dest_ids: dict[str, dict[str, str]] = {}  # as last handed to write
        self.fail_on_call: dict[int, Exception] = {}

    def objects(self) -> list[ObjectSpec]:
        return [ObjectSpec("ticket_feedback", ("ticket",), entities=("ticket",))]

    def prepare(self, obj: str, record: Record, options: ObjectOptions) -> Mapped:
        t = record.data
        assert isinstance(t, Ticket)

        def who(p: Person | None) -> str | None:
            return p.email if p else None

        return {
            "ticket": {
                "status": t.mobile_status,
                "mode": t.mobile_status_mode,
                "owner": who(t.owner),
                "holder": who(t.holder),
                "assignee": who(t.assignee),
            }
        }

    async def write(self, obj: str, changes: list[Change], options: ObjectOptions) -> list[Outcome]:
        self.calls += 1
        if self.calls in self.fail_on_call:
            raise self.fail_on_call[self.calls]
        for c in changes:
            self.writes[c.key] += 1
            self.stored[c.key] = dict(c.fields["ticket"])
            self.dest_ids[c.key] = dict(c.dest_ids)
        return [Outcome(c.key, ok=True, dest_ids={"ticket": c.key}) for c in changes]

    async def check(self) -> list[CheckResult]:
        return []

    @property
    def api_calls(self) -> int:
        return self.calls

    async def aclose(self) -> None:
        return None


def feedback(name: str = "tixngo-feedback", **kw: Any) -> SyncSpec:
    return SyncSpec(
        name=name,
        stream="ticket_updates",
        stream_options=StreamOptions(),
        obj="ticket_feedback",
        object_options=ObjectOptions(),
        strategy="diff",
        policy=WritePolicy.build({"ticket": "always"}, None),
        **kw,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.close()


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


async def run(h: Harness, store: SqlStateStore, spec: SyncSpec, dest: TicketDestination) -> Any:
    source = h.source()
    try:
        return await run_sync(store, spec, source, dest)
    finally:
        await source.aclose()


def status_of(t: dict[str, Any]) -> dict[str, Any]:
    def who(p: dict[str, Any] | None) -> str | None:
        if p is None:
            return None
        local, domain = p["email"].split("@")
        return f"{local}@{domain.lower()}"

    return {
        "status": t["status"],
        "mode": "lifecycle",
        "owner": who(t["owner"]),
        "holder": who(t["holder"]),
        "assignee": who(t["assignee"]),
    }


async def test_first_run_rerun_and_mutate(h: Harness, store: SqlStateStore) -> None:
    dest = TicketDestination()
    first = await run(h, store, feedback(batch_size=500), dest)
    assert first.outcome == "ok"
    assert first.counters.source_calls == math.ceil(N / 1000) + 1
    assert first.counters.created == N
    truth = await h.tickets()
    assert {k.split(":")[-1]: v for k, v in dest.stored.items()} == {
        n: status_of(t) for n, t in truth.items()
    }
    key = (await h.feed())["nextPageKey"]
    assert store.get_checkpoint("tixngo-feedback") == {"position": {"paginationKey": key}}

    again = await run(h, store, feedback(batch_size=500), dest)
    assert (again.outcome, again.counters.source_calls, again.counters.destination_calls) == (
        "ok",
        1,
        0,
    )

    changed = await h.admin("POST", "mutate", {"share": 0.05, "seed": 2})
    before = Counter(dest.writes)
    third = await run(h, store, feedback(batch_size=500), dest)
    assert third.counters.updated == len(changed["changed"])
    written = {k.split(":")[-1] for k in dest.writes if dest.writes[k] > before[k]}
    assert written == set(changed["changed"])
    truth = await h.tickets()
    assert {k.split(":")[-1]: v for k, v in dest.stored.items()} == {
        n: status_of(t) for n, t in truth.items()
    }


async def test_the_key_moves_only_with_acknowledged_writes(
    h: Harness, store: SqlStateStore
) -> None:
    dest = TicketDestination()
    dest.fail_on_call[4] = RetryableError("down", platform="tickets")
    failed = await run(h, store, feedback(batch_size=500), dest)
    assert failed.outcome == "failed"
    # Pages of 1000, batches of 500: the 4th write was the second half of page 2, so the
    # stored key is the one after page 1, and the ledger holds pages 1 and half of 2.
    page_1 = (await h.feed(limit=1000))["nextPageKey"]
    assert store.get_checkpoint("tixngo-feedback") == {"position": {"paginationKey": page_1}}
    assert store.count_ledger("tixngo-feedback") == 1500
    resumed = await run(h, store, feedback(batch_size=500), dest)
    assert resumed.outcome == "ok"
    assert resumed.counters.unchanged == 500 and resumed.counters.created == N - 1500
    assert len(dest.stored) == N and max(dest.writes.values()) == 1


async def test_a_skipped_ticket_is_never_written_whatever_happens_to_it(
    h: Harness, store: SqlStateStore
) -> None:
    skip = frozenset({"S360-000005", "S360-000006"})
    dest = TicketDestination()
    first = await run(h, store, feedback(skip=skip), dest)
    assert first.counters.skipped_filter == 2 and first.counters.created == N - 2
    for number in skip:
        await h.admin(
            "POST",
            "mutate",
            {
                "op": "transfer",
                "ticket_id": number,
                "to": {"email": "new.holder@example.org", "firstName": "New", "lastName": "Holder"},
            },
        )
    await h.admin("POST", "mutate", {"op": "edit", "ticket_id": "S360-000006", "status": "LOST"})
    await h.admin("POST", "mutate", {"share": 0.5, "seed": 9})
    second = await run(h, store, feedback(skip=skip), dest)
    assert second.outcome == "ok"
    assert not {k for k in dest.writes if k.split(":")[-1] in skip}
    assert store.list_dead_letters("tixngo-feedback") == [], "not even a dead letter"
    assert store.get_ledger("tixngo-feedback", [f"ticket:tixngo:{n}" for n in skip]) == {}


async def test_an_unknown_status_is_a_dead_letter_retried_until_fixed(
    h: Harness, store: SqlStateStore
) -> None:
    dest = TicketDestination()
    await run(h, store, feedback(), dest)
    await h.admin("POST", "mutate", {"op": "edit", "ticket_id": "S360-000009", "status": "LOST"})
    second: RunResult = await run(h, store, feedback(), dest)
    assert second.outcome == "ok" and second.counters.rejected == 1
    (letter,) = store.list_dead_letters("tixngo-feedback")
    assert letter.key == "ticket:tixngo:S360-000009" and letter.stage == "mapping"
    assert letter.reason == "status: 'LOST' is not a TIXNGO lifecycle-mode status"
    third = await run(h, store, feedback(), dest)
    assert third.counters.retried == 1 and third.counters.rejected == 1
    await h.admin(
        "POST", "mutate", {"op": "step", "ticket_id": "S360-000009", "status": "CONTROLLED"}
    )
    fourth = await run(h, store, feedback(), dest)
    # A record that was rejected is sent whole again, with the destination's ids from before
    # its bad update: the destination updates its ticket rather than making a second one.
    assert fourth.counters.created == 1 and fourth.counters.rejected == 0
    assert store.list_dead_letters("tixngo-feedback") == []
    key = "ticket:tixngo:S360-000009"
    assert dest.stored[key]["status"] == "CONTROLLED"
    assert dest.writes[key] == 2 and dest.dest_ids[key] == {"ticket": key}
