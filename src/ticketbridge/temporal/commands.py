"""The bodies of the Temporal commands of ``cli.py`` (which only parses and prints).

``run --temporal`` starts the sync's workflow under its single-flight id with the conflict
policy FAIL: a second start while it runs is refused by Temporal and recorded as ``skipped:
running`` (through a small workflow, so the starting machine needs no database access), and
prints and exits as a local ``ticketbridge run`` does.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from datetime import date, timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from ticketbridge.engine.spec import RunResult
from ticketbridge.engine.state.base import RunCounters
from ticketbridge.errors import ConfigError
from ticketbridge.project import Project
from ticketbridge.temporal import ids
from ticketbridge.temporal.cluster import Cluster
from ticketbridge.temporal.messages import RunReport, RunRequest
from ticketbridge.temporal.schedules import Applied, apply_schedules
from ticketbridge.temporal.worker import serve_worker
from ticketbridge.temporal.workflows import SkippedRun, SyncRun, report_of

__all__ = [
    "HEARTBEAT_ENV",
    "MAX_ATTEMPTS_ENV",
    "Cluster",
    "request_for",
    "result_of",
    "run_in_cluster",
    "schedules_apply",
    "start_run",
    "worker",
]

HEARTBEAT_ENV = "TICKETBRIDGE_TEMPORAL_HEARTBEAT_TIMEOUT"
MAX_ATTEMPTS_ENV = "TICKETBRIDGE_TEMPORAL_MAX_ATTEMPTS"
# Seconds `run --temporal` waits for a worker to poll its task queue before saying none does.
WORKER_GRACE_ENV = "TICKETBRIDGE_TEMPORAL_WORKER_GRACE"


def _env_number(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: must be at least {minimum:g}")
    return value


def request_for(project: Project, sync: str, today: date | None = None) -> RunRequest:
    """The run request of ``sync``; the heartbeat timeout (seconds, default 30) and the
    attempts per run (default 10) can be set with the environment variables above."""
    spec = project.get_sync(sync)
    return RunRequest(
        sync=sync,
        workflow_id=ids.workflow_id(spec),
        today=today.isoformat() if today else None,
        heartbeat_timeout_s=_env_number(HEARTBEAT_ENV, 30.0, 1.0),
        max_attempts=int(_env_number(MAX_ATTEMPTS_ENV, 10, 1)),
    )


async def start_run(client: Client, request: RunRequest, task_queue: str) -> RunReport:
    """Start one run through the cluster and wait for its report (failed runs included)."""
    try:
        handle = await client.start_workflow(
            SyncRun.run,
            request,
            id=request.workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        return await client.execute_workflow(
            SkippedRun.run,
            request.sync,
            id=f"{request.workflow_id}:skipped:{uuid.uuid4().hex[:12]}",
            task_queue=task_queue,
        )
    try:
        return await handle.result()
    except WorkflowFailureError as exc:
        report = report_of(exc.cause) if exc.cause is not None else None
        if report is not None:
            return report
        return RunReport(request.sync, "failed", error=str(exc.cause or exc))


async def has_worker(client: Client, task_queue: str) -> bool:
    """Whether a worker polled ``task_queue`` for workflows lately (Temporal keeps pollers
    seen in the last minutes, so one that just stopped still counts)."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return len(described.pollers) > 0


async def _say_if_no_worker(
    client: Client, cluster: Cluster, sync: str, grace: float, say: Callable[[str], None]
) -> None:
    await asyncio.sleep(grace)
    try:
        served = await has_worker(client, cluster.task_queue)
    except RPCError:  # e.g. a key allowed to start workflows but not to describe queues
        return
    if not served:
        options = cluster.connect_options()
        command = f"ticketbridge worker --temporal {options['target_host']}"
        if options["namespace"] != "default":
            command += f" --namespace {options['namespace']}"
        say(
            f"{sync}: no worker polls task queue {cluster.task_queue} on {cluster.where}; the "
            f"run waits there until one does. Start one with `{command} --task-queue "
            f"{cluster.task_queue}`; Ctrl-C here leaves the run queued."
        )


def result_of(report: RunReport) -> tuple[RunResult, int]:
    """The report as a RunResult (what ``ticketbridge run`` prints) and the exit code a
    local run would have ended with (2 for a configuration error found on the worker)."""
    counters = RunCounters(
        **{k: int(v) for k, v in report.counters.items() if k in RunCounters.__dataclass_fields__}
    )
    result = RunResult(report.sync, report.outcome, counters, report.run_id, report.error)
    return result, 2 if report.error_type == "ConfigError" else result.exit_code


def run_in_cluster(
    project: Project,
    cluster: Cluster,
    sync: str,
    today: date | None,
    say: Callable[[str], None],
) -> tuple[RunResult, int]:
    request = request_for(project, sync, today)

    grace = _env_number(WORKER_GRACE_ENV, 10.0, 0.0)

    async def main() -> RunReport:
        client = await cluster.connect()
        say(
            f"{sync}: started as {request.workflow_id} on {cluster.where}, task queue "
            f"{cluster.task_queue}; waiting for a worker to finish it"
        )
        # A run waits on its task queue for as long as no worker polls it, which without a
        # word looks like a hang: after a grace period, say so and how to start one.
        watch = asyncio.create_task(_say_if_no_worker(client, cluster, sync, grace, say))
        try:
            return await start_run(client, request, cluster.task_queue)
        finally:
            watch.cancel()

    report = asyncio.run(main())
    if report.outcome == "skipped":
        say(f"{sync}: already running on the cluster; this start is recorded as skipped")
    elif report.worker:
        resumed = " (resumed from the checkpoint earlier attempts committed)"
        say(
            f"{sync}: ran on worker {report.worker}, attempt {report.attempt}"
            + (resumed if report.attempt > 1 else "")
        )
    return result_of(report)


def worker(
    project: Project, cluster: Cluster, concurrency: int, say: Callable[[str], None]
) -> None:
    asyncio.run(serve_worker(project, cluster, concurrency=concurrency, on_ready=say))


def schedules_apply(
    project: Project, cluster: Cluster, catchup: timedelta
) -> tuple[list[Applied], str]:
    """Apply the schedules; returns what was done and where (for the summary line)."""
    request = RunRequest(
        sync="",
        workflow_id="",
        heartbeat_timeout_s=_env_number(HEARTBEAT_ENV, 30.0, 1.0),
        max_attempts=int(_env_number(MAX_ATTEMPTS_ENV, 10, 1)),
    )

    async def main() -> list[Applied]:
        client = await cluster.connect()
        return await apply_schedules(client, project, cluster.task_queue, catchup, request)

    return asyncio.run(main()), cluster.where
