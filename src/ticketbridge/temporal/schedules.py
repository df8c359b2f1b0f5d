"""``ticketbridge schedules apply``: each sync's ``schedule`` as a Temporal Schedule.

* ``"0 4 * * *"`` becomes a cron spec in the sync's ``schedule_timezone`` (UTC unless set, as
  the embedded scheduler reads it), ``every 5m`` an interval spec.
* Overlap policy SKIP: a fire while the sync's previous scheduled run is still going does
  nothing. (A run started by hand is caught one level down: the scheduled workflow's child
  has the sync's single-flight id, so it is refused and recorded ``skipped: running``.)
* The catch-up window bounds how late a fire missed while the cluster was down may still
  happen (Temporal's own default is a year: a daily sync would then run every missed day at
  once after an outage).
* Schedules whose id is ours (``ticketbridge-schedule:``) but whose sync is no longer
  scheduled in the project file are deleted. One project per namespace: another project's
  schedules in the same namespace would look like ours.
* A schedule paused by an operator stays paused when it is updated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from ticketbridge.engine.scheduler import Schedule as ParsedSchedule
from ticketbridge.errors import ConfigError
from ticketbridge.project import Project
from ticketbridge.temporal import ids
from ticketbridge.temporal.messages import RunRequest
from ticketbridge.temporal.workflows import ScheduledSyncRun

__all__ = ["Applied", "apply_schedules", "desired_schedules"]


@dataclass(frozen=True)
class Applied:
    sync: str
    action: str  # created | updated | removed
    schedule: str  # the project file's text, or "" for a removed one


def _spec(parsed: ParsedSchedule) -> ScheduleSpec:
    if parsed.interval is not None:
        return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=parsed.interval)])
    return ScheduleSpec(cron_expressions=[parsed.text], time_zone_name=parsed.timezone)


def desired_schedules(
    project: Project, task_queue: str, catchup: timedelta, request: RunRequest | None = None
) -> dict[str, tuple[str, Schedule]]:
    """sync -> (its schedule text, the Temporal Schedule for it), for every scheduled sync."""
    out: dict[str, tuple[str, Schedule]] = {}
    for name, cfg in project.file.syncs.items():
        try:
            parsed = cfg.parsed_schedule()
        except ValueError as exc:
            raise ConfigError(str(exc), field=f"syncs.{name}.schedule") from None
        if parsed is None:
            continue
        base = request or RunRequest(sync=name, workflow_id="")
        run = RunRequest(
            **{
                **base.__dict__,
                "sync": name,
                "workflow_id": ids.workflow_id(project.get_sync(name)),
            }
        )
        action = ScheduleActionStartWorkflow(
            ScheduledSyncRun.run,
            run,
            id=ids.scheduled_workflow_id(name),
            task_queue=task_queue,
        )
        policy = SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=catchup)
        out[name] = (parsed.label(), Schedule(action=action, spec=_spec(parsed), policy=policy))
    return out


async def apply_schedules(
    client: Client,
    project: Project,
    task_queue: str,
    catchup: timedelta,
    request: RunRequest | None = None,
) -> list[Applied]:
    """Create or update every scheduled sync's schedule, delete ours that are gone."""
    if catchup < timedelta(seconds=10):
        raise ConfigError("the catch-up window must be at least 10s (Temporal's minimum)")
    desired = desired_schedules(project, task_queue, catchup, request)
    done: list[Applied] = []
    for sync, (text, schedule) in desired.items():
        sid = ids.schedule_id(sync)
        try:
            await client.create_schedule(sid, schedule)
            done.append(Applied(sync, "created", text))
        except ScheduleAlreadyRunningError:

            def replace(current: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                new.state = current.description.schedule.state  # keep an operator's pause
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(sid).update(replace)
            done.append(Applied(sync, "updated", text))
    async for listed in await client.list_schedules():
        gone = ids.sync_of_schedule(listed.id)
        if gone is None or gone in desired:
            continue
        try:
            await client.get_schedule_handle(listed.id).delete()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # listings lag: already gone is fine
                raise
            continue
        done.append(Applied(gone, "removed", ""))
    return done
