"""Conformance cases for sources: checks, reads, resuming, rate limits and credentials."""

from __future__ import annotations

import json

from ticketbridge.connectors.base import Connector, Record, Source, StreamSpec
from ticketbridge.connectors.testing.harness import (
    Harness,
    NotApplicable,
    assert_check_passes,
    assert_check_refuses,
    assert_no_secret,
    assert_waited,
    need_credentials,
    need_source,
    read_pages,
    wrong_credentials,
)
from ticketbridge.engine.records import record_from_json, record_to_json
from ticketbridge.errors import AuthError

PAGE_SIZE = 15  # small enough for the sandbox's records to span several pages
RETRY_AFTER_S = 3.0


def _declared_streams(connector: Connector) -> list[StreamSpec]:
    """The streams the connector declares (registration checks the source lists the same)."""
    need_source(connector)
    assert connector.streams, f"{connector.platform}: a source has at least one stream"
    return list(connector.streams)


def _streams(source: Source) -> list[StreamSpec]:
    streams = source.streams()
    assert streams, f"{source.platform}: a source has at least one stream"
    return streams


async def check_source_check(connector: Connector) -> None:
    """``check()`` passes, every result of it, with the sandbox credentials."""
    need_source(connector)
    async with Harness.create(connector).source() as source:
        await assert_check_passes(connector.platform, source.check)


async def check_source_read(connector: Connector) -> None:
    """Every stream reads from the sandbox; kinds are declared; keys are unique and stable
    across runs; records survive the JSON round trip dead letters take; reads are
    deterministic; the calls are counted."""
    need_source(connector)
    harness = Harness.create(connector)
    for spec in _declared_streams(connector):
        async with harness.source() as source:
            first = [
                r
                for _, _, page in await read_pages(source, spec.name, spec.options())
                for r in page
            ]
            assert source.api_calls > 0, "api_calls counts the source's requests"
        where = f"{connector.platform}.{spec.name}"
        assert first, f"{where} read nothing from its sandbox"
        keys = [r.key for r in first]
        assert len(keys) == len(set(keys)), f"{where}: record keys must be unique within a read"
        assert {r.kind for r in first} <= set(spec.kinds), f"{where}: undeclared kinds"
        for record in first:
            _assert_round_trip(record)
        async with harness.source() as again:  # another run, over the same data
            second = [
                r for _, _, p in await read_pages(again, spec.name, spec.options()) for r in p
            ]
        assert [r.key for r in second] == keys, f"{where}: reads must be deterministic"


def _assert_round_trip(record: Record) -> None:
    again = record_from_json(json.loads(json.dumps(record_to_json(record))))
    assert (again.key, again.kind, again.data) == (record.key, record.kind, record.data), (
        f"{record.key} does not survive the JSON round trip"
    )


async def check_source_resume(connector: Connector) -> None:
    """Resuming from a page's position (a page before the last; stored as JSON, read by a new
    source as after a crash) gives exactly what the full read had after that page: nothing
    repeated, nothing missing, in the same order."""
    need_source(connector)
    harness = Harness.create(connector)
    for spec in _declared_streams(connector):
        where = f"{connector.platform}.{spec.name}"
        async with harness.source() as source:
            pages = await read_pages(source, spec.name, spec.options(), page_size=PAGE_SIZE)
        resumable = [
            i
            for i, (_, position, _) in enumerate(pages[:-1])
            if position is not None and any(keys for keys, _, _ in pages[i + 1 :])
        ]
        assert resumable, (
            f"{where}: no page before the last carries a position to resume from "
            f"({len(pages)} pages of at most {PAGE_SIZE})"
        )
        at = resumable[len(resumable) // 2]
        position = json.loads(json.dumps(pages[at][1]))  # the engine stores it as JSON
        expected = [k for keys, _, _ in pages[at + 1 :] for k in keys]
        async with harness.source() as resumed:
            got = [
                k
                for keys, _, _ in await read_pages(
                    resumed, spec.name, spec.options(), page_size=PAGE_SIZE, position=position
                )
                for k in keys
            ]
        repeated = sorted(set(got) - set(expected))
        missing = sorted(set(expected) - set(got))
        assert got == expected, (
            f"{where}: resuming after page {at + 1} of {len(pages)} repeated {repeated[:5]} "
            f"and missed {missing[:5]} ({len(got)} entries, expected {len(expected)})"
        )


async def check_source_retry_after(connector: Connector) -> None:
    """A 429 with Retry-After on the next requests: the read still returns everything, after
    the context's sleep was asked for at least the Retry-After each time."""
    need_source(connector)
    harness = Harness.create(connector)
    spec = _declared_streams(connector)[0]
    async with harness.source() as source:
        clean = [
            k for keys, _, _ in await read_pages(source, spec.name, spec.options()) for k in keys
        ]
    await harness.faults(fail_next=2, retry_after_s=RETRY_AFTER_S)
    async with harness.source() as source:
        got = [
            k for keys, _, _ in await read_pages(source, spec.name, spec.options()) for k in keys
        ]
    stats = await harness.stats()
    assert stats["faults"].get("fail_next") == 2, f"the 429s were not all met: {stats['faults']}"
    assert got == clean, f"{connector.platform}.{spec.name}: a read through 429s lost records"
    assert_waited(harness, RETRY_AFTER_S, times=2)


async def check_source_bad_credentials(connector: Connector) -> None:
    """Wrong credentials: reading raises AuthError naming the platform, with no secret in
    it; ``check()`` reports the failure (does not pass)."""
    need_source(connector)
    wrong = wrong_credentials(connector)
    secrets = [*wrong.values(), *need_credentials(connector).values()]
    harness = Harness.create(connector)
    async with harness.source(wrong) as source:
        spec = _streams(source)[0]
        try:
            await read_pages(source, spec.name, spec.options())
        except AuthError as exc:
            assert exc.platform == connector.platform and connector.platform in str(exc), str(exc)
            assert_no_secret(str(exc), secrets)
        else:
            raise AssertionError(f"{connector.platform}: a wrong credential must raise AuthError")
    async with harness.source(wrong) as source:
        await assert_check_refuses(connector.platform, source.check, secrets)


__all__ = [
    "NotApplicable",
    "check_source_bad_credentials",
    "check_source_check",
    "check_source_read",
    "check_source_resume",
    "check_source_retry_after",
]
