"""Workflows: deterministic glue around the run activity (no I/O here; Temporal replays it).

* :class:`SyncRun` (id ``ticketbridge-sync:<sync>``): one run of one sync. Its one activity is
  retried by the policy of :func:`retry_policy`; a run that ends failed fails the workflow,
  with the run's report as the failure's details, so the cluster's UI shows failed runs as
  failed and ``ticketbridge run --temporal`` can still print the run's summary.
* :class:`ScheduledSyncRun`: what a Temporal Schedule starts. A schedule's workflows get the
  fire time appended to their id, so they cannot be the single-flight id themselves; this one
  starts :class:`SyncRun` under the sync's id as a child. If that id is running (started by
  hand, or a previous schedule's run still going), Temporal refuses the child and the start is
  recorded as ``skipped: running``, as the engine records a start that finds its lease held.
* :class:`SkippedRun`: records such a skip for a start refused at the client
  (``ticketbridge run --temporal`` while the sync runs).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from ticketbridge.temporal.messages import RunReport, RunRequest

__all__ = ["WORKFLOWS", "ScheduledSyncRun", "SkippedRun", "SyncRun", "report_of", "retry_policy"]

# Error types that end a run for good (activities.NON_RETRYABLE, repeated here so that the
# workflow sandbox does not import the engine).
_NON_RETRYABLE = ["ConfigError", "AuthError", "FatalError", "BudgetExhausted"]
_SHORT = timedelta(minutes=1)


def retry_policy(request: RunRequest) -> RetryPolicy:
    """Outages and rate limits: retried with the engine's back-off (doubling from
    ``initial_retry_s`` up to ``max_retry_s``, as http/retry.py); a lost worker (heartbeat
    timeout) is retried the same way. Configuration and auth errors: never."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=request.initial_retry_s),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=request.max_retry_s),
        maximum_attempts=request.max_attempts,
        non_retryable_error_types=_NON_RETRYABLE,
    )


def report_of(error: BaseException) -> RunReport | None:
    """The run report an activity or workflow failure carries as its details, if any."""
    cause = error.__cause__ if isinstance(error, ActivityError) else error
    if isinstance(cause, ApplicationError) and cause.details:
        return RunReport.from_details(cause.details[0])
    return None


@workflow.defn(name="ticketbridge.SyncRun")
class SyncRun:
    @workflow.run
    async def run(self, request: RunRequest) -> RunReport:
        try:
            report: RunReport = await workflow.execute_activity(
                "ticketbridge.run_sync",
                request,
                result_type=RunReport,
                start_to_close_timeout=timedelta(seconds=request.run_timeout_s),
                heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout_s),
                retry_policy=retry_policy(request),
            )
            return report
        except ActivityError as error:
            failed = report_of(error)
            if failed is None:
                raise
            raise ApplicationError(
                failed.error or f"run {failed.outcome}",
                failed,
                type=failed.error_type or "RunFailed",
                non_retryable=True,
            ) from None


@workflow.defn(name="ticketbridge.ScheduledSyncRun")
class ScheduledSyncRun:
    @workflow.run
    async def run(self, request: RunRequest) -> RunReport:
        try:
            child = await workflow.start_child_workflow(
                SyncRun.run,
                request,
                id=request.workflow_id,
                task_queue=workflow.info().task_queue,
            )
        except WorkflowAlreadyStartedError:
            return await _record_skip(request.sync)
        return await child


@workflow.defn(name="ticketbridge.SkippedRun")
class SkippedRun:
    @workflow.run
    async def run(self, sync: str) -> RunReport:
        return await _record_skip(sync)


async def _record_skip(sync: str) -> RunReport:
    report: RunReport = await workflow.execute_activity(
        "ticketbridge.record_skipped",
        sync,
        result_type=RunReport,
        start_to_close_timeout=_SHORT,
        retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
    )
    return report


WORKFLOWS = [SyncRun, ScheduledSyncRun, SkippedRun]
