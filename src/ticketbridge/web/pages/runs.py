"""A run's page: outcome, counters, calls, rate-budget waits, timings, who started it, its
log lines and its rejected records; a running run updates in place (htmx polling, or a plain
refresh without script) with a progress bar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ticketbridge.engine.leases import holder_is_dead
from ticketbridge.engine.state.base import RunRow
from ticketbridge.web import queries
from ticketbridge.web.auth import User
from ticketbridge.web.console import Console
from ticketbridge.web.pages.common import console_of, refuse
from ticketbridge.web.redact import mask

REJECTED_SHOWN = 100


@dataclass
class Progress:
    """How far a running run is: a share when it can be known or estimated, and how."""

    value: float | None  # 0..1, None: unknown
    text: str


def progress_of(console: Console, run: RunRow) -> Progress:
    c = run.counters
    done = f"{c.read} read, {c.created + c.updated} sent"
    if run.kind == "backfill":
        state = (console.store.get_checkpoint(run.sync) or {}).get("backfill") or {}
        chunks = len(state.get("chunks") or [])
        if chunks:
            index = int(state.get("index", 0))
            return Progress(index / chunks, f"chunk {index + 1} of {chunks}; {done}")
    previous = queries.last_run(console.store, run.sync, finished=True)
    if previous is not None and previous.id != run.id and previous.counters.read > 0:
        expected = previous.counters.read
        share = min(0.99, c.read / expected)
        return Progress(share, f"{done}; the last run read {expected}")
    return Progress(None, done)


def _run_data(console: Console, run_id: int) -> dict[str, Any] | None:
    run = console.store.get_run(run_id)
    if run is None:
        return None
    if run.outcome == "running" and console.store.close_abandoned_runs(is_dead=holder_is_dead):
        run = console.store.get_run(run_id) or run  # its process is gone: now "crashed"
    job = console.jobs.for_run(run_id)
    rejected, total = queries.run_letters(console.store, run.sync, run.id, REJECTED_SHOWN)
    detail = run.detail
    log = list(job.log) if job is not None and not detail.get("log") else detail.get("log", [])
    took = (
        (run.finished_at - run.started_at).total_seconds()
        if run.finished_at is not None
        else (datetime.now(UTC) - run.started_at).total_seconds()
    )
    c = run.counters
    return {
        "run": run,
        "running": run.outcome == "running",
        "progress": progress_of(console, run) if run.outcome == "running" else None,
        "started_by": detail.get("started_by") or detail.get("by") or "",
        "budget_wait_s": detail.get("budget_wait_s"),
        "seconds": took,
        "per_second": (c.read / took) if took > 0 and c.read else None,
        "log": log,
        "rejected": rejected,
        "rejected_total": total,
        "plan": [mask(entry) for entry in detail.get("plan", [])],
        "plan_omitted": detail.get("plan_omitted", 0),
        "import": detail.get("import"),
        "checkpoint_change": (
            {"before": detail.get("old"), "after": detail.get("new")}
            if run.kind == "checkpoint"
            else None
        ),
        "reason": detail.get("reason"),
    }


async def run_page(request: Request, user: User) -> Response:
    console = console_of(request)
    data = await run_in_threadpool(_run_data, console, request.path_params["run"])
    if data is None:
        return refuse(request, 404, "There is no such run.")
    return console.render(request, "run.html", data)


async def progress(request: Request, user: User) -> Response:
    """The live part of a running run's page; once the run ends, the whole page reloads."""
    console = console_of(request)
    data = await run_in_threadpool(_run_data, console, request.path_params["run"])
    if data is None:
        return refuse(request, 404, "There is no such run.")
    headers = {} if data["running"] else {"HX-Refresh": "true"}
    return console.render(request, "run_live.html", data, headers=headers)
