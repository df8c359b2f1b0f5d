"""Planning: compare what the source says now with what the destination last acknowledged.

The plan is the heart of "only changed records are sent": a record whose mapped content hashes
to what the ledger holds costs zero destination calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ticketbridge.connectors.base import Change, Mapped, Record
from ticketbridge.engine.policy import WritePolicy
from ticketbridge.engine.state.base import LedgerRow
from ticketbridge.model import stable_hash

Decision = Literal["create", "update", "unchanged", "skipped_policy"]


@dataclass
class Planned:
    record: Record
    decision: Decision
    hashes: dict[str, str]
    change: Change | None = None
    previous: LedgerRow | None = None
    changed: frozenset[str] = field(default_factory=frozenset)


def entity_hashes(mapped: Mapped) -> dict[str, str]:
    return {entity: stable_hash(fields) for entity, fields in mapped.items()}


def plan_record(
    record: Record,
    mapped: Mapped,
    row: LedgerRow | None,
    policy: WritePolicy,
) -> Planned:
    """Decide what to do with one record.

    * no acknowledged ledger row -> ``create`` with what the policy allows on create;
    * same hashes as acknowledged -> ``unchanged``;
    * some entity changed -> ``update`` with the changed entities' fields the policy allows on
      update, or ``skipped_policy`` when the policy lets none of them through.
    """
    hashes = entity_hashes(mapped)
    acknowledged = row is not None and row.last_outcome == "ok" and bool(row.hashes)
    if not acknowledged:
        fields, if_empty = policy.apply("create", mapped)
        change = Change(
            key=record.key,
            action="create",
            record=record,
            fields=fields,
            dest_ids=dict(row.dest_ids) if row else {},
            changed=frozenset(mapped),
            if_empty=if_empty,
            prepared=mapped,
        )
        return Planned(record, "create", hashes, change, row, frozenset(mapped))
    assert row is not None
    changed = frozenset(e for e, h in hashes.items() if row.hashes.get(e) != h)
    if not changed:
        return Planned(record, "unchanged", hashes, None, row)
    fields, if_empty = policy.apply("update", {e: mapped[e] for e in changed})
    if not fields:
        return Planned(record, "skipped_policy", hashes, None, row, changed)
    change = Change(
        key=record.key,
        action="update",
        record=record,
        fields=fields,
        dest_ids=dict(row.dest_ids),
        changed=changed,
        if_empty=if_empty,
        prepared=mapped,
    )
    return Planned(record, "update", hashes, change, row, changed)


def acknowledged_row(
    planned: Planned, dest_ids: Mapping[str, str], status: str | None
) -> LedgerRow:
    """The ledger row to store once the destination acknowledged ``planned``.

    Entities the policy kept back are stored with their new hash too: the change was seen and
    deliberately not written, and re-deciding it every run would only add noise.
    """
    ids = dict(planned.previous.dest_ids) if planned.previous else {}
    ids.update(dest_ids)
    return LedgerRow(
        key=planned.record.key,
        hashes=planned.hashes,
        dest_ids=ids,
        last_outcome="ok",
        status=status,
    )
