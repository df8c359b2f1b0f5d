"""Whole runs through the engine: the ledger makes purchases once each across reruns and
unchanged members cost zero writes; an unsubscribed member stays unsubscribed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ticketbridge.connectors.base import (
    CheckResult,
    Page,
    ReadRequest,
    Record,
    StreamOptions,
    StreamSpec,
)
from ticketbridge.connectors.heyloyalty import MEMBERS, MembersOptions
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.policy import WritePolicy
from ticketbridge.engine.spec import SyncSpec
from ticketbridge.engine.state.sql import SqlStateStore, open_store

from .support import Harness, make_contact, make_order


class ListSource:
    """One page of prepared records (contacts and orders in one stream, as Ticketmaster's)."""

    platform = "list"

    def __init__(self, records: list[Record]) -> None:
        self.records = records

    def streams(self) -> list[StreamSpec]:
        return [StreamSpec("customers", "contact", ("cursor",), extra_kinds=("booking",))]

    async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
        yield Page(records=list(self.records), position={"done": True})

    def remap(self, stream: str, raw: dict[str, Any], options: StreamOptions) -> Record:
        # This source emits no Failed payloads, so the engine never asks it to re-map one.
        raise AssertionError("unexpected remap: this test source has no dead letters")

    async def check(self) -> list[CheckResult]:
        return []

    @property
    def api_calls(self) -> int:
        return 0

    async def aclose(self) -> None:
        return None


@pytest.fixture
def state(tmp_path: Path) -> Iterator[SqlStateStore]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def sync(**options: Any) -> SyncSpec:
    return SyncSpec(
        name="tm-to-hl", stream="customers", stream_options=StreamOptions(), obj="members",
        object_options=MembersOptions.model_validate({"match": ["email"], **options}),
        policy=WritePolicy.build(MEMBERS.default_policy, None),
    )  # fmt: skip


async def test_reruns_write_nothing_twice(state: SqlStateStore, harness: Harness) -> None:
    records = [make_contact("1"), make_contact("2", email="b@example.com", mobile="20000002"),
               make_order("10"), make_order("11", email="b@example.com")]  # fmt: skip
    source = ListSource(records)
    first = await run_sync(state, sync(), source, harness.destination())
    assert first.outcome == "ok" and first.counters.created == 4
    writes = (await harness.stats())["writes"]
    second = await run_sync(state, sync(), source, harness.destination())
    assert second.counters.unchanged == 4 and second.counters.destination_calls == 0
    assert (await harness.stats())["writes"] == writes

    # The order changes (e.g. its status): the purchase is not sent again.
    source.records[2] = make_order("10", price="500.00")
    third = await run_sync(state, sync(), source, harness.destination())
    assert third.counters.skipped_policy == 1
    tracked = {k: v for k, v in (await harness.stats())["writes"].items() if "tracking" in k}
    assert tracked == {"tracking:10": {"create": 1}, "tracking:11": {"create": 1}}


async def test_unsubscribed_member_stays_unsubscribed(
    state: SqlStateStore, harness: Harness
) -> None:
    source = ListSource([make_contact("1")])
    await run_sync(state, sync(), source, harness.destination())
    await harness.admin("POST", "mutate", {"unsubscribe": ["jane.doe@example.com"]})
    before = (await harness.stats())["writes"]
    source.records[0] = make_contact("1", first_name="Changed")
    result = await run_sync(state, sync(resubscribe_unsubscribed=False), source,
                            harness.destination())  # fmt: skip
    assert result.outcome == "ok" and result.counters.skipped_policy == 1
    assert (await harness.stats())["writes"] == before
    [member] = (await harness.data())["members"]
    assert member["status"]["status"] == "unsubscribed"
