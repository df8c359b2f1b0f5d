"""The run activity on its own (Temporal's ActivityEnvironment stands in for a worker): the
engine's run against in-process sandboxes, the state in PostgreSQL.

What a replacement attempt does with the lease of the attempt it replaces, what it heartbeats,
and how the error that ended a run becomes Temporal's retry decision.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from ticketbridge.connectors.airship_crm.sandbox import create_sandbox as airship_sandbox
from ticketbridge.connectors.ticketco.sandbox import create_sandbox as ticketco_sandbox
from ticketbridge.demo import project_dict, sandbox_env
from ticketbridge.http.context import HttpContext
from ticketbridge.project import load_project
from ticketbridge.runtime import Runtime
from ticketbridge.sandbox import SandboxApp
from ticketbridge.temporal import ids
from ticketbridge.temporal.activities import SyncActivities
from ticketbridge.temporal.messages import RunReport, RunRequest

pytestmark = pytest.mark.postgres

URLS = {"ticketco": "http://ticketco.sandbox", "airship_crm": "http://airship.sandbox"}
SYNC = "ticketco-bookings-to-airship"
WORKFLOW = "ticketbridge-sync:" + SYNC


@dataclasses.dataclass
class World:
    runtime: Runtime
    activities: SyncActivities
    airship: SandboxApp


def _world(tmp_path: Path, url: str, **airship: Any) -> World:
    project = project_dict(URLS)
    project["syncs"] = {SYNC: project["syncs"][SYNC]}
    project["connections"]["airship_crm"].update(airship)
    path = tmp_path / "ticketbridge.yaml"
    path.write_text(yaml.safe_dump(project))
    loaded = load_project(path, env=sandbox_env())
    http = HttpContext()
    source = ticketco_sandbox(seed=5, records=120, today=datetime.now(UTC))
    destination = airship_sandbox(seed=5)
    http.mount(URLS["ticketco"], httpx.ASGITransport(app=source.app))
    http.mount(URLS["airship_crm"], httpx.ASGITransport(app=destination.app))
    runtime = Runtime.open(loaded, http, url=url)
    return World(runtime, SyncActivities(runtime, "test-worker"), destination)


@pytest.fixture
def world(tmp_path: Path, postgres_url: str) -> Iterator[World]:
    w = _world(tmp_path, postgres_url)
    yield w
    w.runtime.close()


def env(attempt: int, run: str = "run-1") -> ActivityEnvironment:
    e = ActivityEnvironment()
    e.info = dataclasses.replace(
        e.info, attempt=attempt, workflow_id=WORKFLOW, workflow_run_id=run, activity_type="x"
    )
    return e


def request() -> RunRequest:
    return RunRequest(sync=SYNC, workflow_id=WORKFLOW, heartbeat_timeout_s=2)


async def test_a_replacement_attempt_takes_the_lease_of_the_attempt_it_replaces_at_once(
    world: World,
) -> None:
    store = world.runtime.store
    # Attempt 1 died holding the lease for ten more minutes, its run left "running".
    dead = store.acquire_lease(SYNC, ids.holder(WORKFLOW, "run-1", 1, "1@gone"), ttl_s=600)
    assert dead is not None
    abandoned = store.start_run(SYNC, "run", dead)
    report: RunReport = await env(attempt=2).run(world.activities.run_sync, request())
    assert report.outcome == "ok" and report.attempt == 2
    assert report.counters["created"] > 0
    assert store.get_run(abandoned).outcome == "crashed"  # type: ignore[union-attr]
    lease = store.get_lease(SYNC)
    assert lease is not None and lease.token > dead.token, "the takeover is fenced"


async def test_a_lease_held_by_a_run_outside_the_cluster_is_not_taken(world: World) -> None:
    store = world.runtime.store
    assert store.acquire_lease(SYNC, "other-host:4242:cafe", ttl_s=600) is not None
    report: RunReport = await env(attempt=2).run(world.activities.run_sync, request())
    assert report.outcome == "skipped" and report.error == "skipped: running"
    assert store.list_runs(SYNC)[0].outcome == "skipped"
    assert world.airship.stats.as_dict()["total_requests"] == 0


async def test_heartbeats_carry_the_position_each_batch_committed(world: World) -> None:
    beats: list[Any] = []
    e = env(attempt=1)
    e.on_heartbeat = lambda *details: beats.append(details[0])
    report: RunReport = await e.run(world.activities.run_sync, request())
    assert report.outcome == "ok"
    committed = [b for b in beats if b["committed"] is not None]
    assert committed, "a heartbeat after each committed batch"
    assert committed[-1]["checkpoint"] == world.runtime.store.get_checkpoint(SYNC)
    created = [b["committed"]["created"] for b in committed]
    assert created == sorted(created) and created[-1] == report.counters["created"]


async def test_a_retry_resumes_from_the_checkpoint_the_earlier_attempt_committed(
    world: World,
) -> None:
    first: RunReport = await env(attempt=1).run(world.activities.run_sync, request())
    checkpoint = world.runtime.store.get_checkpoint(SYNC)
    second: RunReport = await env(attempt=2).run(world.activities.run_sync, request())
    assert first.resumed_from is None
    assert second.resumed_from == checkpoint
    assert second.counters["created"] == 0, "nothing sent twice"


async def test_refused_credentials_end_the_run_for_good(tmp_path: Path, postgres_url: str) -> None:
    w = _world(tmp_path, postgres_url, token="wrong-token")
    try:
        with pytest.raises(ApplicationError) as caught:
            await env(attempt=1).run(w.activities.run_sync, request())
    finally:
        w.runtime.close()
    assert caught.value.non_retryable
    assert caught.value.type == "AuthError"
    report = RunReport.from_details(caught.value.details[0])
    assert report is not None and report.outcome == "failed" and report.run_id is not None


async def test_an_outage_is_handed_back_to_temporal_to_retry(
    tmp_path: Path, postgres_url: str
) -> None:
    w = _world(tmp_path, postgres_url, max_retries=0)
    w.airship.faults.rate_5xx = 1.0
    try:
        with pytest.raises(ApplicationError) as caught:
            await env(attempt=1).run(w.activities.run_sync, request())
    finally:
        w.runtime.close()
    assert not caught.value.non_retryable
    assert caught.value.type == "RetryableError"


async def test_a_sync_missing_from_the_workers_project_file_is_a_config_error(
    world: World,
) -> None:
    with pytest.raises(ApplicationError) as caught:
        await env(attempt=1).run(
            world.activities.run_sync, RunRequest(sync="nope", workflow_id="ticketbridge-sync:nope")
        )
    assert caught.value.non_retryable and caught.value.type == "ConfigError"
    assert "workers read it when they start" in str(caught.value)
