"""The ``ticketbridge`` command line (DESIGN section 7).

Exit codes: 0 ok (also "skipped: running"), 1 run failed (and ``check`` when a check failed),
2 usage or config error (a bad option, an unknown sync, a busy sandbox port), 3 partial.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import socket
import sys
import time
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from ticketbridge import cpu_policy, dead_letters, logs, process_exit
from ticketbridge.engine.leases import LeaseKeeper, holder_is_dead
from ticketbridge.engine.spec import RunOptions, RunResult
from ticketbridge.engine.state.base import RunCounters, RunRow, StateStore
from ticketbridge.errors import ConfigError, LeaseBusy, StateError, TicketbridgeError
from ticketbridge.http.context import HttpContext
from ticketbridge.links import link_rows, write_csv
from ticketbridge.project import ConfigProblems, Project, load_project
from ticketbridge.run_command import cli_user, run_once, tune_gc
from ticketbridge.runtime import NOT_CHECKED, Runtime, check_project

app = typer.Typer(
    no_args_is_help=True,
    help="Sync live-event ticketing data between platforms.",
)
sandbox_app = typer.Typer(no_args_is_help=True, help="Run the platform sandboxes.")
app.add_typer(sandbox_app, name="sandbox")
schedules_app = typer.Typer(no_args_is_help=True, help="Syncs' schedules on a Temporal cluster.")
app.add_typer(schedules_app, name="schedules")


def _console(stderr: bool = False) -> Console:
    """A terminal gets Rich's layout; a pipe or a file gets lines as long as they are (no
    hard wrap at 80 columns, which breaks grep and CI logs)."""
    stream = sys.stderr if stderr else sys.stdout
    # No emoji codes: "ticketbridge.yaml:100:" must not print as "ticketbridge.yaml💯".
    if stream.isatty():
        return Console(stderr=stderr, emoji=False)
    return Console(stderr=stderr, soft_wrap=True, width=100_000, emoji=False)


out = _console()
err = _console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Project file (default ./ticketbridge.yaml).", show_default=False
    ),
]
DEFAULT_CONFIG = Path("ticketbridge.yaml")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")


class _State:
    log_level = "INFO"
    log_json = False
    config: Path | None = None


def _version() -> str:
    try:
        return version("ticketbridge")
    except PackageNotFoundError:
        return "dev"


def _show_version(value: bool) -> None:
    if value:
        out.print(f"ticketbridge {_version()}", highlight=False)
        raise typer.Exit(0)


def _log_level(value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
    return value.upper()


def _log_format(value: str) -> str:
    if value.lower() not in LOG_FORMATS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(LOG_FORMATS)}")
    return value.lower()


def _day(value: str) -> date:
    """A YYYY-MM-DD option; a bad one is a usage error naming the option (exit 2)."""
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        why = "" if "isoformat" in str(exc) else f": {exc}"
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD){why}") from None


DayOpt = Annotated[
    date | None, typer.Option(parser=_day, metavar="YYYY-MM-DD", help="Run as if on this date.")
]


@app.callback()
def _main(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Project file (default ./ticketbridge.yaml); also accepted after the command.",
            envvar="TICKETBRIDGE_CONFIG",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str,
        typer.Option(
            help="DEBUG, INFO, WARNING or ERROR.",
            envvar="TICKETBRIDGE_LOG_LEVEL",
            callback=_log_level,
        ),
    ] = "INFO",
    log_format: Annotated[
        str,
        typer.Option(
            help="Log lines on stderr as text or json (one JSON object a line).",
            envvar="TICKETBRIDGE_LOG_FORMAT",
            callback=_log_format,
        ),
    ] = "text",
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    _State.config = config
    _State.log_level = log_level
    _State.log_json = log_format == "json"
    logs.configure(log_level, json=_State.log_json)


def _config_path(config: Path | None) -> Path:
    """The command's ``--config``, else the global one (or TICKETBRIDGE_CONFIG), else the
    default."""
    return config or _State.config or DEFAULT_CONFIG


def _print_config_error(exc: ConfigError) -> None:
    problems = getattr(exc, "problems", None) if isinstance(exc, ConfigProblems) else None
    if problems:
        err.print(f"[red]config error:[/red] {len(problems)} problems", highlight=False)
        for problem in problems:
            err.print(f"  {problem}", highlight=False)
    else:
        # escape: a message may hold brackets (``pip install 'ticketbridge[temporal]'``).
        err.print(f"[red]config error:[/red] {escape(str(exc))}", highlight=False)


def _load(config: Path | None, secrets: bool = True) -> Project:
    """Load the project file. ``secrets=False`` for commands that open no connection: an
    unset ``${VAR}`` is then not an error."""
    try:
        project = load_project(_config_path(config), secrets=secrets)
    except ConfigError as exc:
        _print_config_error(exc)
        raise typer.Exit(2) from None
    logs.configure(_State.log_level, project.secrets(), json=_State.log_json)
    return project


def _known_sync(project: Project, sync: str) -> None:
    """An unknown sync is a usage error (exit 2) in every command."""
    try:
        project.get_sync(sync)
    except ConfigError as exc:
        raise _fail_config(exc) from None


def _fail_config(exc: TicketbridgeError) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}", highlight=False)
    return typer.Exit(2)


def _reason(outcome: str, reason: str | None) -> str | None:
    """The reason without the outcome repeated ("skipped: running" -> "running")."""
    if reason and reason.startswith(f"{outcome}: "):
        return reason[len(outcome) + 2 :]
    return reason


def _duration(r: RunRow) -> float | None:
    if r.finished_at is None:
        return None
    return round((r.finished_at - r.started_at).total_seconds(), 1)


def run_lines(r: RunRow) -> list[str]:
    c = r.counters
    reason = _reason(r.outcome, (r.detail or {}).get("reason") or r.error)
    outcome = r.outcome + (f" ({reason})" if reason else "")
    took = _duration(r)
    timing = (
        "still running"
        if r.finished_at is None
        else f"{took:g} s, finished {r.finished_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    head = f"#{r.id}  {r.started_at:%Y-%m-%d %H:%M} UTC  {r.sync}  {r.kind}: {outcome}"
    if r.kind == "checkpoint":
        d = r.detail or {}
        return [
            head,
            f"    set by {d.get('by')}: {json.dumps(d.get('old'))} -> {json.dumps(d.get('new'))}",
        ]
    return [
        f"{head}  ({timing})",
        f"    read {c.read}, created {c.created}, updated {c.updated}, unchanged "
        f"{c.unchanged}, rejected {c.rejected}, skipped {c.skipped_policy + c.skipped_filter}"
        f"; API calls {c.source_calls} source / {c.destination_calls} destination",
    ]


def summary_lines(result: RunResult) -> list[str]:
    c = result.counters
    head = f"{result.sync}" + (f" (run {result.run_id})" if result.run_id else "")
    lines = [
        f"{head}: {result.outcome}",
        f"  read {c.read} · created {c.created} · updated {c.updated} · unchanged "
        f"{c.unchanged} · rejected {c.rejected}",
        f"  skipped by policy {c.skipped_policy} · by filter {c.skipped_filter} · "
        f"dead letters retried {c.retried}",
        f"  API calls: source {c.source_calls}, destination {c.destination_calls}",
    ]
    if c.rejected and result.dry_run:
        lines.append(f"  {c.rejected} record(s) would be refused (reasons above)")
    elif c.rejected:
        lines.append(
            f"  {c.rejected} record(s) could not be sent: ticketbridge errors {result.sync}"
        )
    if result.dry_run:
        lines.append("  dry run: nothing was written and no state was stored")
    return lines


def _plan_detail(entry: dict[str, Any]) -> str:
    if entry["action"] == "reject":
        return str(entry.get("reason") or "")
    fields: dict[str, Any] = entry.get("fields") or {}
    if entry["action"] == "skipped_policy":
        return "changed " + ", ".join(entry.get("changed") or []) + "; the write policy sends none"
    if entry["action"] == "update":
        # What changed since the last acknowledged write, by entity: the fields it would send.
        return "; ".join(f"{e}: {', '.join(sorted(f))}" for e, f in sorted(fields.items()))
    return "; ".join(f"{e} ({len(f)} fields)" for e, f in sorted(fields.items()))


def _print_plan(result: RunResult) -> None:
    """A dry run's plan as a table: every create, update and refusal, then the counts."""
    c = result.counters
    table = Table(title=f"plan of {result.sync}", title_justify="left")
    for column in ("action", "record", "what"):
        table.add_column(column, overflow="fold")
    for entry in result.plan:
        table.add_row(entry["action"], entry["key"], _plan_detail(entry))
    if result.plan:
        out.print(table)
    if result.plan_omitted:
        out.print(f"(and {result.plan_omitted} more planned changes not listed)")
    out.print(
        f"plan: {c.created} to create, {c.updated} to update, {c.unchanged} unchanged, "
        f"{c.rejected} refused, {c.skipped_policy} held back by the write policy, "
        f"{c.skipped_filter} filtered out",
        highlight=False,
        soft_wrap=True,
    )


class Progress:
    """A Rich progress display on a terminal, plain log lines every few seconds otherwise."""

    def __init__(self, sync: str) -> None:
        self.sync = sync
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.status: Any = None

    def __enter__(self) -> Progress:
        if self.tty:
            self.status = err.status(f"{self.sync}: starting")
            self.status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.__exit__(None, None, None)

    def __call__(self, c: RunCounters) -> None:
        line = (
            f"{self.sync}: read {c.read}, created {c.created}, updated {c.updated}, "
            f"unchanged {c.unchanged}, rejected {c.rejected}, "
            f"calls {c.source_calls}/{c.destination_calls}"
        )
        if self.status is not None:
            self.status.update(line)
        elif time.monotonic() - self.last > 2.0:
            self.last = time.monotonic()
            err.print(line, highlight=False)


def _print_result(result: RunResult, as_json: bool) -> None:
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "sync": result.sync,
                    "outcome": result.outcome,
                    "run_id": result.run_id,
                    "error": result.error,
                    **result.counters.as_dict(),
                    "plan": result.plan,
                    "plan_omitted": result.plan_omitted,
                },
                default=str,
            )
        )
        return
    for line in summary_lines(result):
        out.print(line, highlight=False, soft_wrap=True)
    if result.error:
        message = _reason(result.outcome, result.error)
        err.print(f"[yellow]{result.outcome}:[/yellow] {message}", highlight=False)


def _open_env(project: Project) -> None:
    """A command that opens connections: every ``${VAR}`` must be set."""
    try:
        project.require_env()
    except ConfigError as exc:
        _print_config_error(exc)
        raise typer.Exit(2) from None


def _open(project: Project) -> Runtime:
    """The runtime of a command that opens connections: every ``${VAR}`` must be set."""
    _open_env(project)
    return Runtime.open(project)


def _run(config: Path | None, sync: str, opts: RunOptions, as_json: bool) -> None:
    path = _config_path(config)
    code = run_once(path, sync, opts, as_json, _State.log_level, _State.log_json)
    raise typer.Exit(code)


TemporalOpt = Annotated[
    str | None,
    typer.Option("--temporal", metavar="HOST:PORT", help="Temporal cluster address."),
]
NamespaceOpt = Annotated[
    str | None, typer.Option(help="Temporal namespace (default: TEMPORAL_NAMESPACE or default).")
]
TaskQueueOpt = Annotated[str, typer.Option(help="Temporal task queue of the workers.")]


def _temporal(body: Any) -> Any:
    """Run a Temporal command's body (ticketbridge.temporal.commands): a config error or an
    unreachable cluster is one line, exit 2 or 1."""
    from ticketbridge.temporal import load_commands

    try:
        return body(load_commands())
    except ConfigError as exc:
        _print_config_error(exc)
        raise typer.Exit(2) from None
    except TicketbridgeError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None


@app.command()
def run(
    sync: str,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    today: DayOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    temporal: TemporalOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = "ticketbridge",
    config: ConfigOpt = None,
) -> None:
    """Run one sync once (with --temporal: on a worker of the cluster, and wait for it)."""
    if temporal is None:
        _run(config, sync, RunOptions(dry_run=dry_run, today=today), as_json)
    if dry_run:
        raise typer.BadParameter(
            "a dry run runs here: leave out --temporal", param_hint="'--dry-run'"
        )
    project = _load(config, secrets=False)
    _known_sync(project, sync)
    result, code = _temporal(
        lambda c: c.run_in_cluster(
            project,
            c.Cluster(temporal, namespace, task_queue),
            sync,
            today,
            lambda m: err.print(m, highlight=False),
        )
    )
    _print_result(result, as_json)
    raise typer.Exit(code)


@app.command()
def worker(
    temporal: TemporalOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = "ticketbridge",
    concurrency: Annotated[int, typer.Option(min=1, help="Runs at once in this process.")] = 4,
    config: ConfigOpt = None,
) -> None:
    """Run syncs as Temporal workflows (state in PostgreSQL, shared by every worker)."""
    project = _load(config)
    _open_env(project)
    try:
        cpu_policy.choice()  # read by the readers its runs fork
    except ValueError as exc:
        _print_config_error(ConfigError(str(exc)))  # as run prints it, the value escaped
        raise typer.Exit(2) from None

    def say(line: str) -> None:
        out.print(line, highlight=False)
        out.file.flush()  # a worker runs for days: its log must not wait in a buffer

    _temporal(
        lambda c: c.worker(project, c.Cluster(temporal, namespace, task_queue), concurrency, say)
    )


@schedules_app.command("apply")
def schedules_apply(
    temporal: TemporalOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = "ticketbridge",
    catchup_window: Annotated[
        str, typer.Option(help="How late a fire missed while the cluster was down may run.")
    ] = "1h",
    config: ConfigOpt = None,
) -> None:
    """Each sync's schedule as a Temporal Schedule (overlap: skip); removes schedules of syncs
    no longer scheduled in the project file."""
    from ticketbridge.engine.windows import parse_duration

    try:
        catchup = parse_duration(catchup_window)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--catchup-window'") from None
    project = _load(config, secrets=False)
    applied, where = _temporal(
        lambda c: c.schedules_apply(project, c.Cluster(temporal, namespace, task_queue), catchup)
    )
    for a in applied:
        out.print(
            f"{a.action} {a.sync}" + (f" ({a.schedule})" if a.schedule else ""), highlight=False
        )
    out.print(f"schedules: {len(applied)} applied on {where}", highlight=False)


def _pairs(values: list[str] | None, flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{flag} takes KEY=VALUE, not {item!r}")
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
    return out


@app.command()
def backfill(
    sync: str,
    from_: Annotated[
        date, typer.Option("--from", parser=_day, metavar="YYYY-MM-DD", help="First day.")
    ],
    to: Annotated[
        date | None,
        typer.Option(parser=_day, metavar="YYYY-MM-DD", help="Day after the last (default today)."),
    ] = None,
    chunk: Annotated[str | None, typer.Option(help="Largest chunk, e.g. 365d, 30d.")] = None,
    members: Annotated[
        bool | None, typer.Option("--members/--no-members", help="Import members (customers).")
    ] = None,
    orders: Annotated[
        bool | None, typer.Option("--orders/--no-orders", help="Import orders (purchase tracking).")
    ] = None,
    resubscribe: Annotated[
        bool | None,
        typer.Option(
            "--resubscribe/--no-resubscribe", help="Re-create members who unsubscribed earlier."
        ),
    ] = None,
    send_optin: Annotated[
        bool | None,
        typer.Option("--send-optin/--no-send-optin", help="Members must confirm by email first."),
    ] = None,
    automations: Annotated[
        bool | None,
        typer.Option(
            "--automations/--no-automations", help="Trigger automations (welcome mails…)."
        ),
    ] = None,
    set_source: Annotated[
        list[str] | None,
        typer.Option("--set-source", help="Override a source setting for this import: KEY=VALUE."),
    ] = None,
    set_destination: Annotated[
        list[str] | None,
        typer.Option("--set-destination", help="Override a destination setting: KEY=VALUE."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = None,
) -> None:
    """Historic / manual import in bounded chunks; resumes in the chunk it stopped in.

    The switches override the sync's settings for this import only (a manual import of the
    Heyloyalty kind: members, orders, re-subscribe, opt-in mail, automations).
    """
    from ticketbridge.manual_import import ImportChoices, prepare_import

    project = _load(config)
    _known_sync(project, sync)
    choices = ImportChoices(
        start=from_,
        end=to,
        chunk=chunk,
        members=members,
        orders=orders,
        resubscribe=resubscribe,
        send_optin=send_optin,
        automations=automations,
        source=_pairs(set_source, "--set-source"),
        destination=_pairs(set_destination, "--set-destination"),
    )
    try:
        prepared = prepare_import(project, sync, choices)
    except ValueError as exc:
        if chunk and "duration" in str(exc):
            raise typer.BadParameter(str(exc), param_hint="'--chunk'") from None
        err.print(f"[red]error:[/red] {sync}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {sync}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    opts = prepared.opts
    opts.detail = {"started_by": cli_user()}
    runtime = _open(project)
    try:
        with Progress(sync) as progress:
            opts.on_progress = progress
            result = asyncio.run(runtime.run(sync, opts, prepared.spec))
    finally:
        runtime.close()
    _print_result(result, as_json)
    raise typer.Exit(result.exit_code)


@app.command()
def retry(
    sync: str,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Retry the sync's dead letters now, without reading the source."""
    _run(config, sync, RunOptions(kind="retry"), as_json)


@app.command()
def check(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Validate the project file, reach every connection, check permissions and ids.

    Ends with one summary line; exits 1 when a check failed (2 when the file is invalid).
    A connection that cannot be reached fails at once, without retries.
    """
    project = _load(config)
    try:
        project.require_env()
    except ConfigError as exc:
        _print_config_error(exc)
        raise typer.Exit(2) from None
    path = _config_path(config)
    if not as_json:
        out.print(
            f"{path}: valid ({len(project.connections)} connections, {len(project.syncs)} syncs)",
            highlight=False,
        )
    # No retries for a server that is not there: say so now, not after a minute of back-off.
    results = asyncio.run(check_project(project, HttpContext(unreachable_retries=0)))
    rows = [(name, c) for name, checks in results.items() for c in checks]
    passed = [f"{n}: {c.name}" for n, c in rows if c.ok]
    failed = [
        f"{n}: {c.name}" for n, c in rows if not c.ok and not c.detail.startswith(NOT_CHECKED)
    ]
    skipped = [f"{n}: {c.name}" for n, c in rows if not c.ok and c.detail.startswith(NOT_CHECKED)]
    code = 1 if failed or skipped else 0
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "config": str(path),
                    "ok": not code,
                    "passed": len(passed),
                    "failed": failed,
                    "not_checked": skipped,
                    "checks": [
                        {
                            "group": n,
                            "check": c.name,
                            "ok": c.ok,
                            "checked": c.ok or not c.detail.startswith(NOT_CHECKED),
                            "detail": c.detail,
                        }
                        for n, c in rows
                    ],
                }
            )
        )
        raise typer.Exit(code)
    for name, c in rows:
        mark = "[green]ok[/green]  " if c.ok else "[red]FAIL[/red]"
        if not c.ok and c.detail.startswith(NOT_CHECKED):
            mark = "[yellow]skip[/yellow]"
        out.print(
            f"{mark} {name}: {c.name}" + (f" — {c.detail}" if c.detail else ""), highlight=False
        )
    summary = f"check: {len(passed)} ok, {len(failed)} failed"
    if failed:
        summary += f" ({', '.join(failed)})"
    if skipped:
        summary += f", {len(skipped)} not checked ({', '.join(skipped)})"
    out.print(summary, highlight=False)
    if any("connection refused by 127.0.0.1:" in c.detail for _, c in rows):
        out.print(
            "hint: nothing answers on 127.0.0.1; are the sandboxes running? "
            "(`ticketbridge sandbox serve`)",
            highlight=False,
        )
    raise typer.Exit(code)


@app.command()
def runs(
    sync: Annotated[str | None, typer.Argument()] = None,
    limit: int = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = None,
) -> None:
    """List recent runs with their counters, outcome, finish time and duration."""
    project = _load(config, secrets=False)
    if sync is not None:
        _known_sync(project, sync)
    runtime = Runtime.open(project)
    try:
        # A killed run cannot say so itself: close the ones whose lease is gone first.
        runtime.store.close_abandoned_runs(is_dead=holder_is_dead)
        rows = runtime.store.list_runs(sync, limit)
    finally:
        runtime.close()
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "sync": r.sync,
                        "kind": r.kind,
                        "outcome": r.outcome,
                        "started_at": r.started_at.isoformat(),
                        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                        "duration_s": _duration(r),
                        "error": r.error,
                        "detail": r.detail,
                        **r.counters.as_dict(),
                    }
                    for r in rows
                ]
            )
        )
        return
    if not rows:
        out.print("no runs yet" + (f" of {sync}" if sync else ""), highlight=False)
    for row in rows:
        for line in run_lines(row):
            out.print(line, highlight=False, soft_wrap=True)


@app.command()
def errors(
    sync: str,
    csv_path: Annotated[
        str | None,
        typer.Option("--csv", metavar="FILE", help="Write them to this CSV file (- for stdout)."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include resolved ones.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = None,
) -> None:
    """List the sync's dead letters (records that could not be sent) with their reasons."""
    project = _load(config, secrets=False)
    _known_sync(project, sync)
    runtime = Runtime.open(project)
    try:
        letters = runtime.store.list_dead_letters(sync, include_resolved=all_)
    finally:
        runtime.close()
    if as_json:
        out.print_json(json.dumps(dead_letters.as_dicts(letters)))
        return
    if csv_path is not None:
        if csv_path == "-":
            dead_letters.write_csv(letters, sys.stdout)
            return
        with Path(csv_path).open("w", newline="", encoding="utf-8") as fh:
            dead_letters.write_csv(letters, fh)
        out.print(f"{len(letters)} dead letters written to {csv_path}", highlight=False)
        return
    if not letters:
        out.print(f"no dead letters of {sync}", highlight=False)
        return
    table = Table(title=f"dead letters of {sync}", title_justify="left")
    # The key is what you look a record up by: never cut; the reason wraps instead.
    table.add_column("key", no_wrap=True, min_width=max(len(d.key) for d in letters))
    table.add_column("stage", no_wrap=True)
    table.add_column("reason", ratio=1, overflow="fold")
    table.add_column("attempts", no_wrap=True)
    table.add_column("last_seen", no_wrap=True)
    for d in letters:
        reason = d.reason.removeprefix(f"{d.key}: ")  # the key is in its own column
        table.add_row(d.key, d.stage, reason, str(d.attempts), f"{d.last_seen:%Y-%m-%d %H:%M}")
    out.print(table)


@app.command()
def checkpoint(
    sync: str,
    set_json: Annotated[
        str | None,
        typer.Option(
            "--set",
            help="Replace it with this JSON (null: start from scratch). Do not touch unless "
            "you know what you are doing.",
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Set it without asking (for scripts).")
    ] = False,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Who sets it, for the run history (default: OS user@host)."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Show (or, as an operator, set) the sync's checkpoint, e.g. a pagination key.

    Setting it asks for confirmation (--yes skips that) and is recorded in the run history
    (`ticketbridge runs`): who, when, the old and the new value."""
    project = _load(config, secrets=False)
    _known_sync(project, sync)
    try:
        value = json.loads(set_json) if set_json is not None else None
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="'--set'") from None
    if value is not None and not isinstance(value, dict):
        raise typer.BadParameter(
            "a checkpoint is a JSON object (or null to start from scratch)", param_hint="'--set'"
        )
    runtime = Runtime.open(project)
    try:
        try:
            old: Any = runtime.store.get_checkpoint(sync)
        except StateError as exc:
            if set_json is None:
                raise
            old = f"corrupt: {exc}"  # what --set is there to replace (issue 20.6)
        if set_json is None:
            out.print_json(json.dumps(old))
            return
        if not yes:
            _confirm_checkpoint(sync, old, value)
        who = by or _operator()
        run_id = asyncio.run(_set_checkpoint(runtime.store, sync, value, who))
        err.print(f"checkpoint of {sync} set by {who} (run #{run_id})", highlight=False)
        out.print_json(json.dumps(runtime.store.get_checkpoint(sync)))
    finally:
        runtime.close()


def _confirm_checkpoint(sync: str, old: Any, new: Any) -> None:
    """Ask before an operator moves a checkpoint; refuse when nobody can answer."""
    if not sys.stdin.isatty():
        err.print(
            f"[red]error:[/red] setting the checkpoint of {sync} needs confirmation: run it in "
            "a terminal, or add --yes",
            highlight=False,
        )
        raise typer.Exit(2)
    err.print(f"checkpoint of {sync} now: {json.dumps(old)}", highlight=False)
    err.print(f"would become: {json.dumps(new)}", highlight=False)
    if not typer.confirm("The next run starts from the new one. Set it?", default=False):
        err.print("not changed", highlight=False)
        raise typer.Exit(1)


def _operator() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


async def _set_checkpoint(store: StateStore, sync: str, value: Any, by: str) -> int:
    """Set it under the sync's lease, so that a run cannot overwrite it at its next commit:
    a running sync makes this fail (exit 1), a killed one's lease is taken over."""
    try:
        async with LeaseKeeper(store, sync) as lease:
            run_id: int = store.operator_set_checkpoint(sync, value, by, lease)
            return run_id
    except LeaseBusy:
        err.print(
            f"[red]error:[/red] {sync} is running; set its checkpoint once the run has ended",
            highlight=False,
        )
        raise typer.Exit(1) from None


def _say(line: str) -> None:
    out.print(line, highlight=False)


@app.command()
def serve(config: ConfigOpt = None) -> None:
    """Run every scheduled sync on its schedule (overlapping runs are skipped; syncs sharing a
    TIXNGO organizer take turns; a run ended by an outage or a rate limit is tried again
    after 1, 5 and 15 minutes, set by TICKETBRIDGE_SERVE_RETRIES), the Tiqets Supplier API
    when the project has a supplier_api block, and the install callbacks of every Wallet
    connection with a callbacks block (registered with Wallet first)."""
    from ticketbridge import callbacks
    from ticketbridge.engine.scheduler import (
        RETRIES_ENV,
        parse_retry_delays,
        retry_delay,
        run_schedules,
    )
    from ticketbridge.runtime import database_url

    project = _load(config)
    schedules = {
        name: schedule
        for name, cfg in project.file.syncs.items()
        if (schedule := cfg.parsed_schedule()) is not None
    }
    supplier = project.supplier_api
    wallets = callbacks.configured(project.connections)
    if not schedules and supplier is None and not wallets:
        err.print(
            "nothing to serve: no sync has a schedule, there is no supplier_api and no "
            "Wallet connection has callbacks"
        )
        raise typer.Exit(2)
    try:
        callbacks.check_servable(wallets, {(supplier.host, supplier.port)} if supplier else set())
        delays = parse_retry_delays(os.environ.get(RETRIES_ENV))
        # Read by the readers it forks (cpu_policy.py): a bad value is said now, not ignored.
        cpu_policy.choice()
    except (ConfigError, ValueError) as exc:
        err.print(f"[red]config error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    runtime = _open(project)

    async def start(name: str, retry: int) -> object:
        # The run history says which runs were retries, and of which attempt.
        detail: dict[str, object] = {"started_by": "schedule"}
        if retry:
            detail["retry"] = retry
        result = await runtime.run(name, RunOptions(detail=detail))
        err.print(
            f"{name}: {result.outcome} {result.counters.as_dict()}"
            + (f" {result.error}" if result.error else ""),
            highlight=False,
        )
        return result

    async def main() -> None:
        tasks = []
        if schedules:
            out.print(
                f"serving {len(schedules)} schedules: "
                + ", ".join(f"{n} ({s.text})" for n, s in schedules.items())
            )
            # Syncs sharing a lease (one run per TIXNGO organizer) take turns.
            groups = {
                name: lease
                for name in schedules
                if (lease := project.get_sync(name).shared_lease) is not None
            }
            tasks.append(
                run_schedules(
                    schedules,
                    start,
                    groups=groups,
                    retry=lambda _, result, attempt: retry_delay(result, attempt, delays),
                )
            )
        if supplier is not None:
            from ticketbridge.supplier import serve_supplier

            acme = project.connections[supplier.connection]
            out.print(
                f"Tiqets Supplier API on http://{supplier.host}:{supplier.port} "
                f"({supplier.environment} mapping, ACME {acme.base_url})"
            )
            tasks.append(
                serve_supplier(
                    supplier,
                    acme,  # type: ignore[arg-type]
                    database_url(project),
                    runtime.http,
                )
            )
        tasks += await callbacks.start(wallets, runtime.store, runtime.http, _say)
        await asyncio.gather(*tasks)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except TicketbridgeError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        runtime.close()


@app.command()
def init(
    directory: Annotated[Path, typer.Argument()] = Path("."),
    force: bool = False,
    port_base: Annotated[int, typer.Option(help="Where `sandbox serve` listens.")] = 8401,
) -> None:
    """Write an example project file wired to the sandboxes (and a .env with their keys)."""
    from ticketbridge.demo import write_example_project

    target = directory / "ticketbridge.yaml"
    if target.exists() and not force:
        err.print(f"{target} exists (use --force to overwrite)")
        raise typer.Exit(2)
    write_example_project(directory, port_base)
    serve_cmd = "ticketbridge sandbox serve" + (
        f" --port-base {port_base}" if port_base != 8401 else ""
    )
    here = directory.resolve() == Path.cwd().resolve()
    out.print(f"wrote {target} and {directory / '.env'}", highlight=False)
    out.print(
        "next: "
        + ("" if here else f"`cd {directory}`, then ")
        + f"`{serve_cmd} &` (the sandboxes) and `ticketbridge check`",
        highlight=False,
    )


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8400,
    config: ConfigOpt = None,
) -> None:
    """Serve the operations console on the project file and state the CLI uses.

    Logins: TICKETBRIDGE_UI_OPERATOR_PASSWORD and TICKETBRIDGE_UI_VIEWER_PASSWORD (read-only).
    Without them it serves loopback only, with a password and a one-time link made at start.
    """
    from ticketbridge.sandbox import PortInUse
    from ticketbridge.web.serve import serve_console
    from ticketbridge.web.settings import UiSettings

    _load(config, secrets=False)  # a broken project file is a config error here, exit 2
    settings = UiSettings.from_env(_config_path(config), host=host, port=port)
    try:
        serve_console(settings, lambda line: out.print(line, highlight=False, soft_wrap=True))
    except ConfigError as exc:
        raise _fail_config(exc) from None
    except PortInUse as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass


@app.command()
def demo(
    records: Annotated[int, typer.Option(help="Bookings in the source sandbox.")] = 300,
    seed: int = 42,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    with_ui: Annotated[
        bool,
        typer.Option(
            "--ui", help="Then leave the sandboxes and the console up (Ctrl-C ends both)."
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="The console's port (with --ui).")] = 8400,
) -> None:
    """Start the sandboxes, run every integration twice, print a summary."""
    from ticketbridge.demo import run_demo

    then = _demo_console(port, as_json) if with_ui else None
    report = run_demo(records=records, seed=seed, progress=None if as_json else err, then=then)
    if not with_ui:
        _print_demo_report(report, as_json)
    failed = any(r["outcome"] not in ("ok",) for s in report["syncs"] for r in s["runs"])
    raise typer.Exit(1 if failed else 0)


def _print_demo_report(report: dict[str, Any], as_json: bool) -> None:
    from ticketbridge.demo import print_demo

    if as_json:
        out.print_json(json.dumps(report))
    else:
        print_demo(report, out)


def _demo_console(port: int, as_json: bool) -> Any:
    """``demo --ui``: once the runs are done, print the report, then serve the console on the
    demo's project and state until Ctrl-C, with a one-time login."""
    from ticketbridge.web.serve import serve_console
    from ticketbridge.web.settings import UiSettings

    def then(path: Path, state: str, urls: dict[str, str], report: dict[str, Any]) -> None:
        _print_demo_report(report, as_json)
        settings = UiSettings.from_env(path, port=port, database_url=state)
        say = err if as_json else out  # stdout holds the JSON report
        say.print("the sandboxes and the console stay up until Ctrl-C", highlight=False)
        with contextlib.suppress(KeyboardInterrupt):
            serve_console(settings, lambda line: say.print(line, highlight=False, soft_wrap=True))

    return then


@sandbox_app.command("serve")
def sandbox_serve(
    platforms: Annotated[list[str] | None, typer.Argument()] = None,
    port_base: int = 8401,
    seed: int = 42,
    records: int = 300,
    host: str = "127.0.0.1",
) -> None:
    """Serve platform sandboxes under uvicorn on loopback (ports from --port-base).

    Exits 2 when a platform is unknown or a port is in use."""
    from ticketbridge.demo import serve_sandboxes
    from ticketbridge.sandbox import PortInUse

    try:
        asyncio.run(
            serve_sandboxes(
                platforms or [],
                port_base=port_base,
                seed=seed,
                records=records,
                host=host,
                console=out,
            )
        )
    except KeyboardInterrupt:
        pass
    except (ValueError, PortInUse) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def links(
    sync: str,
    csv_path: Annotated[
        str | None, typer.Option("--csv", help="Write them to this CSV file ('-': stdout).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """List the sync's tickets with their pass URLs (and install status when known)."""
    project = _load(config, secrets=False)
    _known_sync(project, sync)
    runtime = Runtime.open(project)
    destination = project.connections[project.sync_config(sync).destination.connection]
    # Install status is kept per Wallet project (its callbacks name passes, not syncs).
    wallet = destination.platform == "airship_wallet"
    try:
        rows = link_rows(
            runtime.store, sync, str(getattr(destination, "project_id", "")) if wallet else None
        )
        if csv_path == "-":
            write_csv(rows, sys.stdout)
            return
        if csv_path is not None:
            with Path(csv_path).open("w", newline="", encoding="utf-8") as fh:
                n = write_csv(rows, fh)
            out.print(f"{n} links written to {csv_path}")
            return
        table = Table(title=f"links of {sync}", title_justify="left")
        for name in ("key", "ticket", "url", "install_status", "outcome"):
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(
                row["key"], row["ticket"], row["url"], row["install_status"], row["outcome"]
            )
        out.print(table)
    finally:
        runtime.close()


def main() -> None:
    """Run the CLI. A usage error (bad option or value, unknown command) is one line on
    stderr naming the option, exit 2; never a traceback."""
    try:
        _run_app()
    except SystemExit as exc:
        process_exit.end(exc.code)
    process_exit.end(0)


def _run_app() -> None:
    tune_gc()
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "ticketbridge"
        err.print(
            f"[red]error:[/red] {exc.format_message()} (see `{command} --help`)", highlight=False
        )
        sys.exit(2)
    except ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except StateError as exc:
        # The state database could not be opened or is not one (a truncated or foreign
        # file): nothing ran, and the message says which file and what to do.
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
