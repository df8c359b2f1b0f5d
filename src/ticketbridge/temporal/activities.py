"""The work: one activity per run attempt, running the engine's own run loop.

Why one activity per attempt rather than one per page, plan and batch: the engine already
commits each destination batch with its ledger rows and checkpoint in one PostgreSQL
transaction, and a run started anywhere resumes from the last such commit. Splitting the loop
into activities would carry every page of records through Temporal's history (payload limits,
history growth, a round trip per step) only to rebuild what ``run_sync`` does, and would run
the engine's read-ahead, batching and dead-letter retries a second time in workflow code.
So the activity runs ``Runtime.run`` and heartbeats after every committed batch with the
position it committed; when a worker is lost its heartbeats stop, Temporal gives the next
attempt to another worker, and that attempt's run resumes from the same committed checkpoint.

The engine's lease stays the second fence. Each attempt holds it under its own holder id
(``ids.holder``: workflow id, run id, attempt); a new attempt that finds the lease held by an
earlier attempt of its own workflow takes it over at once instead of waiting out the lease's
time to live. That is safe because Temporal has already given that attempt up, and fenced:
the takeover expires the old holder's token (``release_lease`` matches holder *and* token),
so should the old attempt still be alive (a worker cut off from Temporal but not from the
database), its next commit fails with LeaseLost and it stops; its in-flight batch at most
repeats upserts the new attempt also sends.

Error classes become retry decisions (see :func:`verdict`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from datetime import date, timedelta
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from ticketbridge.engine.spec import RunOptions, SyncSpec
from ticketbridge.engine.state.base import RunCounters
from ticketbridge.engine.verdict import verdict
from ticketbridge.errors import ConfigError
from ticketbridge.runtime import Runtime
from ticketbridge.temporal import ids
from ticketbridge.temporal.messages import RunReport, RunRequest

__all__ = ["NON_RETRYABLE", "SyncActivities", "worker_identity"]

log = structlog.get_logger("ticketbridge.temporal")

# Error types (ApplicationError.type) Temporal never retries: the run cannot succeed until
# someone changes the project file or the credentials, or the run's own call cap is used up.
NON_RETRYABLE = ["ConfigError", "AuthError", "FatalError", "BudgetExhausted"]


def worker_identity() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


class _Heartbeat:
    """Heartbeats the run's position: at once after every committed batch (the SDK batches
    them to the server), and every ``every_s`` meanwhile so that a slow batch (a tight rate
    budget) does not look like a lost worker."""

    def __init__(self, runtime: Runtime, sync: str, every_s: float) -> None:
        self.runtime = runtime
        self.sync = sync
        self.every_s = every_s
        self.details: dict[str, Any] = {"committed": None, "checkpoint": None}

    def committed(self, counters: RunCounters) -> None:
        self.details = {
            "committed": counters.as_dict(),
            "checkpoint": self.runtime.store.get_checkpoint(self.sync),
        }
        activity.heartbeat(self.details)

    async def beat(self) -> None:
        while True:
            activity.heartbeat(self.details)
            await asyncio.sleep(self.every_s)


class SyncActivities:
    """The activities of one worker process, sharing its runtime (project, state store,
    HTTP context with the shared rate budget)."""

    def __init__(self, runtime: Runtime, identity: str | None = None) -> None:
        self.runtime = runtime
        self.identity = identity or worker_identity()

    def _spec(self, sync: str) -> SyncSpec:
        try:
            return self.runtime.project.get_sync(sync)
        except ConfigError as exc:
            raise ApplicationError(
                f"{exc} (in this worker's project file; workers read it when they start)",
                RunReport(sync, "failed", error=str(exc), error_type="ConfigError"),
                type="ConfigError",
                non_retryable=True,
            ) from None

    def _take_over(self, spec: SyncSpec, workflow: str, mine: str) -> None:
        """Expire leases still held by earlier attempts of this workflow (see module doc)."""
        store = self.runtime.store
        for name in ids.lease_names(spec):
            current = store.get_lease(name)
            if current is not None and ids.is_other_attempt(current.holder, workflow, mine):
                log.warning("lease.takeover", sync=spec.name, lease=name, previous=current.holder)
                store.release_lease(current)

    @activity.defn(name="ticketbridge.run_sync")
    async def run_sync(self, request: RunRequest) -> RunReport:
        info = activity.info()
        spec = self._spec(request.sync)
        workflow = info.workflow_id or request.workflow_id
        holder = ids.holder(workflow, info.workflow_run_id or "", info.attempt, self.identity)
        store = self.runtime.store
        await asyncio.to_thread(self._take_over, spec, workflow, holder)
        resumed = store.get_checkpoint(spec.name) if info.attempt > 1 else None
        if info.attempt > 1:
            log.info(
                "run.resume",
                sync=spec.name,
                attempt=info.attempt,
                last_heartbeat=list(info.heartbeat_details)[-1:] or None,
            )
        beat = _Heartbeat(self.runtime, spec.name, max(0.5, request.heartbeat_timeout_s / 4))
        opts = RunOptions(
            holder=holder,
            today=date.fromisoformat(request.today) if request.today else None,
            on_progress=beat.committed,
        )
        beating = asyncio.create_task(beat.beat(), name=f"heartbeat:{spec.name}")
        started = time.monotonic()
        try:
            result = await self.runtime.run(request.sync, opts)
        except ConfigError as exc:
            report = RunReport(
                request.sync, "failed", error=str(exc), error_type="ConfigError", attempt=1
            )
            raise ApplicationError(
                str(exc), report, type="ConfigError", non_retryable=True
            ) from None
        finally:
            beating.cancel()
        report = RunReport(
            sync=result.sync,
            outcome=result.outcome,
            counters=result.counters.as_dict(),
            run_id=result.run_id,
            error=result.error,
            error_type=type(result.exception).__name__ if result.exception else None,
            attempt=info.attempt,
            worker=self.identity,
            resumed_from=resumed,
            engine_s=round(time.monotonic() - started, 3),
        )
        decision = verdict(result)
        if decision is None:
            return report
        retryable, delay = decision
        raise ApplicationError(
            result.error or f"run {result.outcome}",
            report,
            type=report.error_type or "RunFailed",
            non_retryable=not retryable,
            next_retry_delay=timedelta(seconds=delay) if delay else None,
        )

    @activity.defn(name="ticketbridge.record_skipped")
    async def record_skipped(self, sync: str) -> RunReport:
        """A start refused because the sync's workflow is already running: recorded as the
        engine records a start that finds the lease held."""
        run_id = await asyncio.to_thread(self.runtime.store.record_skipped_run, sync, "running")
        log.info("run.skipped", sync=sync, reason="running", where="temporal")
        return RunReport(
            sync,
            "skipped",
            RunCounters().as_dict(),
            run_id,
            "skipped: running",
            worker=self.identity,
        )
