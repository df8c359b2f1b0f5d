"""``source_process: auto``: which runs read their source in a forked child (runtime.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ticketbridge.engine.reader_process import ProcessSource
from ticketbridge.engine.state.sql import SqlStateStore, open_store
from ticketbridge.errors import ConfigError
from ticketbridge.http import HttpContext
from ticketbridge.project import load_project_text
from ticketbridge.runtime import Runtime

TICKETCO = "http://127.0.0.1:9/api/public/v1"


def _project(source_process: str | None, source: str = "ticketco") -> str:
    setting = f"\n    source_process: {source_process}" if source_process is not None else ""
    stream, destination = (
        ("bookings", "airship, object: contact_bookings")
        if source == "ticketco"
        else ("customers", "heyloyalty, object: members")
    )
    return f"""
connections:
  ticketco: {{platform: ticketco, base_url: "{TICKETCO}", token: t}}
  ticketmaster: {{platform: ticketmaster, base_url: "http://127.0.0.1:9/tm", api_key: k,
                 market: DK, username: u, password: p}}
  airship: {{platform: airship_crm, base_url: "http://127.0.0.1:9/v1", token: t, account_id: 1}}
  heyloyalty: {{platform: heyloyalty, base_url: "http://127.0.0.1:9/hl", api_key: k,
               api_secret: s, list_id: 1}}
syncs:
  s:
    source: {{connection: {source}, stream: {stream}}}
    destination: {{connection: {destination}}}{setting}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def _child(store: SqlStateStore, text: str, **runtime: Any) -> bool:
    rt = Runtime(load_project_text(text), store, **runtime)

    async def which() -> bool:
        async with rt.endpoints("s") as (source, _):
            return isinstance(source, ProcessSource)

    return asyncio.run(which())


def test_a_new_project_reads_ticketco_over_the_network_in_a_child(store: SqlStateStore) -> None:
    assert _child(store, _project(None)) is True


def test_false_keeps_the_read_in_this_process(store: SqlStateStore) -> None:
    assert _child(store, _project("false")) is False


def test_a_source_that_does_not_ask_for_it_stays_here(store: SqlStateStore) -> None:
    assert _child(store, _project(None, source="ticketmaster")) is False
    assert _child(store, _project("true", source="ticketmaster")) is True


def test_an_in_process_sandbox_or_a_virtual_clock_stays_here(store: SqlStateStore) -> None:
    mounted = HttpContext()
    mounted.mount_app(TICKETCO, object())
    assert _child(store, _project(None), http=mounted) is False

    async def no_sleep(_: float) -> None:
        return None

    assert _child(store, _project(None), http=HttpContext(sleep=no_sleep)) is False


def test_a_runtime_that_forbids_forking_stays_here(store: SqlStateStore) -> None:
    # The Temporal worker's runtime: its rate budget lives in this process's HTTP context.
    assert _child(store, _project(None), auto_reader=False) is False
    assert _child(store, _project("true"), auto_reader=False) is True


def test_a_bad_value_is_refused_with_the_field() -> None:
    with pytest.raises(ConfigError, match="source_process"):
        load_project_text(_project("sometimes"))
