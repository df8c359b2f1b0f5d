"""A sync's page: run history (filterable) and its chart, the configuration with secrets
masked, the field mapping (default and edited side by side), the checkpoint and its change."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ticketbridge.engine.leases import LeaseKeeper
from ticketbridge.engine.spec import SyncSpec
from ticketbridge.errors import LeaseBusy
from ticketbridge.web import queries
from ticketbridge.web.auth import User
from ticketbridge.web.charts import runs_chart
from ticketbridge.web.console import Console
from ticketbridge.web.pages.common import (
    console_of,
    date_arg,
    endpoints,
    int_arg,
    next_run,
    refuse,
)
from ticketbridge.web.redact import mask

OUTCOMES = ("ok", "partial", "failed", "skipped", "crashed", "running")
KINDS = ("run", "backfill", "retry", "dry-run", "checkpoint")


@dataclass
class MappingRow:
    field: str
    default: str | None
    edited: str | None

    @property
    def change(self) -> str:
        if self.default == self.edited:
            return ""
        if self.default is None:
            return "added"
        if self.edited is None:
            return "removed"
        return "changed"


def mapping_tables(spec: SyncSpec) -> dict[str, list[MappingRow]]:
    """The destination's field mappings, default beside edited, for a destination whose
    options have a ``mapping`` with defaults (Heyloyalty's list and tracking fields)."""
    mapping = getattr(spec.object_options, "mapping", None)
    if mapping is None or not hasattr(mapping, "member_fields"):
        return {}
    default = type(mapping)()
    tables = {"List fields (customer → member)": (default.member_fields(), mapping.member_fields())}
    if hasattr(mapping, "tracking_fields"):
        tables["Tracking fields (order → purchase event)"] = (
            default.tracking_fields,
            mapping.tracking_fields,
        )
    out: dict[str, list[MappingRow]] = {}
    for title, (before, after) in tables.items():
        names = list(dict.fromkeys([*before, *after]))
        out[title] = [MappingRow(n, before.get(n), after.get(n)) for n in names]
    return out


def config_yaml(console: Console, sync: str) -> str:
    """The sync's block and its two connections as in the project file, secrets masked."""
    project = console.project()
    cfg = project.sync_config(sync)
    block = cfg.model_dump(mode="json", by_alias=True, exclude_unset=True)
    block["source"] = cfg.source.model_dump(mode="json")
    block["destination"] = cfg.destination.model_dump(mode="json")
    connections = {
        name: project.file.connections[name]
        for name in dict.fromkeys((cfg.source.connection, cfg.destination.connection))
    }
    data = {"connections": connections, "syncs": {sync: block}}
    return yaml.safe_dump(mask(data), sort_keys=False, allow_unicode=True, width=100)


def _page_data(console: Console, sync: str, params: Any) -> dict[str, Any]:
    store = console.store
    project = console.project()
    flt = queries.RunFilter(
        outcome=params.get("outcome", "") if params.get("outcome") in OUTCOMES else "",
        kind=params.get("kind", "") if params.get("kind") in KINDS else "",
        before=int_arg(params.get("before")),
        since=date_arg(params.get("since")),
    )
    history, more = queries.runs_page(store, sync, flt)
    now = datetime.now(UTC)
    last = queries.last_run(store, sync)
    lease = store.get_lease(sync)
    ends = endpoints(project, sync)
    return {
        "sync": sync,
        "ends": ends,
        "next_run": next_run(ends.schedule, last, now),
        "filter": flt,
        "filter_since": params.get("since", ""),
        "outcomes": OUTCOMES,
        "kinds": KINDS,
        "history": history,
        "more": more,
        "chart": runs_chart(queries.chart_runs(store, sync)),
        "config": config_yaml(console, sync),
        "mappings": mapping_tables(project.get_sync(sync)),
        "checkpoint": store.get_checkpoint(sync),
        "lease": lease if lease is not None and lease.acquired_until > now else None,
        "open_letters": queries.open_letters(store, sync),
    }


async def sync_page(request: Request, user: User) -> Response:
    console = console_of(request)
    sync = request.path_params["sync"]
    if sync not in console.project().syncs:
        return refuse(request, 404, f"There is no sync named {sync!r} in the project file.")
    context = await run_in_threadpool(_page_data, console, sync, request.query_params)
    context["done"] = request.query_params.get("done", "")
    return console.render(request, "sync.html", context)


async def checkpoint(request: Request, user: User) -> Response:
    """Set the checkpoint in two steps: the first shows before and after, the second (with
    ``confirmed=yes``) writes it and records who did, as ``ticketbridge checkpoint --set``."""
    console = console_of(request)
    sync = request.path_params["sync"]
    if sync not in console.project().syncs:
        return refuse(request, 404, "There is no such sync.")
    form = await request.form()
    text = str(form.get("value") or "").strip()
    try:
        value = json.loads(text)
        if value is not None and not isinstance(value, dict):
            raise ValueError("a checkpoint is a JSON object (or null to start from scratch)")
    except ValueError as exc:
        return refuse(request, 400, f"Not a checkpoint: {exc}")
    store = console.store
    before = store.get_checkpoint(sync)
    lease = store.get_lease(sync)
    if lease is not None and lease.acquired_until > datetime.now(UTC):
        return refuse(
            request,
            409,
            f"A run of {sync} is in progress (held by {lease.holder}); it would overwrite the "
            "checkpoint at its next batch. Wait for it to finish.",
        )
    if form.get("confirmed") != "yes":
        return console.render(
            request,
            "checkpoint_confirm.html",
            {"sync": sync, "before": before, "after": value, "text": text},
        )
    try:
        # As `ticketbridge checkpoint --set`: under the sync's lease, so that no run can
        # overwrite it at its next commit, and recorded as a run with who set it.
        async with LeaseKeeper(store, sync) as lease:
            await run_in_threadpool(store.operator_set_checkpoint, sync, value, user.label, lease)
    except LeaseBusy:
        return refuse(request, 409, f"A run of {sync} started meanwhile: try again after it.")
    return RedirectResponse(f"/syncs/{sync}?done=checkpoint", status_code=303)
