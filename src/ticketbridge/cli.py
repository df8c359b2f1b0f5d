"""The ``ticketbridge`` command line (DESIGN section 7).

Exit codes: 0 ok (also "skipped: running"), 1 run failed, 2 usage or config error, 3 partial.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from ticketbridge import logs
from ticketbridge.engine.leases import holder_is_dead
from ticketbridge.engine.spec import RunOptions, RunResult
from ticketbridge.engine.state.base import RunCounters, RunRow
from ticketbridge.errors import ConfigError, TicketbridgeError
from ticketbridge.http.context import HttpContext
from ticketbridge.links import links_command
from ticketbridge.project import Project, load_project
from ticketbridge.runtime import Runtime, check_project

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Sync live-event ticketing data between platforms.",
)
sandbox_app = typer.Typer(no_args_is_help=True, help="Run the platform sandboxes.")
app.add_typer(sandbox_app, name="sandbox")

out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="Project file.", envvar="TICKETBRIDGE_CONFIG")
]
DEFAULT_CONFIG = Path("ticketbridge.yaml")


class _State:
    log_level = "INFO"


@app.callback()
def _main(
    log_level: Annotated[
        str, typer.Option(help="DEBUG, INFO, WARNING.", envvar="TICKETBRIDGE_LOG_LEVEL")
    ] = "INFO",
) -> None:
    _State.log_level = log_level
    logs.configure(log_level)


def _load(config: Path) -> Project:
    try:
        project = load_project(config)
    except ConfigError as exc:
        err.print(f"[red]config error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    logs.configure(_State.log_level, project.secrets())
    return project


def _fail_config(exc: TicketbridgeError) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}", highlight=False)
    return typer.Exit(2)


def run_lines(r: RunRow) -> list[str]:
    c = r.counters
    reason = (r.detail or {}).get("reason") or r.error
    outcome = r.outcome + (f" ({reason})" if reason else "")
    return [
        f"#{r.id}  {r.started_at:%Y-%m-%d %H:%M} UTC  {r.sync}  {r.kind}: {outcome}",
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
    if c.rejected:
        lines.append(
            f"  {c.rejected} record(s) could not be sent: ticketbridge errors {result.sync}"
        )
    return lines


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
                }
            )
        )
        return
    for line in summary_lines(result):
        out.print(line, highlight=False, soft_wrap=True)
    if result.error:
        err.print(f"[yellow]{result.outcome}:[/yellow] {result.error}", highlight=False)


def _run(config: Path, sync: str, opts: RunOptions, as_json: bool) -> None:
    project = _load(config)
    try:
        project.get_sync(sync)
    except ConfigError as exc:
        raise _fail_config(exc) from None
    runtime = Runtime.open(project)
    try:
        with Progress(sync) as progress:
            opts.on_progress = progress
            result = asyncio.run(runtime.run(sync, opts))
    except ConfigError as exc:
        raise _fail_config(exc) from None
    finally:
        runtime.close()
    if opts.dry_run and not as_json:
        out.print_json(json.dumps(result.plan, default=str))
    _print_result(result, as_json)
    raise typer.Exit(result.exit_code)


@app.command()
def run(
    sync: str,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    today: Annotated[str | None, typer.Option(help="Run as if on this date (YYYY-MM-DD).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Run one sync once."""
    opts = RunOptions(dry_run=dry_run, today=date.fromisoformat(today) if today else None)
    _run(config, sync, opts, as_json)


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
    from_: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD).")],
    to: Annotated[
        str | None, typer.Option("--to", help="Day after the last (default today).")
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
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Historic / manual import in bounded chunks; resumes in the chunk it stopped in.

    The switches override the sync's settings for this import only (a manual import of the
    Heyloyalty kind: members, orders, re-subscribe, opt-in mail, automations).
    """
    from ticketbridge.engine.windows import parse_duration

    project = _load(config)
    source = {k: v for k, v in (("members", members), ("orders", orders)) if v is not None}
    source.update(_pairs(set_source, "--set-source"))
    destination = {
        k: v
        for k, v in (
            ("resubscribe_unsubscribed", resubscribe),
            ("send_optin", send_optin),
            ("trigger_automations", automations),
        )
        if v is not None
    }
    destination.update(_pairs(set_destination, "--set-destination"))
    opts = RunOptions(kind="backfill", source_overrides=source, destination_overrides=destination)
    try:
        spec = project.get_sync(sync)
        spec.backfill_from = date.fromisoformat(from_)
        if chunk:
            spec.backfill_chunk = parse_duration(chunk)
        opts.backfill_to = date.fromisoformat(to) if to else None
        spec.with_overrides(opts)  # reject a bad switch before anything runs
    except (ConfigError, ValueError) as exc:
        err.print(f"[red]error:[/red] {sync}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    runtime = Runtime.open(project)
    try:
        with Progress(sync) as progress:
            opts.on_progress = progress
            result = asyncio.run(runtime.run(sync, opts))
    finally:
        runtime.close()
    _print_result(result, as_json)
    raise typer.Exit(result.exit_code)


@app.command()
def retry(
    sync: str,
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Retry the sync's dead letters now, without reading the source."""
    _run(config, sync, RunOptions(kind="retry"), as_json)


@app.command()
def check(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Validate the project file, reach every connection, check permissions and ids."""
    project = _load(config)
    out.print(
        f"[green]ok[/green] {config}: {len(project.connections)} connections, "
        f"{len(project.syncs)} syncs"
    )
    results = asyncio.run(check_project(project, HttpContext()))
    failed = False
    for name, checks in results.items():
        for c in checks:
            mark = "[green]ok[/green]  " if c.ok else "[red]FAIL[/red]"
            failed |= not c.ok
            out.print(
                f"{mark} {name}: {c.name}" + (f" — {c.detail}" if c.detail else ""), highlight=False
            )
    raise typer.Exit(1 if failed else 0)


@app.command()
def runs(
    sync: Annotated[str | None, typer.Argument()] = None,
    limit: int = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """List recent runs with their counters and outcome."""
    project = _load(config)
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
                        "error": r.error,
                        **r.counters.as_dict(),
                    }
                    for r in rows
                ]
            )
        )
        return
    if not rows:
        out.print("no runs yet")
    for row in rows:
        for line in run_lines(row):
            out.print(line, highlight=False, soft_wrap=True)


@app.command()
def errors(
    sync: str,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Write them to this CSV file.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include resolved ones.")] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """List the sync's dead letters (records that could not be sent) with their reasons."""
    project = _load(config)
    try:
        project.get_sync(sync)
    except ConfigError as exc:
        raise _fail_config(exc) from None
    runtime = Runtime.open(project)
    try:
        letters = runtime.store.list_dead_letters(sync, include_resolved=all_)
    finally:
        runtime.close()
    fields = ["key", "stage", "reason", "attempts", "first_seen", "last_seen", "resolved_at"]
    if csv_path is not None:
        with csv_path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(fields)
            for d in letters:
                writer.writerow(
                    [
                        d.key,
                        d.stage,
                        d.reason,
                        d.attempts,
                        d.first_seen.isoformat(),
                        d.last_seen.isoformat(),
                        d.resolved_at.isoformat() if d.resolved_at else "",
                    ]
                )
        out.print(f"{len(letters)} dead letters written to {csv_path}")
        return
    table = Table(title=f"dead letters of {sync}", title_justify="left")
    for f in ("key", "stage", "reason", "attempts", "last_seen"):
        table.add_column(f)
    for d in letters:
        table.add_row(d.key, d.stage, d.reason, str(d.attempts), f"{d.last_seen:%Y-%m-%d %H:%M}")
    out.print(table)


@app.command()
def checkpoint(
    sync: str,
    set_json: Annotated[
        str | None,
        typer.Option(
            "--set",
            help="Replace it with this JSON. Do not touch unless you know what you are doing.",
        ),
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Show (or, as an operator, set) the sync's checkpoint, e.g. a pagination key."""
    project = _load(config)
    try:
        project.get_sync(sync)
        value = json.loads(set_json) if set_json is not None else None
    except (ConfigError, json.JSONDecodeError) as exc:
        raise _fail_config(TicketbridgeError(str(exc))) from None
    runtime = Runtime.open(project)
    try:
        if set_json is not None:
            runtime.store.set_checkpoint(sync, value)
        out.print_json(json.dumps(runtime.store.get_checkpoint(sync)))
    finally:
        runtime.close()


@app.command()
def serve(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Run every scheduled sync on its schedule (overlapping runs are skipped), and the Tiqets
    Supplier API when the project has a supplier_api block."""
    from ticketbridge.engine.scheduler import parse_schedule, run_schedules
    from ticketbridge.runtime import database_url

    project = _load(config)
    schedules = {
        name: parse_schedule(cfg.schedule)
        for name, cfg in project.file.syncs.items()
        if cfg.schedule
    }
    supplier = project.supplier_api
    if not schedules and supplier is None:
        err.print("nothing to serve: no sync has a schedule and there is no supplier_api")
        raise typer.Exit(2)
    runtime = Runtime.open(project)

    async def start(name: str) -> object:
        result = await runtime.run(name, RunOptions())
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
            tasks.append(run_schedules(schedules, start))
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
        await asyncio.gather(*tasks)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
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
    out.print(
        f"wrote {target} and {directory / '.env'}; start the sandboxes with "
        "`ticketbridge sandbox serve` and try `ticketbridge check`"
    )


@app.command()
def demo(
    records: Annotated[int, typer.Option(help="Bookings in the source sandbox.")] = 300,
    seed: int = 42,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start the sandboxes, run every integration twice, print a summary."""
    from ticketbridge.demo import print_demo, run_demo

    report = run_demo(records=records, seed=seed, progress=None if as_json else err)
    if as_json:
        out.print_json(json.dumps(report))
    else:
        print_demo(report, out)
    failed = any(r["outcome"] not in ("ok",) for s in report["syncs"] for r in s["runs"])
    raise typer.Exit(1 if failed else 0)


@sandbox_app.command("serve")
def sandbox_serve(
    platforms: Annotated[list[str] | None, typer.Argument()] = None,
    port_base: int = 8401,
    seed: int = 42,
    records: int = 300,
    host: str = "127.0.0.1",
) -> None:
    """Serve platform sandboxes under uvicorn on loopback (ports from --port-base)."""
    from ticketbridge.demo import serve_sandboxes

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
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


app.command("links")(links_command)


def _tune_gc() -> None:
    """Fewer, cheaper garbage collections for a process that allocates per record.

    ``freeze`` moves everything imported so far (tens of thousands of long-lived objects) out
    of the collector's sight, so a full collection no longer walks them; the higher young
    threshold makes collections rarer while keeping memory bounded. Measured on the S1
    benchmark (bench/README.md): about 15 % less CPU per record.
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)


def main() -> None:
    _tune_gc()
    app()
