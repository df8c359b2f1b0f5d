"""``ticketbridge demo``, ``init`` and ``sandbox serve``: every integration against sandboxes.

Each integration registers a :class:`DemoIntegration`: the sandboxes it needs, its sync as it
would appear in a project file, and what to change at the source between the two runs. The
demo then shows the thing users care about: the first run sends everything, the second sends
only what changed.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich import box
from rich.console import Console
from rich.table import Table

from ticketbridge.connectors import registry
from ticketbridge.connectors.base import SandboxSpec
from ticketbridge.engine.spec import RunOptions
from ticketbridge.http.client import ApiClient
from ticketbridge.http.context import HttpContext
from ticketbridge.project import Project, load_project
from ticketbridge.runtime import Runtime
from ticketbridge.sandbox import (
    RunningSandbox,
    SandboxApp,
    check_port_free,
    free_port,
    serve_asgi,
    serve_forever,
    serve_in_thread,
)

# Fixed order, so `sandbox serve` ports are stable: ticketco 8401, airship_crm 8402, ...
PORT_ORDER = [
    "ticketco",
    "airship_crm",
    "ticketmaster",
    "heyloyalty",
    "acme",
    "tiqets",
    "airship_wallet",
    "tixngo",
    "secutix360",
]

SUPPLIER_KEY_ENV = "TIQETS_SUPPLIER_API_KEY"
SUPPLIER_KEY = "sandbox-tiqets-supplier-key"

REPORT_FIELDS = (
    "read",
    "created",
    "updated",
    "unchanged",
    "rejected",
    "source_calls",
    "destination_calls",
)


@dataclass(frozen=True)
class DemoIntegration:
    sync: str
    title: str
    source: str  # platform
    destination: str  # platform
    config: Callable[[], dict[str, Any]]  # the sync block, connections named by platform
    mutate: dict[str, Any]  # body of POST /_sandbox/mutate on the source between runs
    # How a record the mutation names is keyed in the ledger, when the mutation names
    # records the first run may have read: the mutation touches the whole source (every
    # venue, every date), the sync reads only its window and venues, so the report counts
    # which changes the sync can see.
    ledger_key: str | None = None
    # Instead of ``mutate``: the mutation bodies, chosen after run 1 from what it wrote (the
    # destination sandbox's URL in, ``(bodies, counts for the report)`` out).
    changes: Callable[[str], Awaitable[tuple[list[dict[str, Any]], dict[str, int]]]] | None = None


def _ticketco_airship() -> dict[str, Any]:
    return {
        "source": {
            "connection": "ticketco",
            "stream": "bookings",
            "venues": ["Riverside Hall", "Bowl Arena"],
        },
        "destination": {
            "connection": "airship_crm",
            "object": "contact_bookings",
            "groups": {"per_venue": "Booking", "event_tags": ["Golf", "Bowling"]},
        },
        "schedule": "0 4 * * *",
        "window": {"field": "attendance_at", "from": "-1d", "to": "+30d"},
        "match": ["email", "mobile"],
        "write_policy": {"contact": "on_create", "booking": "always"},
    }


def _ticketmaster_heyloyalty() -> dict[str, Any]:
    return {
        "source": {
            "connection": "ticketmaster",
            "stream": "customers",
            "members": True,
            "orders": True,
            "date_format": "%d-%m-%Y",
        },
        "destination": {
            "connection": "heyloyalty",
            "object": "members",
            "import_type": "create_update",
            "resubscribe_unsubscribed": True,
            "send_optin": False,
            "trigger_automations": False,
        },
        "schedule": "every 5m",
        "cursor": {"lookback": "1h"},
        "backfill_chunk": "365d",
        "match": ["email"],
        "require_consent": "any",
        # Only fields a Heyloyalty list has: the fixed ``reference`` (platforms.md 5.3) and the
        # Cardnumber field Heyloyalty's Ticketmaster guide sets up.
        "mapping": {"fields": {"Cardnumber": "cards.Cardnumber", "reference": "id"}},
    }


def _ticketco_wallet() -> dict[str, Any]:
    return {
        "source": {
            "connection": "ticketco",
            "stream": "tickets",
            "venues": ["Riverside Hall", "Bowl Arena"],
        },
        "destination": {"connection": "airship_wallet", "object": "event_tickets"},
        "schedule": "every 15m",
        "window": {"field": "attendance_at", "from": "-1d", "to": "+30d"},
    }


async def _seat_and_event_change(wallet_url: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One seated ticket gets another seat, and another event starts 30 minutes later: the
    event with the most passes, the ticket from any other event (both from what run 1 sent
    to Wallet, read back from its sandbox)."""
    data = await _admin_get(wallet_url, "/_sandbox/data")
    events = {e["id"]: e["external_id"] for e in data["events"]}
    per_event: dict[str, list[dict[str, Any]]] = {}
    for link in data["links"]:
        per_event.setdefault(events[link["event_id"]], []).append(link)
    moved = max(sorted(per_event), key=lambda e: len(per_event[e]))
    seated = next(
        link
        for e in sorted(per_event)
        if e != moved
        for link in sorted(per_event[e], key=lambda x: str(x["external_id"]))
        if "seat" in link["fields"]
    )
    bodies = [
        {"op": "item", "item_id": int(seated["external_id"]), "seat_name": "99"},
        {"op": "event_start", "event_id": int(moved), "minutes": 30},
    ]
    counts = {
        "seat_changed": 1,
        "event_moved": 1,
        "tickets_of_the_moved_event": len(per_event[moved]),
    }
    return bodies, counts


def _tixngo_secutix360() -> dict[str, Any]:
    return {
        "source": {"connection": "tixngo", "stream": "ticket_updates"},
        "destination": {"connection": "secutix360", "object": "ticket_feedback"},
        "schedule": "every 5m",
        "diff": True,  # the stored pagination key moves only with acknowledged writes
        "skip": [],  # ticket ids never processed
    }


INTEGRATIONS: list[DemoIntegration] = [
    DemoIntegration(
        sync="ticketco-bookings-to-airship",
        title="TicketCo → Airship CRM",
        source="ticketco",
        destination="airship_crm",
        config=_ticketco_airship,
        mutate={"share": 0.05, "cancel_share": 0.02, "no_shows": True, "seed": 7},
        ledger_key="booking:ticketco:{}",
    ),
    DemoIntegration(
        sync="ticketmaster-customers-to-heyloyalty",
        title="Ticketmaster → Heyloyalty",
        source="ticketmaster",
        destination="heyloyalty",
        config=_ticketmaster_heyloyalty,
        mutate={
            "share": 0.05,
            "consent_flip_share": 0.02,
            "new_customers": 3,
            "new_orders": 5,
            "seed": 1,
        },
    ),
    DemoIntegration(
        sync="ticketco-tickets-to-wallet",
        title="TicketCo → Airship Wallet",
        source="ticketco",
        destination="airship_wallet",
        config=_ticketco_wallet,
        mutate={},
        changes=_seat_and_event_change,
    ),
    DemoIntegration(
        sync="tixngo-feedback-to-secutix360",
        title="TIXNGO → SECUTIX 360",
        source="tixngo",
        destination="secutix360",
        config=_tixngo_secutix360,
        # Tickets move along TIXNGO's flow: downloads, assignments, transfers (some to
        # someone who already received one), activations, scans, deletions.
        mutate={"share": 0.1, "same_recipient_share": 0.3, "seed": 1},
    ),
]


def port_of(platform: str, port_base: int) -> int:
    """Each platform's fixed port offset, the same for `sandbox serve` and `init`."""
    if platform in PORT_ORDER:
        return port_base + PORT_ORDER.index(platform)
    return port_base + len(PORT_ORDER) + registry.names().index(platform)


def _platforms() -> list[str]:
    # ACME is not a sync endpoint: the Tiqets Supplier API sells through it.
    wanted = {p for i in INTEGRATIONS for p in (i.source, i.destination)} | {"acme"}
    return [p for p in PORT_ORDER if p in wanted] + sorted(wanted - set(PORT_ORDER))


def project_dict(urls: dict[str, str], supplier_port: int = 8480) -> dict[str, Any]:
    """A project file wiring every demo integration to sandboxes at ``urls`` (by platform)."""
    connections = {}
    for platform, url in urls.items():
        connections[platform] = _sandbox_spec(platform).config(url)
    syncs = {i.sync: i.config() for i in INTEGRATIONS if i.source in urls and i.destination in urls}
    project: dict[str, Any] = {"connections": connections, "syncs": syncs}
    if "acme" in urls:
        project["supplier_api"] = supplier_block(supplier_port)
    return project


def supplier_block(port: int, seed: int = 42) -> dict[str, Any]:
    """The Tiqets Supplier API in front of the ACME sandbox, with the sandbox's ids mapped."""
    from ticketbridge.connectors.acme import sandbox_mapping

    return {
        "connection": "acme",
        "host": "127.0.0.1",
        "port": port,
        "api_key": "${" + SUPPLIER_KEY_ENV + "}",
        "environment": "sandbox",
        "mappings": {"sandbox": sandbox_mapping(seed)},
    }


def sandbox_env() -> dict[str, str]:
    env: dict[str, str] = {SUPPLIER_KEY_ENV: SUPPLIER_KEY}
    for platform in _platforms():
        env.update(_sandbox_spec(platform).env)
    return env


def write_example_project(directory: Path, port_base: int = 8401) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    urls = {p: f"http://127.0.0.1:{port_of(p, port_base)}" for p in _platforms()}
    path = directory / "ticketbridge.yaml"
    header = (
        "# ticketbridge project wired to the local sandboxes "
        "(`ticketbridge sandbox serve`).\n# Secrets are ${ENV} references; "
        "the sandbox keys are in .env beside this file.\n"
    )
    path.write_text(header + yaml.safe_dump(project_dict(urls), sort_keys=False), encoding="utf-8")
    env_lines = [f"{k}={v}" for k, v in sandbox_env().items()]
    (directory / ".env").write_text(
        "# Fake credentials the sandboxes accept. Never put real ones in a file.\n"
        + "\n".join(env_lines)
        + "\n",
        encoding="utf-8",
    )
    return path


def _sandbox_spec(platform: str) -> SandboxSpec:
    spec = registry.get(platform).sandbox
    if spec is None:
        raise ValueError(f"{platform} has no sandbox")
    return spec


def build_sandbox(platform: str, seed: int, records: int) -> SandboxApp:
    create = _sandbox_spec(platform).create
    sandbox: SandboxApp = create(seed=seed, records=records, today=datetime.now(UTC))
    return sandbox


async def _admin(url: str, path: str, body: dict[str, Any]) -> Any:
    client = ApiClient(platform="sandbox", base_url=url, context=HttpContext())
    try:
        return await client.request_json("POST", path, json_body=body)
    finally:
        await client.aclose()


# Called with the demo's project file, state database URL and sandbox URLs once every run is
# done, while the sandboxes still serve (``demo --ui`` serves the console from there).
AfterDemo = Callable[[Path, str, dict[str, str], dict[str, Any]], None]


def run_demo(
    records: int = 300,
    seed: int = 42,
    progress: Console | None = None,
    then: AfterDemo | None = None,
) -> dict[str, Any]:
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
            data = project_dict(urls, free_port())
            data["supplier_api"] = supplier_block(data["supplier_api"]["port"], seed)
            path.write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")
            project = load_project(path, env=sandbox_env())
            state = f"sqlite:///{Path(tmp, 'state.db').as_posix()}"
            runtime = Runtime.open(project, url=state)
            try:
                for integ in INTEGRATIONS:
                    report["syncs"].append(
                        asyncio.run(_demo_integration(runtime, integ, urls, progress))
                    )
                report["tiqets_sale"] = _demo_tiqets_sale(project, state, urls["acme"], progress)
            finally:
                runtime.close()
            if then is not None:
                # The sandboxes' fake keys beside the file, as `init` writes them, so that
                # whatever reads the project from here (the console) finds its secrets.
                (Path(tmp) / ".env").write_text(
                    "".join(f"{k}={v}\n" for k, v in sandbox_env().items()), "utf-8"
                )
                then(path, state, urls, report)
    finally:
        for r in running:
            r.stop()
    return report


async def _demo_integration(
    runtime: Runtime, integ: DemoIntegration, urls: dict[str, str], progress: Console | None
) -> dict[str, Any]:
    runs = []
    counts: dict[str, int] = {}
    seen: dict[str, int] | None = None
    for attempt in (1, 2):
        if attempt == 2 and integ.changes is not None:
            bodies, counts = await integ.changes(urls[integ.destination])
            for body in bodies:
                await _admin(urls[integ.source], "/_sandbox/mutate", body)
            if progress:
                progress.print(
                    f"{integ.title}: changed the source: {_changes(counts, None)}",
                    highlight=False,
                )
        elif attempt == 2:
            changed = await _admin(urls[integ.source], "/_sandbox/mutate", integ.mutate)
            lists = {k: v for k, v in (changed or {}).items() if isinstance(v, list)}
            counts = {k: len(v) for k, v in lists.items()}
            if integ.ledger_key is not None:
                seen = {k: _seen(runtime, integ, k, refs) for k, refs in lists.items()}
            if progress:
                progress.print(
                    f"{integ.title}: changed the source: {_changes(counts, seen)}",
                    highlight=False,
                )
        if progress:
            progress.print(f"{integ.title}: run {attempt}…", highlight=False)
        result = await runtime.run(integ.sync, RunOptions(detail={"started_by": "demo"}))
        row: dict[str, Any] = {
            k: v for k, v in result.counters.as_dict().items() if k in REPORT_FIELDS
        }
        row["outcome"] = result.outcome
        if result.error:
            row["error"] = result.error
        runs.append(row)
    report: dict[str, Any] = {
        "name": integ.sync,
        "title": integ.title,
        "runs": runs,
        "source_changes": counts,
    }
    if seen is not None:
        report["source_changes_in_scope"] = seen
    return report


def _seen(runtime: Runtime, integ: DemoIntegration, kind: str, refs: list[str]) -> int:
    """How many of the records a mutation of this kind touched the sync will update: it wrote
    them in run 1 (in its ledger, acknowledged; a rejected record stays rejected) and did not
    already hold them in that state.
    (A booking of yesterday's event that nobody checked in to is a no-show for the reader as
    soon as the event's end time has passed, before the sandbox marks the event ended.)"""
    assert integ.ledger_key is not None
    rows = runtime.store.get_ledger(integ.sync, [integ.ledger_key.format(r) for r in refs])
    return sum(1 for row in rows.values() if row.last_outcome == "ok" and row.status != kind)


def _changes(counts: dict[str, int], seen: dict[str, int] | None) -> str:
    """``changed 1, cancelled 1`` and, when known, how many of them the sync reads."""
    text = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in counts.items() if n) or "nothing"
    if seen is not None and any(counts.values()):
        total = sum(seen.values())
        scoped = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in seen.items() if n)
        text += " across the source (every venue and date); "
        text += (
            f"{total} of them to records this sync has sent ({scoped}): run 2's updates"
            if total
            else "none to records this sync has sent, so run 2 updates nothing"
        )
    return text


SHORT = {"source_calls": "src", "destination_calls": "dst"}


def _demo_tiqets_sale(
    project: Project, state: str, acme_url: str, progress: Console | None
) -> dict[str, Any]:
    """A sale on Tiqets, end to end: products, availability, reservation, booking and
    cancellation through our Supplier API, then the order as ACME holds it."""
    from ticketbridge.supplier import create_app, demo_sale

    supplier = project.supplier_api
    assert supplier is not None
    acme = project.connections[supplier.connection]
    app = create_app(supplier, acme, state, HttpContext())  # type: ignore[arg-type]
    server, thread, url = serve_asgi(app, "supplier-api", port=supplier.port, lifespan="on")
    try:
        if progress:
            progress.print("Tiqets ↔ ACME: a sale through the Supplier API…", highlight=False)
        sale = asyncio.run(demo_sale(url, supplier.api_key.get_secret_value(), HttpContext()))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    orders = asyncio.run(_admin_get(acme_url, "/_sandbox/data"))["orders"]
    order = next((o for o in orders if str(o["id"]) == str(sale.get("acme_order_id"))), None)
    return {**sale, "acme_order": order}


async def _admin_get(url: str, path: str) -> Any:
    client = ApiClient(platform="sandbox", base_url=url, context=HttpContext())
    try:
        return await client.get_json(path)
    finally:
        await client.aclose()


def print_tiqets_sale(sale: dict[str, Any], console: Console) -> None:
    order = sale.get("acme_order") or {}
    tickets = ", ".join(
        f"{t.get('quantity', '')} x {t.get('variant_id', '')}" for t in sale.get("tickets", [])
    )
    barcodes = sum(len(v) for v in (sale.get("barcodes") or {}).values())
    lines = [
        "Tiqets ↔ ACME  (Supplier API in front of ACME)",
        f"  product      {sale['product']['name']} ({sale['product']['id']}), slot "
        f"{sale.get('slot')}",
        f"  reservation  {sale['reservation_id']} for {tickets}, held until {sale['expires_at']}",
        f"  booking      {sale['booking_id']} (Tiqets order {sale['order_reference']}), "
        f"{barcodes} barcode(s); ACME order {order.get('orderNumber', '?')}",
        f"  cancellation HTTP {sale['cancellation']['status']}; ACME refunded "
        f"{order.get('refundAmount', '?')} of {order.get('totalAmount', '?')}",
        f"  again        error {sale['second_cancellation'].get('error_code')} "
        f"({sale['second_cancellation'].get('error')})",
    ]
    for line in lines:
        console.print(line, highlight=False)


def print_demo(report: dict[str, Any], console: Console) -> None:
    for sync in report["syncs"]:
        table = Table(
            title=f"{sync['title']}  ({sync['name']})",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            caption="src / dst: API calls made to the source / the destination",
            caption_justify="left",
        )
        table.add_column("run", justify="right")
        for f in REPORT_FIELDS:
            table.add_column(SHORT.get(f, f), justify="right")
        table.add_column("outcome")
        for i, run in enumerate(sync["runs"], 1):
            table.add_row(str(i), *(str(run[f]) for f in REPORT_FIELDS), run["outcome"])
        console.print(table)
        if sync.get("source_changes"):
            console.print(
                "  before run 2 the source changed: "
                + _changes(sync["source_changes"], sync.get("source_changes_in_scope")),
                highlight=False,
            )
        for run in sync["runs"]:
            if run.get("error"):
                console.print(f"  error: {run['error']}", highlight=False)
    if report.get("tiqets_sale"):
        print_tiqets_sale(report["tiqets_sale"], console)


async def serve_sandboxes(
    platforms: list[str], *, port_base: int, seed: int, records: int, host: str, console: Console
) -> None:
    chosen = platforms or _platforms()
    pairs = []
    for p in chosen:
        if p not in registry.names():
            raise ValueError(f"unknown platform {p!r} (platforms: {', '.join(_platforms())})")
        port = port_of(p, port_base)
        check_port_free(host, port, p)  # before printing it as served
        pairs.append((build_sandbox(p, seed, records), port))
        console.print(f"{p}: http://{host}:{port}")
    await serve_forever(pairs, host)
