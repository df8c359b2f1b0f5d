"""A run's reader starts before its state store is open (``Runtime._prestart``).

Real parts: TicketCo and Airship CRM sandboxes under uvicorn on loopback, a SQLite state file,
a forked reader. What a user relies on: a rerun behaves exactly as before (nothing written
twice, the same counts), and a run refused for a held lease writes nothing and leaves no
reader process behind.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ticketbridge.connectors.airship_crm import sandbox_config as airship_config
from ticketbridge.connectors.airship_crm.config import SANDBOX_TOKEN as AIRSHIP_TOKEN
from ticketbridge.connectors.airship_crm.sandbox import create_sandbox as airship_sandbox
from ticketbridge.connectors.ticketco import sandbox_config as ticketco_config
from ticketbridge.connectors.ticketco.config import SANDBOX_TOKEN as TICKETCO_TOKEN
from ticketbridge.connectors.ticketco.sandbox import create_sandbox as ticketco_sandbox
from ticketbridge.engine.leases import default_holder
from ticketbridge.engine.reader_process import ProcessSource
from ticketbridge.engine.spec import RunResult
from ticketbridge.engine.state.peek import peek_checkpoint
from ticketbridge.project import Project, load_project_text
from ticketbridge.runtime import Runtime
from ticketbridge.sandbox import RunningSandbox, serving

pytestmark = pytest.mark.e2e
SYNC = "bookings"


@pytest.fixture
def served() -> Iterator[tuple[RunningSandbox, RunningSandbox]]:
    with serving([ticketco_sandbox(records=300), airship_sandbox()]) as (ticketco, airship):
        yield ticketco, airship


def _project(ticketco: RunningSandbox, airship: RunningSandbox) -> Project:
    text = yaml.safe_dump(
        {
            "connections": {
                "ticketco": ticketco_config(ticketco.url),
                "airship": airship_config(airship.url),
            },
            "syncs": {
                SYNC: {
                    "source": {"connection": "ticketco", "stream": "bookings"},
                    "destination": {"connection": "airship", "object": "contact_bookings"},
                }
            },
        }
    )
    env = {"TICKETCO_TOKEN": TICKETCO_TOKEN, "AIRSHIP_TOKEN": AIRSHIP_TOKEN}
    return load_project_text(text, env=env)


def _run(project: Project, url: str, spy: dict[str, Any] | None = None) -> RunResult:
    runtime = Runtime.open(project, url=url)
    if spy is not None:
        spy["runtime"] = runtime
    try:
        return asyncio.run(runtime.run(SYNC))
    finally:
        runtime.close()


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Records each prestart (with whether the store was open then) and each fork."""
    seen: dict[str, Any] = {"prestarts": [], "forks": 0}
    prestart, fork = ProcessSource.prestart, ProcessSource._fork

    def spy_prestart(self: ProcessSource, request: Any) -> None:
        seen["prestarts"].append(seen["runtime"]._store is not None)
        prestart(self, request)

    def spy_fork(self: ProcessSource, request: Any) -> Any:
        seen["forks"] += 1
        return fork(self, request)

    monkeypatch.setattr(ProcessSource, "prestart", spy_prestart)
    monkeypatch.setattr(ProcessSource, "_fork", spy_fork)
    return seen


def test_a_rerun_reads_before_the_store_opens_and_writes_nothing_twice(
    served: tuple[RunningSandbox, RunningSandbox],
    tmp_path: Path,
    spy: dict[str, Any],
) -> None:
    ticketco, airship = served
    airship_app = airship.sandbox
    project, url = _project(ticketco, airship), f"sqlite:///{tmp_path / 'state.db'}"
    first = _run(project, url, spy)
    assert first.outcome == "ok" and first.counters.created > 0
    assert spy["prestarts"] == [], "no state file yet: nothing to look at before the store"
    written = airship_app.stats.as_dict()["write_totals"]

    reader = Runtime.open(project, url=url)
    try:
        assert peek_checkpoint(url, SYNC) == reader.store.get_checkpoint(SYNC)
    finally:
        reader.close()
    spy["forks"] = 0
    again = _run(project, url, spy)
    assert spy["prestarts"] == [False], "started once, with the store still closed"
    assert spy["forks"] == 1, "the run took the early reader over"
    assert again.outcome == "ok"
    assert again.counters.read == first.counters.read
    assert again.counters.unchanged == first.counters.created
    assert again.counters.created == again.counters.updated == 0
    assert airship_app.stats.as_dict()["write_totals"] == written, "nothing written again"
    assert not multiprocessing.active_children()


def test_a_run_that_finds_the_lease_held_reads_and_writes_nothing(
    served: tuple[RunningSandbox, RunningSandbox],
    tmp_path: Path,
    spy: dict[str, Any],
) -> None:
    # A scheduler starting a run while the last one still goes: the early look sees the lease
    # held, so no reader starts, and the run is skipped as before.
    ticketco, airship = served
    airship_app = airship.sandbox
    project, url = _project(ticketco, airship), f"sqlite:///{tmp_path / 'state.db'}"
    assert _run(project, url).outcome == "ok"
    reads = ticketco.sandbox.stats.as_dict()["total_requests"]
    writes = airship_app.stats.as_dict()["total_requests"]
    spy["forks"] = 0

    holder = Runtime.open(project, url=url)
    try:
        assert holder.store.acquire_lease(SYNC, default_holder(), 60) is not None
        skipped = _run(project, url, spy)
    finally:
        holder.close()
    assert skipped.outcome == "skipped"
    assert spy["prestarts"] == [] and spy["forks"] == 0, "no reader started"
    assert ticketco.sandbox.stats.as_dict()["total_requests"] == reads, "nothing read"
    assert airship_app.stats.as_dict()["total_requests"] == writes, "nothing sent"
    assert not multiprocessing.active_children()
