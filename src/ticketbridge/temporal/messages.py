"""What workflows and activities pass each other: plain dataclasses, stdlib only, so the
workflow sandbox can import them and Temporal's JSON converter can carry them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunReport", "RunRequest"]


@dataclass
class RunRequest:
    """One run of one sync, as started by a schedule or by ``ticketbridge run --temporal``."""

    sync: str
    workflow_id: str  # ids.workflow_id(spec): computed where the project file is read
    today: str | None = None  # ISO date: run as if on this day (the CLI's --today)
    # A worker silent this long is taken for lost; its run moves to another worker.
    heartbeat_timeout_s: float = 30.0
    # Attempts of the run's activity, the first one included (auth and config errors: one).
    max_attempts: int = 10
    # Retries of a run that failed on an outage: the engine's back-off (http/retry.py).
    initial_retry_s: float = 0.5
    max_retry_s: float = 30.0
    run_timeout_s: float = 24 * 3600.0


@dataclass
class RunReport:
    """A finished attempt: what ``ticketbridge run`` prints, and where it ran."""

    sync: str
    outcome: str
    counters: dict[str, int] = field(default_factory=dict)
    run_id: int | None = None
    error: str | None = None
    error_type: str | None = None  # class name of the error that ended the run
    attempt: int = 1
    worker: str = ""
    # The checkpoint the attempt started from (an earlier attempt's last commit).
    resumed_from: dict[str, Any] | None = None
    engine_s: float = 0.0  # seconds inside the engine (the rest is the cluster's overhead)

    @classmethod
    def from_details(cls, value: Any) -> RunReport | None:
        """A report carried as an error's details (a dict once it crossed the wire)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict) and "sync" in value and "outcome" in value:
            known = {k: v for k, v in value.items() if k in cls.__dataclass_fields__}
            return cls(**known)
        return None
