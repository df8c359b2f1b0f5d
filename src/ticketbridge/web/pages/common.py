"""Helpers the page modules share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ticketbridge.engine.scheduler import Schedule
from ticketbridge.engine.state.base import RunRow
from ticketbridge.project import Project
from ticketbridge.web.console import Console


def console_of(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def refuse(request: Request, status: int, message: str) -> Response:
    """An error page (401, 403, 404, 409) saying what happened and what to do."""
    return console_of(request).render(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )


@dataclass
class Endpoints:
    source: str  # "ticketco (ticketco · bookings)"
    destination: str
    schedule: Schedule | None


def endpoints(project: Project, sync: str) -> Endpoints:
    cfg = project.sync_config(sync)
    src = project.connections[cfg.source.connection].platform
    dst = project.connections[cfg.destination.connection].platform
    return Endpoints(
        source=f"{cfg.source.connection} ({src} · {cfg.source.stream})",
        destination=f"{cfg.destination.connection} ({dst} · {cfg.destination.object})",
        schedule=cfg.parsed_schedule(),
    )


def next_run(parsed: Schedule | None, last: RunRow | None, now: datetime) -> datetime | None:
    """When ``ticketbridge serve`` starts the sync next: a cron's next time; an interval's
    after the last run's start (now, if that is past)."""
    if parsed is None:
        return None
    if parsed.interval is None:
        return parsed.next_after(now)
    if last is None:
        return now + parsed.interval
    return max(now, last.started_at + parsed.interval)


def int_arg(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def date_arg(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None
    except ValueError:
        return None


def counters_summary(counters: Any) -> str:
    c = counters
    return (
        f"read {c.read} · created {c.created} · updated {c.updated} · unchanged {c.unchanged}"
        f" · rejected {c.rejected}"
    )
