"""Whole runs through the engine: the ledger makes purchases once each across reruns and
unchanged members cost zero writes; an unsubscribed member stays unsubscribed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes import RecordsSource
from ticketbridge.connectors.ticketmaster import CUSTOMERS
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.spec import SyncSpec
from ticketbridge.engine.state.sql import SqlStateStore, open_store
from ticketbridge.model import ConsentState
from ticketbridge.project import load_project_text

from .support import API_KEY, BASE, SECRET, Harness, make_contact, make_order, members_sync


@pytest.fixture
def state(tmp_path: Path) -> Iterator[SqlStateStore]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


async def test_reruns_write_nothing_twice(state: SqlStateStore, harness: Harness) -> None:
    records = [make_contact("1"), make_contact("2", email="b@example.com", mobile="20000002"),
               make_order("10"), make_order("11", email="b@example.com")]  # fmt: skip
    source = RecordsSource(records, CUSTOMERS)
    first = await run_sync(state, members_sync(), source, harness.destination())
    assert first.outcome == "ok" and first.counters.created == 4
    writes = (await harness.stats())["writes"]
    second = await run_sync(state, members_sync(), source, harness.destination())
    assert second.counters.unchanged == 4 and second.counters.destination_calls == 0
    assert (await harness.stats())["writes"] == writes

    # The order changes (e.g. its status): the purchase is not sent again.
    source.records[2] = make_order("10", price="500.00")
    third = await run_sync(state, members_sync(), source, harness.destination())
    assert third.counters.skipped_policy == 1
    tracked = {k: v for k, v in (await harness.stats())["writes"].items() if "tracking" in k}
    assert tracked == {"tracking:10": {"create": 1}, "tracking:11": {"create": 1}}


async def test_unsubscribed_member_stays_unsubscribed(
    state: SqlStateStore, harness: Harness
) -> None:
    source = RecordsSource([make_contact("1")], CUSTOMERS)
    await run_sync(state, members_sync(), source, harness.destination())
    await harness.admin("POST", "mutate", {"unsubscribe": ["jane.doe@example.com"]})
    before = (await harness.stats())["writes"]
    source.records[0] = make_contact("1", first_name="Changed")
    result = await run_sync(state, members_sync(resubscribe_unsubscribed=False), source,
                            harness.destination())  # fmt: skip
    assert result.outcome == "ok" and result.counters.skipped_policy == 1
    assert (await harness.stats())["writes"] == before
    [member] = (await harness.data())["members"]
    assert member["status"]["status"] == "unsubscribed"


def project_sync(policy: dict[str, Any]) -> SyncSpec:
    """The sync as a project file makes it: the object's defaults and the user's policy."""
    project = {
        "connections": {
            "tm": {"platform": "ticketmaster", "api_key": "k", "market": "DK",
                   "username": "u", "password": "p"},
            "hl": {"platform": "heyloyalty", "base_url": BASE + "/loyalty/v1",
                   "api_key": API_KEY, "api_secret": SECRET, "list_id": 4711},
        },
        "syncs": {"tm-to-hl": {
            "source": {"connection": "tm", "stream": "customers"},
            "destination": {"connection": "hl", "object": "members"},
            "match": ["email"], "write_policy": policy,
        }},
    }  # fmt: skip
    return load_project_text(yaml.safe_dump(project)).get_sync("tm-to-hl")


async def test_a_withdrawal_is_written_under_on_create_as_a_status_change_only(
    state: SqlStateStore, harness: Harness
) -> None:
    """Issue 20.1: with ``member: on_create`` the member's fields are never updated, but a
    withdrawn consent still reaches Heyloyalty: one PATCH of the status, no upsert."""
    spec = project_sync({"member": "on_create"})
    source = RecordsSource([make_contact("1")], CUSTOMERS)
    assert (await run_sync(state, spec, source, harness.destination())).counters.created == 1
    before = (await harness.stats())["requests"]
    source.records[0] = make_contact("1", first_name="Renamed", email_consent=ConsentState.DENIED)
    result = await run_sync(state, spec, source, harness.destination())
    assert result.outcome == "ok" and result.counters.updated == 1
    after = (await harness.stats())["requests"]
    calls = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    assert calls == {
        "GET /loyalty/v1/lists/{list_id}": 1,  # the list's fields, once per run
        "PATCH /loyalty/v1/lists/{list_id}/members/{member_id}": 1,
    }
    [member] = (await harness.data())["members"]
    assert member["status"]["email"] == "unsubscribed"
    assert member["fields"]["firstname"] == "Jane"  # the policy kept the rename back
