"""The overview: every sync with its endpoints, schedule, last run, dead letters and lease."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ticketbridge.engine.leases import holder_is_dead
from ticketbridge.engine.state.base import Lease, RunRow
from ticketbridge.web import queries
from ticketbridge.web.auth import User
from ticketbridge.web.console import Console
from ticketbridge.web.pages.common import Endpoints, console_of, endpoints, next_run


@dataclass
class SyncRow:
    name: str
    ends: Endpoints
    next_run: datetime | None
    last: RunRow | None
    open_letters: int
    lease: Lease | None  # held now
    running_id: int | None


def sync_rows(console: Console) -> list[SyncRow]:
    project = console.project()
    store = console.store
    now = datetime.now(UTC)
    rows = [_row(console, name, now) for name in project.syncs]
    if any(_abandoned(row) for row in rows):
        # As `ticketbridge runs` does: a run whose process died says so (crashed), not
        # running. Only then: it is a write, and a scan of the runs.
        store.close_abandoned_runs(is_dead=holder_is_dead)
        rows = [_row(console, name, now) for name in project.syncs]
    return rows


def _abandoned(row: SyncRow) -> bool:
    return (
        row.last is not None
        and row.last.outcome == "running"
        and (row.lease is None or holder_is_dead(row.lease.holder))
    )


def _row(console: Console, name: str, now: datetime) -> SyncRow:
    store = console.store
    last = queries.last_run(store, name)
    lease = store.get_lease(name)
    held = lease if lease is not None and lease.acquired_until > now else None
    ends = endpoints(console.project(), name)
    return SyncRow(
        name=name,
        ends=ends,
        next_run=next_run(ends.schedule, last, now),
        last=last,
        open_letters=queries.open_letters(store, name),
        lease=held,
        running_id=queries.running_run(store, name) if held else None,
    )


async def overview(request: Request, user: User) -> Response:
    console = console_of(request)
    rows = await run_in_threadpool(sync_rows, console)
    project = console.project()
    sales = None
    if project.supplier_api is not None:
        _, _, sales = await run_in_threadpool(queries.sales_page, console.store, "", None, 1)
    return console.render(
        request,
        "overview.html",
        {"rows": rows, "sales": sales, "jobs": console.jobs.running()},
    )
