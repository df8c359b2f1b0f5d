"""Conformance cases for destinations: checks, ``prepare``, writes that come back and stay
single when repeated, rate limits and credentials."""

from __future__ import annotations

import copy
from typing import Any

from ticketbridge.connectors.base import (
    Change,
    Connector,
    Destination,
    ObjectSpec,
    Outcome,
    Record,
)
from ticketbridge.connectors.testing.harness import (
    Harness,
    assert_check_passes,
    assert_check_refuses,
    assert_no_secret,
    assert_waited,
    need_credentials,
    need_destination,
    occurrences,
    wrong_credentials,
)
from ticketbridge.connectors.testing.samples import identifiers, samples_for
from ticketbridge.engine.policy import WritePolicy
from ticketbridge.engine.records import record_to_json
from ticketbridge.errors import AuthError
from ticketbridge.model import stable_hash

RETRY_AFTER_S = 3.0


def _declared_objects(connector: Connector) -> list[ObjectSpec]:
    """The objects the connector declares (registration checks the destination lists the
    same)."""
    need_destination(connector)
    assert connector.objects, f"{connector.platform}: a destination has at least one object"
    return list(connector.objects)


def _objects(destination: Destination) -> list[ObjectSpec]:
    objects = destination.objects()
    assert objects, f"{destination.platform}: a destination has at least one object"
    return objects


def creates(destination: Destination, spec: ObjectSpec, records: list[Record]) -> list[Change]:
    """What the engine sends for records it has never written: ``prepare``, then the
    object's default write policy for a create."""
    policy = WritePolicy.build(spec.default_policy, None, spec.withdrawals)
    changes = []
    for record in records:
        mapped = destination.prepare(spec.name, record, spec.options())
        fields, if_empty = policy.apply("create", mapped)
        changes.append(
            Change(
                key=record.key,
                action="create",
                record=record,
                fields=fields,
                changed=frozenset(mapped),
                if_empty=if_empty,
            )
        )
    return changes


async def write_samples(
    destination: Destination, spec: ObjectSpec, *, again: bool = False
) -> list[Outcome]:
    """Write every sample ``spec`` accepts as one batch; every outcome must be ok.

    ``again``: as a re-run after a lost acknowledgement, without the entities the object
    declares ``at_least_once`` (the platform offers no way to deduplicate those)."""
    changes = creates(destination, spec, samples_for(spec))
    if again and spec.at_least_once:
        for change in changes:
            change.fields = {e: f for e, f in change.fields.items() if e not in spec.at_least_once}
        changes = [c for c in changes if c.fields]
    outcomes = await destination.write(spec.name, changes, spec.options())
    where = f"{destination.platform}.{spec.name}"
    assert sorted(o.key for o in outcomes) == sorted(c.key for c in changes), (
        f"{where}: one outcome per change"
    )
    refused = [(o.key, o.reason) for o in outcomes if not o.ok]
    assert not refused, f"{where} refused valid samples: {refused}"
    skipped = [(o.key, o.skipped) for o in outcomes if o.skipped]
    assert not skipped, f"{where} skipped new valid samples: {skipped}"
    return outcomes


async def check_destination_check(connector: Connector) -> None:
    """``check()`` passes, every result of it, with the sandbox credentials."""
    need_destination(connector)
    async with Harness.create(connector).destination() as destination:
        await assert_check_passes(connector.platform, destination.check)


async def check_destination_prepare(connector: Connector) -> None:
    """``prepare`` accepts the samples of every kind an object accepts and is pure: the same
    fields every time, JSON-hashable, only the object's entities, and no request made."""
    need_destination(connector)
    harness = Harness.create(connector)
    async with harness.destination() as destination:
        for spec in _objects(destination):
            assert spec.entities, f"{connector.platform}.{spec.name} declares no entities"
            for record in samples_for(spec):
                where = f"{connector.platform}.{spec.name} {record.key}"
                snapshot = record_to_json(record)
                first = destination.prepare(spec.name, record, spec.options())
                assert first, f"{where}: prepare mapped nothing"
                again = destination.prepare(spec.name, copy.deepcopy(record), spec.options())
                assert again == first, f"{where}: prepare is not deterministic"
                assert record_to_json(record) == snapshot, f"{where}: prepare changed the record"
                assert stable_hash(first) == stable_hash(again)
                outside = set(first) - set(spec.entities)
                assert not outside, f"{where}: entities {outside} not in {spec.entities}"
        assert destination.api_calls == 0, "prepare must not call the platform"
    assert (await harness.stats())["total_requests"] == 0, "prepare must not call the platform"


async def check_destination_write(connector: Connector) -> None:
    """The samples are written (every outcome ok) and come back in ``/_sandbox/data`` and
    ``stats.writes``; written again as the engine does after a lost acknowledgement (a new
    run, the same creates), nothing new is created and nothing is duplicated, except the
    entities the object declares ``at_least_once`` with the platform's reason, which are
    not written again here."""
    need_destination(connector)
    harness = Harness.create(connector)
    for spec in _declared_objects(connector):
        where = f"{connector.platform}.{spec.name}"
        samples = samples_for(spec)
        before_data, before = await harness.data(), await harness.stats()
        async with harness.destination() as destination:
            await write_samples(destination, spec)
            assert destination.api_calls > 0, "api_calls counts the destination's requests"
        data, stats = await harness.data(), await harness.stats()
        new_keys = set(stats["writes"]) - set(before["writes"])
        assert len(new_keys) >= len(samples), (
            f"{where}: {len(samples)} samples written, sandbox saw writes to {sorted(new_keys)}"
        )
        seen = _seen(samples, data)
        absent = [k for k, n in seen.items() if n <= _seen(samples, before_data)[k]]
        assert not absent, f"{where}: {absent} written but not in /_sandbox/data"

        undeclared = set(spec.at_least_once) - set(spec.entities)
        assert not undeclared, f"{where}: at_least_once names unknown entities {undeclared}"
        assert all(spec.at_least_once.values()), f"{where}: at_least_once without a reason"
        async with harness.destination() as destination:
            await write_samples(destination, spec, again=True)
        again_data, again = await harness.data(), await harness.stats()
        extra = sorted(set(again["writes"]) - set(stats["writes"]))
        assert not extra, f"{where}: writing again wrote new records {extra}"
        twice = {k: c for k, c in again["writes"].items() if c.get("create", 0) > 1}
        assert not twice, f"{where}: created twice: {twice}"
        assert _seen(samples, again_data) == seen, (
            f"{where}: writing again duplicated records in /_sandbox/data: "
            f"{seen} -> {_seen(samples, again_data)}"
        )


def _seen(samples: list[Record], data: Any) -> dict[str, int]:
    """Per sample, how often its identifiers occur in the sandbox's data."""
    return {r.key: sum(occurrences(data, i) for i in identifiers(r)) for r in samples}


async def check_destination_retry_after(connector: Connector) -> None:
    """A 429 with Retry-After on the next requests: the samples are still written, after
    the context's sleep was asked for at least the Retry-After each time."""
    need_destination(connector)
    harness = Harness.create(connector)
    await harness.faults(fail_next=2, retry_after_s=RETRY_AFTER_S)
    async with harness.destination() as destination:
        spec = _objects(destination)[0]
        await write_samples(destination, spec)
    stats = await harness.stats()
    assert stats["faults"].get("fail_next") == 2, f"the 429s were not all met: {stats['faults']}"
    assert stats["writes"], f"{connector.platform}: nothing reached the sandbox"
    assert_waited(harness, RETRY_AFTER_S, times=2)


async def check_destination_bad_credentials(connector: Connector) -> None:
    """Wrong credentials: writing raises AuthError naming the platform, with no secret in it,
    and nothing is written; ``check()`` reports the failure (does not pass)."""
    need_destination(connector)
    wrong = wrong_credentials(connector)
    secrets = [*wrong.values(), *need_credentials(connector).values()]
    harness = Harness.create(connector)
    async with harness.destination(wrong) as destination:
        spec = _objects(destination)[0]
        changes = creates(destination, spec, samples_for(spec))
        try:
            outcomes = await destination.write(spec.name, changes, spec.options())
        except AuthError as exc:
            assert exc.platform == connector.platform and connector.platform in str(exc), str(exc)
            assert_no_secret(str(exc), secrets)
        else:
            raise AssertionError(
                f"{connector.platform}: a wrong credential must raise AuthError, not {outcomes}"
            )
    assert not (await harness.stats())["writes"], "a refused credential wrote something"
    async with harness.destination(wrong) as destination:
        await assert_check_refuses(connector.platform, destination.check, secrets)
