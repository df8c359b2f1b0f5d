"""Names on the cluster: workflow, schedule and lease-holder ids (no Temporal import here).

One run per sync across the whole cluster rests on :func:`workflow_id`: every start of a sync,
from a schedule or by hand, asks Temporal for a workflow with this id, and Temporal keeps at
most one open workflow per id. The engine's lease (keyed by :func:`lease_names`) stays the
second fence, and the two are derived from the same key, so they agree on what "the same
sync" means.
"""

from __future__ import annotations

from ticketbridge.engine.spec import SyncSpec

__all__ = [
    "DEFAULT_TASK_QUEUE",
    "SCHEDULE_PREFIX",
    "WORKFLOW_PREFIX",
    "holder",
    "is_other_attempt",
    "lease_names",
    "schedule_id",
    "scheduled_workflow_id",
    "sync_of_schedule",
    "workflow_id",
]

DEFAULT_TASK_QUEUE = "ticketbridge"
WORKFLOW_PREFIX = "ticketbridge-sync:"
SCHEDULE_PREFIX = "ticketbridge-schedule:"
_SCHEDULED_PREFIX = "ticketbridge-scheduled:"
_HOLDER_PREFIX = "temporal:"


def _single_flight_key(spec: SyncSpec) -> str:
    # SyncSpec.lease_key (one run per TIXNGO organizer, whatever the sync) is being added on
    # another branch; until it lands every sync is its own key. getattr keeps this module
    # right on both sides of that merge.
    key = getattr(spec, "lease_key", None)
    return key if isinstance(key, str) and key else spec.name


def workflow_id(spec: SyncSpec) -> str:
    """The one workflow id of ``spec``'s runs: ``ticketbridge-sync:<sync>`` (or the sync's
    lease key, where its source has one: syncs sharing a lease never run at once, so they
    share a workflow id too)."""
    return WORKFLOW_PREFIX + _single_flight_key(spec)


def lease_names(spec: SyncSpec) -> list[str]:
    """The engine leases a run of ``spec`` holds: its own, and the shared one if it has one."""
    names = [spec.name]
    key = _single_flight_key(spec)
    if key != spec.name:
        names.append(key)
    return names


def schedule_id(sync: str) -> str:
    return SCHEDULE_PREFIX + sync


def sync_of_schedule(schedule: str) -> str | None:
    """The sync a schedule id of ours stands for; None for anyone else's schedule."""
    return schedule[len(SCHEDULE_PREFIX) :] if schedule.startswith(SCHEDULE_PREFIX) else None


def scheduled_workflow_id(sync: str) -> str:
    """Id of the small workflow a schedule starts (Temporal appends the time to it); it
    starts the sync's own workflow under :func:`workflow_id` as a child."""
    return _SCHEDULED_PREFIX + sync


def holder(workflow: str, run: str, attempt: int, where: str) -> str:
    """The engine lease holder of one activity attempt:
    ``temporal:<workflow id>:<run id>:<attempt>@<pid@host>``.

    It never looks like a local holder (``host:pid:…``), so ``holder_is_dead`` leaves it
    alone: only the cluster can tell that an attempt is over.
    """
    return f"{_HOLDER_PREFIX}{workflow}:{run}:{attempt}@{where}"


def is_other_attempt(current: str, workflow: str, mine: str) -> bool:
    """True if ``current`` is the holder of another attempt (or an earlier run) of the same
    workflow id than ``mine``.

    Temporal keeps one open workflow per id and starts an activity's next attempt only once
    it has given up on the previous one (failed, or silent past its heartbeat timeout), so
    such a holder is an attempt Temporal no longer waits for.
    """
    return current != mine and current.startswith(f"{_HOLDER_PREFIX}{workflow}:")
