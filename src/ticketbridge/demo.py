"""``ticketbridge demo``, ``init`` and ``sandbox serve``: every integration against sandboxes.

Each integration registers a :class:`DemoIntegration`: the sandboxes it needs, its sync as it
would appear in a project file, and what to change at the source between the two runs. The
demo then shows the thing users care about: the first run sends everything, the second sends
only what changed.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich import box
from rich.console import Console
from rich.table import Table

from ticketbridge.connectors import registry
from ticketbridge.engine.spec import RunOptions
from ticketbridge.http.client import ApiClient
from ticketbridge.http.context import HttpContext
from ticketbridge.project import load_project
from ticketbridge.runtime import Runtime
from ticketbridge.sandbox import RunningSandbox, SandboxApp, serve_forever, serve_in_thread

# Fixed order, so `sandbox serve` ports are stable: ticketco 8401, airship_crm 8402, ...
PORT_ORDER = ["ticketco", "airship_crm", "ticketmaster", "heyloyalty", "acme", "tiqets"]

REPORT_FIELDS = ("read", "created", "updated", "unchanged", "rejected", "source_calls",
                 "destination_calls")


@dataclass(frozen=True)
class DemoIntegration:
    sync: str
    title: str
    source: str  # platform
    destination: str  # platform
    config: Callable[[], dict[str, Any]]  # the sync block, connections named by platform
    mutate: dict[str, Any]  # body of POST /_sandbox/mutate on the source between runs


def _ticketco_airship() -> dict[str, Any]:
    return {
        "source": {"connection": "ticketco", "stream": "bookings",
                   "venues": ["Riverside Hall", "Bowl Arena"]},
        "destination": {"connection": "airship_crm", "object": "contact_bookings",
                        "groups": {"per_venue": "Booking", "event_tags": ["Golf", "Bowling"]}},
        "schedule": "0 4 * * *",
        "window": {"field": "attendance_at", "from": "-1d", "to": "+30d"},
        "match": ["email", "mobile"],
        "write_policy": {"contact": "on_create", "booking": "always"},
    }


INTEGRATIONS: list[DemoIntegration] = [
    DemoIntegration(
        sync="ticketco-bookings-to-airship",
        title="TicketCo → Airship CRM",
        source="ticketco",
        destination="airship_crm",
        config=_ticketco_airship,
        mutate={"share": 0.05, "cancel_share": 0.02, "no_shows": True, "seed": 7},
    ),
]


def port_of(platform: str, port_base: int) -> int:
    """Each platform's fixed port offset, the same for `sandbox serve` and `init`."""
    if platform in PORT_ORDER:
        return port_base + PORT_ORDER.index(platform)
    return port_base + len(PORT_ORDER) + registry.names().index(platform)


def _platforms() -> list[str]:
    wanted = {p for i in INTEGRATIONS for p in (i.source, i.destination)}
    return [p for p in PORT_ORDER if p in wanted] + sorted(wanted - set(PORT_ORDER))


def project_dict(urls: dict[str, str]) -> dict[str, Any]:
    """A project file wiring every demo integration to sandboxes at ``urls`` (by platform)."""
    connections = {}
    for platform, url in urls.items():
        connector = registry.get(platform)
        assert connector.sandbox_config is not None, platform
        connections[platform] = connector.sandbox_config(url)
    syncs = {i.sync: i.config() for i in INTEGRATIONS
             if i.source in urls and i.destination in urls}
    return {"connections": connections, "syncs": syncs}


def sandbox_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for platform in _platforms():
        env.update(registry.get(platform).sandbox_env)
    return env


def write_example_project(directory: Path, port_base: int = 8401) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    urls = {p: f"http://127.0.0.1:{port_of(p, port_base)}" for p in _platforms()}
    path = directory / "ticketbridge.yaml"
    header = ("# ticketbridge project wired to the local sandboxes "
              "(`ticketbridge sandbox serve`).\n# Secrets are ${ENV} references; "
              "the sandbox keys are in .env beside this file.\n")
    path.write_text(header + yaml.safe_dump(project_dict(urls), sort_keys=False),
                    encoding="utf-8")
    env_lines = [f"{k}={v}" for k, v in sandbox_env().items()]
    (directory / ".env").write_text(
        "# Fake credentials the sandboxes accept. Never put real ones in a file.\n"
        + "\n".join(env_lines) + "\n", encoding="utf-8")
    return path


def build_sandbox(platform: str, seed: int, records: int) -> SandboxApp:
    connector = registry.get(platform)
    if connector.sandbox is None:
        raise ValueError(f"{platform} has no sandbox")
    sandbox: SandboxApp = connector.sandbox(
        seed=seed, records=records, today=datetime.now(UTC)
    )
    return sandbox


async def _admin(url: str, path: str, body: dict[str, Any]) -> Any:
    client = ApiClient(platform="sandbox", base_url=url, context=HttpContext())
    try:
        return await client.request_json("POST", path, json_body=body)
    finally:
        await client.aclose()


def run_demo(records: int = 300, seed: int = 42, progress: Console | None = None) -> dict[str, Any]:
    """Start every sandbox, run every integration, change the source, run again."""
    platforms = _platforms()
    running: list[RunningSandbox] = []
    report: dict[str, Any] = {"syncs": []}
    try:
        for p in platforms:
            running.append(serve_in_thread(build_sandbox(p, seed, records)))
        urls = {r.platform: r.url for r in running}
        with tempfile.TemporaryDirectory(prefix="ticketbridge-demo-") as tmp:
            path = Path(tmp) / "ticketbridge.yaml"
            path.write_text(yaml.safe_dump(project_dict(urls), sort_keys=False), "utf-8")
            project = load_project(path, env=sandbox_env())
            runtime = Runtime.open(project, url=f"sqlite:///{Path(tmp, 'state.db').as_posix()}")
            try:
                for integ in INTEGRATIONS:
                    report["syncs"].append(asyncio.run(
                        _demo_integration(runtime, integ, urls, progress)))
            finally:
                runtime.close()
    finally:
        for r in running:
            r.stop()
    return report


async def _demo_integration(runtime: Runtime, integ: DemoIntegration, urls: dict[str, str],
                            progress: Console | None) -> dict[str, Any]:
    runs = []
    for attempt in (1, 2):
        if attempt == 2:
            changed = await _admin(urls[integ.source], "/_sandbox/mutate", integ.mutate)
            if progress:
                counts = {k: len(v) for k, v in (changed or {}).items() if isinstance(v, list)}
                progress.print(f"{integ.title}: changed the source: {counts}", highlight=False)
        if progress:
            progress.print(f"{integ.title}: run {attempt}…", highlight=False)
        result = await runtime.run(integ.sync, RunOptions())
        row: dict[str, Any] = {
            k: v for k, v in result.counters.as_dict().items() if k in REPORT_FIELDS
        }
        row["outcome"] = result.outcome
        if result.error:
            row["error"] = result.error
        runs.append(row)
    return {"name": integ.sync, "title": integ.title, "runs": runs}


SHORT = {"source_calls": "src", "destination_calls": "dst"}


def print_demo(report: dict[str, Any], console: Console) -> None:
    for sync in report["syncs"]:
        table = Table(title=f"{sync['title']}  ({sync['name']})", title_justify="left",
                      box=box.SIMPLE_HEAD,
                      caption="src / dst: API calls made to the source / the destination",
                      caption_justify="left")
        table.add_column("run", justify="right")
        for f in REPORT_FIELDS:
            table.add_column(SHORT.get(f, f), justify="right")
        table.add_column("outcome")
        for i, run in enumerate(sync["runs"], 1):
            table.add_row(str(i), *(str(run[f]) for f in REPORT_FIELDS), run["outcome"])
        console.print(table)
        for run in sync["runs"]:
            if run.get("error"):
                console.print(f"  error: {run['error']}", highlight=False)


async def serve_sandboxes(platforms: list[str], *, port_base: int, seed: int, records: int,
                          host: str, console: Console) -> None:
    chosen = platforms or _platforms()
    pairs = []
    for p in chosen:
        if p not in registry.names():
            raise ValueError(f"unknown platform {p!r}")
        port = port_of(p, port_base)
        pairs.append((build_sandbox(p, seed, records), port))
        console.print(f"{p}: http://{host}:{port}")
    await serve_forever(pairs, host)
