"""Actions: run now, dry-run plan, retry, manual import. Each calls what the CLI calls
(``Runtime.run`` with the same ``RunOptions``, ``manual_import.prepare_import``) on the
console's worker loop, and is recorded in the run history with who started it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ticketbridge.connectors.base import Window
from ticketbridge.engine.spec import RunOptions, RunResult, SyncSpec
from ticketbridge.engine.windows import today_in
from ticketbridge.errors import ConfigError, TicketbridgeError
from ticketbridge.manual_import import ImportChoices, prepare_import, switches_of
from ticketbridge.web.auth import User
from ticketbridge.web.console import Console
from ticketbridge.web.jobs import Job
from ticketbridge.web.pages.common import console_of, refuse

PLAN_KEPT = 200  # planned changes a dry run's history entry keeps (the rest are counted)
IMPORT_TYPES = ("create", "create_update", "update")


def _sync_or_none(console: Console, request: Request) -> str | None:
    sync = request.path_params["sync"]
    return sync if sync in console.project().syncs else None


def start_run(
    console: Console,
    sync: str,
    user: User,
    opts: RunOptions,
    spec: SyncSpec | None = None,
) -> Job:
    """Start ``opts`` on the worker loop; the job learns its run id as soon as it is stored."""
    job = Job(sync=sync, kind="dry-run" if opts.dry_run else opts.kind, started_by=user.label)
    opts.detail = {"started_by": user.label, **opts.detail}
    opts.on_start = job.started
    opts.on_progress = job.progress

    async def work(job: Job) -> None:
        runtime = console.runtime()
        runtime.project.require_env()  # an unset secret: said on the job's page, nothing runs
        result = await runtime.run(sync, opts, spec)
        job.outcome, job.error, job.counters = result.outcome, result.error, result.counters
        if opts.dry_run:
            job.run_id = record_plan(console, result, opts.detail)
        elif result.run_id is not None:
            job.run_id = result.run_id

    return console.jobs.start(job, work)


def record_plan(console: Console, result: RunResult, detail: dict[str, Any]) -> int:
    """A dry run writes nothing of the sync; its plan goes in the history as an action."""
    kept = result.plan[:PLAN_KEPT]
    omitted = result.plan_omitted + len(result.plan) - len(kept)
    return console.store.record_action(
        result.sync,
        "dry-run",
        "ok" if result.outcome == "ok" else "failed",
        {**detail, "plan": kept, "plan_omitted": omitted},
        result.counters,
        result.error,
    )


def _go(job: Job) -> Response:
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


async def run_now(request: Request, user: User) -> Response:
    console = console_of(request)
    sync = _sync_or_none(console, request)
    if sync is None:
        return refuse(request, 404, "There is no such sync.")
    return _go(start_run(console, sync, user, RunOptions()))


async def dry_run(request: Request, user: User) -> Response:
    console = console_of(request)
    sync = _sync_or_none(console, request)
    if sync is None:
        return refuse(request, 404, "There is no such sync.")
    return _go(start_run(console, sync, user, RunOptions(dry_run=True)))


async def retry_all(request: Request, user: User) -> Response:
    console = console_of(request)
    sync = _sync_or_none(console, request)
    if sync is None:
        return refuse(request, 404, "There is no such sync.")
    return _go(start_run(console, sync, user, RunOptions(kind="retry")))


async def job_page(request: Request, user: User) -> Response:
    console = console_of(request)
    job = console.jobs.get(request.path_params["job"])
    if job is None:
        return refuse(request, 404, "No such action (the console was restarted?): see the runs.")
    if job.run_id is not None:
        if request.headers.get("hx-request"):
            # htmx would follow a redirect inside the page; this makes the browser go there.
            return Response(headers={"HX-Redirect": f"/runs/{job.run_id}"})
        return RedirectResponse(f"/runs/{job.run_id}", status_code=303)
    return console.render(request, "job.html", {"job": job})


# --- manual import -----------------------------------------------------------------------


def _tri(value: Any) -> bool | None:
    """A switch of the form: "yes", "no", or "" (the sync's own setting)."""
    text = str(value or "").strip().lower()
    return {"yes": True, "no": False}.get(text)


def _day(value: Any, name: str) -> date | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None


def choices_from(values: FormData | QueryParams) -> ImportChoices:
    """The form's choices. Raises ValueError naming a bad field."""
    start = _day(values.get("start"), "from")
    if start is None:
        raise ValueError("from: a first day is needed")
    import_type = str(values.get("import_type") or "").strip() or None
    if import_type is not None and import_type not in IMPORT_TYPES:
        raise ValueError(f"import type: {import_type!r} is not one of {', '.join(IMPORT_TYPES)}")
    return ImportChoices(
        start=start,
        end=_day(values.get("end"), "to"),
        members=_tri(values.get("members")),
        orders=_tri(values.get("orders")),
        resubscribe=_tri(values.get("resubscribe")),
        send_optin=_tri(values.get("send_optin")),
        automations=_tri(values.get("automations")),
        import_type=import_type,
    )


def _defaults(spec: SyncSpec) -> dict[str, str]:
    today = today_in(spec.days_zone)
    start = spec.backfill_from or (today - timedelta(days=365))
    return {"start": start.isoformat(), "end": today.isoformat()}


@dataclass
class Chunk:
    first: date
    last: date  # inclusive
    days: int


def chunk_days(windows: list[Window], tz: str) -> list[Chunk]:
    """The chunks as the days they cover, in the sync's time zone (windows end exclusive)."""
    zone = ZoneInfo(tz)
    out = []
    for w in windows:
        first = w.start.astimezone(zone).date()
        end = w.end.astimezone(zone).date()
        out.append(Chunk(first, end - timedelta(days=1), (end - first).days))
    return out


def _chunks(
    console: Console, sync: str, values: FormData | QueryParams
) -> tuple[list[Chunk], str | None]:
    try:
        prepared = prepare_import(console.project(), sync, choices_from(values))
    except (ValueError, ConfigError, TicketbridgeError) as exc:
        return [], str(exc)
    return chunk_days(prepared.chunks, prepared.spec.days_zone), None


def _form_context(
    console: Console, sync: str, values: FormData | QueryParams | None
) -> dict[str, Any]:
    spec = console.project().get_sync(sync)
    chosen: dict[str, str] = _defaults(spec)
    if values is not None:
        chosen.update({k: str(v) for k, v in values.items() if k != "csrf"})
    chunks, error = _chunks(console, sync, QueryParams(chosen))
    return {
        "sync": sync,
        "switches": switches_of(spec),
        "import_types": IMPORT_TYPES,
        "chosen": chosen,
        "chunks": chunks,
        "chunk_error": error,
        "chunk_length": spec.backfill_chunk.days,
    }


async def import_form(request: Request, user: User) -> Response:
    console = console_of(request)
    sync = _sync_or_none(console, request)
    if sync is None:
        return refuse(request, 404, "There is no such sync.")
    values = request.query_params if request.query_params else None
    context = await run_in_threadpool(_form_context, console, sync, values)
    return console.render(request, "import.html", context)


async def import_chunks(request: Request, user: User) -> Response:
    """The chunks of the range in the form, as the form changes (htmx)."""
    console = console_of(request)
    sync = _sync_or_none(console, request)
    if sync is None:
        return refuse(request, 404, "There is no such sync.")
    context = await run_in_threadpool(_form_context, console, sync, request.query_params)
    return console.render(request, "import_chunks.html", context)


async def start_import(request: Request, user: User) -> Response:
    console = console_of(request)
    sync = _sync_or_none(console, request)
    if sync is None:
        return refuse(request, 404, "There is no such sync.")
    form = await request.form()
    try:
        choices = choices_from(form)
        prepared = prepare_import(console.project(), sync, choices)
    except (ValueError, ConfigError, TicketbridgeError) as exc:
        context = _form_context(console, sync, form)
        context["error"] = str(exc)
        return console.render(request, "import.html", context, status_code=400)
    opts = prepared.opts
    opts.detail = {
        "import": {
            "from": choices.start.isoformat(),
            "to": (choices.end.isoformat() if choices.end else None),
            **{
                k: getattr(choices, k)
                for k in ("members", "orders", "resubscribe", "send_optin", "automations")
                if getattr(choices, k) is not None
            },
            **({"import_type": choices.import_type} if choices.import_type else {}),
            "chunks": [[w.start.isoformat(), w.end.isoformat()] for w in prepared.chunks],
        }
    }
    return _go(start_run(console, sync, user, opts, prepared.spec))
