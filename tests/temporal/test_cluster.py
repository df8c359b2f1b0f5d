"""Syncs on a Temporal dev server with `ticketbridge worker` processes and PostgreSQL state:
schedules, one run per sync, a killed worker's run finished by another, one rate budget for
two workers. Outcomes are read back from the Airship sandbox and the state store.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    ScheduleSpec,
)
from temporalio.service import RPCError

from tests.e2e.harness import Stack
from tests.e2e.test_ticketco_airship import expected_bookings, start, sync_block
from tests.temporal.cluster import Workers, alive, cli_result, holder_pid, wait_for
from ticketbridge.temporal import ids
from ticketbridge.temporal.commands import request_for, start_run
from ticketbridge.temporal.messages import RunReport, RunRequest
from ticketbridge.temporal.workflows import ScheduledSyncRun

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.e2e]

SYNC = "ticketco-bookings-to-airship"


def rename(stack: Stack, mapping: dict[str, dict[str, Any]]) -> None:
    """Give the project's syncs names of their own (the dev server is shared by the tests)."""
    project = yaml.safe_load(stack.config.read_text())
    project["syncs"] = mapping
    stack.config.write_text(yaml.safe_dump(project, sort_keys=False))


@pytest.fixture
def workers(tmp_path: Path, temporal_address: str, postgres_url: str) -> Iterator[Workers]:
    stack = start(tmp_path, records=300)
    w = Workers(stack, temporal_address, postgres_url)
    try:
        yield w
    finally:
        w.stop()
        stack.stop()


def airship_refs(stack: Stack) -> Counter[str]:
    return Counter(b["booking_reference"] for b in stack.data("airship_crm")["bookings"])


def slow_down(stack: Stack, rate: float) -> None:
    """A rate budget on the Airship connection: a run lasts calls / rate seconds."""
    project = yaml.safe_load(stack.config.read_text())
    project["connections"]["airship_crm"]["rate_per_second"] = rate
    stack.config.write_text(yaml.safe_dump(project, sort_keys=False))


def landed(stack: Stack) -> int:
    return int(stack.stats("airship_crm")["write_totals"].get("create", 0))


def test_a_scheduled_sync_runs_on_a_worker_and_apply_removes_what_the_file_dropped(
    workers: Workers,
) -> None:
    sync = f"sched-{uuid.uuid4().hex[:8]}"
    rename(workers.stack, {sync: {**sync_block(), "schedule": "every 2s"}})
    stale = ids.schedule_id(f"gone-{uuid.uuid4().hex[:8]}")

    async def plant_stale() -> None:
        client = await workers.cluster.connect()
        action = ScheduleActionStartWorkflow(
            ScheduledSyncRun.run,
            RunRequest(sync="gone", workflow_id="ticketbridge-sync:gone"),
            id="ticketbridge-scheduled:gone",
            task_queue=workers.task_queue,
        )
        spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(days=1))])
        await client.create_schedule(stale, Schedule(action=action, spec=spec))
        # Listings lag behind creation: apply must see it to remove it.
        for _ in range(300):
            if stale in [s.id async for s in await client.list_schedules()]:
                return
            await asyncio.sleep(0.2)
        raise AssertionError("the planted schedule is never listed")

    asyncio.run(plant_stale())
    workers.start()
    applied = workers.stack.cli(
        "schedules",
        "apply",
        "--temporal",
        workers.address,
        "--task-queue",
        workers.task_queue,
        "--catchup-window",
        "2m",
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"created {sync} (every 2s)" in applied.stdout
    assert f"removed {ids.sync_of_schedule(stale)}" in applied.stdout

    def ran() -> bool:
        with workers.store() as store:
            return any(r.outcome == "ok" for r in store.list_runs(sync))

    wait_for("a scheduled run to finish", ran, timeout=60)

    async def described() -> Any:
        client = await workers.cluster.connect()
        return await client.get_schedule_handle(ids.schedule_id(sync)).describe()

    schedule = asyncio.run(described()).schedule
    assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert schedule.policy.catchup_window == timedelta(minutes=2)
    assert schedule.spec.intervals[0].every == timedelta(seconds=2)

    # The sync loses its schedule in the file: the next apply removes the Temporal one.
    unscheduled = {k: v for k, v in sync_block().items() if k != "schedule"}
    rename(workers.stack, {sync: unscheduled})
    again = workers.stack.cli(
        "schedules", "apply", "--temporal", workers.address, "--task-queue", workers.task_queue
    )
    assert again.returncode == 0 and f"removed {sync}" in again.stdout, again.stdout + again.stderr
    with pytest.raises(RPCError):
        asyncio.run(described())


def test_two_starts_of_one_sync_make_one_run_and_record_the_other_skipped(
    workers: Workers,
) -> None:
    sync = f"twice-{uuid.uuid4().hex[:8]}"
    rename(workers.stack, {sync: sync_block()})
    slow_down(workers.stack, rate=8)  # a run of several seconds
    # Room for two runs in one worker: only the workflow id can keep the second one out.
    workers.start(concurrency=2)
    starts = [workers.cli("run", sync, "--json") for _ in range(2)]
    wait_for("the run's first writes", lambda: landed(workers.stack) > 0)
    # A schedule firing meanwhile is refused the same way, one level down (its child).
    scheduled = workers.run_scheduled(sync)
    results = sorted((cli_result(p) for p in starts), key=lambda r: r[1]["outcome"])
    (code1, out1, _), (code2, out2, err2) = results
    assert (code1, out1["outcome"]) == (0, "ok")
    assert (code2, out2["outcome"]) == (0, "skipped"), err2
    assert out2["error"] == "skipped: running"
    assert "already running" in err2
    assert scheduled.outcome == "skipped"
    with workers.store() as store:
        outcomes = Counter(r.outcome for r in store.list_runs(sync))
    assert outcomes == {"ok": 1, "skipped": 2}
    refs = airship_refs(workers.stack)
    assert refs and max(refs.values()) == 1
    assert out1["created"] == len(refs)


def test_a_run_whose_worker_is_killed_is_finished_by_another_without_duplicate_or_loss(
    workers: Workers,
) -> None:
    sync = f"kill-{uuid.uuid4().hex[:8]}"
    rename(workers.stack, {sync: sync_block(batch_size=10)})
    slow_down(workers.stack, rate=10)
    pool = [workers.start(), workers.start()]
    run = workers.cli("run", sync, "--json")
    wait_for("a third of the bookings to land", lambda: landed(workers.stack) >= 20)
    with workers.store() as store:
        lease = store.get_lease(sync)
    assert lease is not None and lease.holder.startswith("temporal:ticketbridge-sync:")
    victim = next(p for p in pool if p.pid == holder_pid(lease.holder))
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    code, out, err = cli_result(run, timeout=180)
    assert (code, out["outcome"]) == (0, "ok"), err
    assert "attempt 2" in err and "resumed" in err
    survivor = next(p for p in pool if p is not victim)
    assert alive(survivor.pid)

    expected = set(expected_bookings(workers.stack))
    refs = airship_refs(workers.stack)
    rejected = set(dead_letters_of(workers.stack, sync))
    assert max(refs.values()) == 1, "no booking twice at the destination"
    assert set(refs) | rejected == expected, "every booking sent or reported"
    with workers.store() as store:
        runs = store.list_runs(sync)
    assert sorted(r.outcome for r in runs) == ["crashed", "ok"]
    assert 0 < out["created"] < len(refs), "the second attempt resumed, it did not start over"


def test_two_workers_writing_to_one_account_keep_to_its_rate_together(
    workers: Workers,
) -> None:
    a, b = f"riverside-{uuid.uuid4().hex[:6]}", f"bowl-{uuid.uuid4().hex[:6]}"
    project = yaml.safe_load(workers.stack.config.read_text())
    project["connections"]["airship_crm"]["rate_per_second"] = 10
    project["syncs"] = {
        a: sync_block(source={**sync_block()["source"], "venues": ["Riverside Hall"]}),
        b: sync_block(source={**sync_block()["source"], "venues": ["Bowl Arena"]}),
    }
    workers.stack.config.write_text(yaml.safe_dump(project, sort_keys=False))
    workers.stack.admin("airship_crm", "faults", {"rate_limit_per_s": 10})
    workers.start()
    workers.start()

    async def both() -> list[RunReport]:
        client = await workers.cluster.connect()
        loaded = workers.project()
        return list(
            await asyncio.gather(
                *(start_run(client, request_for(loaded, s), workers.task_queue) for s in (a, b))
            )
        )

    reports = asyncio.run(both())
    assert [r.outcome for r in reports] == ["ok", "ok"]
    assert reports[0].worker != reports[1].worker, "one run on each worker"
    with workers.store() as store:
        runs = {r.sync: r for r in store.list_runs(limit=10)}
    first, second = runs[a], runs[b]
    assert first.finished_at and second.finished_at
    assert first.started_at < second.finished_at and second.started_at < first.finished_at, (
        "the two runs wrote at the same time"
    )
    stats = workers.stack.stats("airship_crm")
    calls = sum(stats["requests"].values())
    assert calls > 40, "enough calls to go past the rate had the budget not been shared"
    assert stats["faults"].get("rate_limit", 0) == 0
    assert "429" not in stats["statuses"]


def dead_letters_of(stack: Stack, sync: str) -> list[str]:
    proc = stack.cli("errors", sync, "--json")
    assert proc.returncode == 0, proc.stderr
    return [row["key"].rsplit(":", 1)[1] for row in json.loads(proc.stdout)]


def test_a_run_started_with_no_worker_says_so_and_finishes_once_one_starts(
    workers: Workers,
) -> None:
    sync = f"alone-{uuid.uuid4().hex[:8]}"
    rename(workers.stack, {sync: sync_block()})
    workers.stack.env["TICKETBRIDGE_TEMPORAL_WORKER_GRACE"] = "1"
    started = workers.cli("run", sync, "--json")

    time.sleep(4)  # past the grace period, with no worker on the queue
    assert started.poll() is None, "the start should wait for a worker"
    with workers.store() as store:
        assert not store.list_runs(sync), "a run without a worker ran"
    workers.start()
    code, out, err = cli_result(started)
    assert (code, out["outcome"]) == (0, "ok"), err
    assert f"no worker polls task queue {workers.task_queue}" in err
    assert f"ticketbridge worker --temporal {workers.address} --task-queue" in err
    assert out["created"] == len(airship_refs(workers.stack)) > 0
