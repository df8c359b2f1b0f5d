"""The integrations the reliability suite drives, one entry each.

An entry says how to start its sandboxes and sync (through ``tests/e2e/harness.py``), how many
destination records have landed (where a SIGKILL is aimed), and the destination's final state
as ``{record: {field: value}}`` without what the destination makes up itself (ids,
timestamps), so two runs compare field by field. A new integration is one more entry in
:data:`INTEGRATIONS` (TIXNGO -> SECUTIX 360 was added that way).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.harness import Stack
from ticketbridge.connectors import registry
from ticketbridge.connectors.airship_crm.sandbox import create_sandbox as airship_sandbox
from ticketbridge.connectors.airship_wallet.sandbox import create_sandbox as wallet_sandbox
from ticketbridge.connectors.heyloyalty.sandbox import create_sandbox as heyloyalty_sandbox
from ticketbridge.connectors.secutix360.sandbox import create_sandbox as s360_sandbox
from ticketbridge.connectors.ticketco.sandbox import create_sandbox as ticketco_sandbox
from ticketbridge.connectors.ticketmaster.sandbox import create_sandbox as ticketmaster_sandbox
from ticketbridge.connectors.tixngo.sandbox import create_sandbox as tixngo_sandbox
from ticketbridge.demo import INTEGRATIONS as DEMO
from ticketbridge.engine.spec import RunOptions
from ticketbridge.http import HttpContext
from ticketbridge.project import load_project
from ticketbridge.runtime import Runtime
from ticketbridge.sandbox import Faults, SandboxApp

State = dict[str, dict[str, Any]]
# One "now" for every sandbox of the session: seeded data derived from it (a TIXNGO status
# date, a TicketCo booking's day) is then the same in a clean run and in a killed one.
NOW = datetime.now(UTC)
MADE_UP = frozenset({"id", "created_at", "updated_at", "received_at"})


def _demo_block(sync: str) -> dict[str, Any]:
    return next(i for i in DEMO if i.sync == sync).config()


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in MADE_UP}


@dataclass(frozen=True)
class Integration:
    """One sync from a source sandbox to a destination sandbox."""

    name: str  # the sync's name in the project file
    source: str
    destination: str
    sandboxes: Callable[[int], dict[str, SandboxApp]]  # seed -> platform -> sandbox
    block: Callable[[], dict[str, Any]]  # the sync's settings
    landed: Callable[[Any], int]  # the destination sandbox's store -> records written so far
    state: Callable[[dict[str, Any]], State]  # destination data -> final state
    duplicates: Callable[[dict[str, Any]], Counter[str]]  # destination data -> kind -> extra
    at_least_once: frozenset[str] = frozenset()  # duplicate kinds the platform cannot avoid
    connection: dict[str, Any] = field(default_factory=dict)  # destination connection extras
    slow: dict[str, Any] = field(default_factory=lambda: {"latency_ms": 30, "slow_rate": 1.0})

    def start(self, directory: Path, seed: int) -> Stack:
        """The sandboxes under uvicorn and a project file wired to them (the e2e harness)."""
        directory.mkdir(parents=True, exist_ok=True)
        stack = Stack.start(directory, self.sandboxes(seed), {self.name: self.block()})
        if self.connection:
            project = yaml.safe_load(stack.config.read_text())
            project["connections"][self.destination].update(self.connection)
            stack.config.write_text(yaml.safe_dump(project, sort_keys=False))
        return stack

    def landed_in(self, stack: Stack) -> int:
        """Records written so far, read from the sandbox's store in this process: cheap
        enough to poll every few milliseconds while a run is going."""
        return self.landed(stack.running[self.destination].sandbox.store)

    def run(self, project: Path, env: dict[str, str], state: str, http: HttpContext) -> Any:
        """One run of the sync in this process (the CLI's code path below the command line)."""
        runtime = Runtime.open(load_project(project, env=env), http, url=state)
        try:
            return asyncio.run(runtime.run(self.name, RunOptions()))
        finally:
            runtime.close()

    def run_in_process(
        self,
        directory: Path,
        seed: int,
        faults: dict[str, Any] | None = None,
        sandboxes: dict[str, SandboxApp] | None = None,
    ) -> tuple[Any, dict[str, Any], dict[str, SandboxApp]]:
        """A run against in-process sandboxes (ASGI, no sockets), fresh ones unless
        ``sandboxes`` are given, ``faults`` set on every one of them; returns the run's
        result, the destination's data and the sandboxes. Retries do not wait: the back-off
        is the HTTP layer's, tested elsewhere."""
        directory.mkdir(parents=True, exist_ok=True)
        sandboxes = sandboxes or self.sandboxes(seed)
        http = HttpContext(sleep=_no_wait)
        connections: dict[str, dict[str, Any]] = {}
        env: dict[str, str] = {}
        for platform, sandbox in sandboxes.items():
            spec = registry.get(platform).sandbox
            assert spec is not None
            origin = f"http://{platform.replace('_', '-')}.reliability.test"
            http.mount_app(origin, sandbox.app)
            connections[platform] = spec.config(origin)
            if platform == self.destination:
                connections[platform].update(self.connection)
            env.update(spec.env)
            if faults:
                sandbox.faults = Faults.model_validate(faults)
                sandbox.app.rng = random.Random(sandbox.faults.seed)  # type: ignore[attr-defined]
        project = directory / "ticketbridge.yaml"
        project.write_text(
            yaml.safe_dump({"connections": connections, "syncs": {self.name: self.block()}})
        )
        result = self.run(project, env, f"sqlite:///{directory / 'state.db'}", http)
        return result, sandboxes[self.destination].store.dump(), sandboxes


async def _no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


# --- TicketCo -> Airship CRM ---------------------------------------------------------------


def _airship_state(data: dict[str, Any]) -> State:
    contacts = {c["id"]: c for c in data["contacts"]}
    out: State = {}
    for c in data["contacts"]:
        row = _plain(c)
        row["units"] = sorted(
            (u["name"], sorted((g["name"], g["folder_name"]) for g in u["groups"]))
            for u in c["units"]
        )
        out[f"contact:{c['email'] or c['mobile_number']}"] = row
    for b in data["bookings"]:
        row = _plain(b)
        owner = contacts[row.pop("contact_id")]
        row["contact"] = owner["email"] or owner["mobile_number"]
        row["notes"] = [n.get("note") for n in row.get("notes") or []]
        out[f"booking:{b['booking_reference']}"] = row
    return out


def _airship_duplicates(data: dict[str, Any]) -> Counter[str]:
    dup: Counter[str] = Counter()
    for kind, values in (
        ("booking", [b["booking_reference"] for b in data["bookings"]]),
        ("contact email", [c["email"] for c in data["contacts"] if c["email"]]),
        ("contact mobile", [c["mobile_number"] for c in data["contacts"] if c["mobile_number"]]),
    ):
        dup[kind] = len(values) - len(set(values))
    return +dup


TICKETCO_AIRSHIP = Integration(
    name="ticketco-bookings-to-airship",
    source="ticketco",
    destination="airship_crm",
    sandboxes=lambda seed: {
        "ticketco": ticketco_sandbox(seed=seed, records=300, today=NOW),
        "airship_crm": airship_sandbox(seed=seed),
    },
    block=lambda: _demo_block("ticketco-bookings-to-airship"),
    landed=lambda store: len(store.bookings),
    state=_airship_state,
    duplicates=_airship_duplicates,
)


# --- Ticketmaster -> Heyloyalty ------------------------------------------------------------


def _heyloyalty_state(data: dict[str, Any]) -> State:
    out: State = {f"member:{m['fields'].get('email')}": _plain(m) for m in data["members"]}
    orders: dict[str, list[dict[str, Any]]] = {}
    for row in data["tracking"]:
        orders.setdefault(str(row.get("order_id")), []).append(_plain(row))
    for order_id, rows in orders.items():
        # Once each: a re-import shows as a duplicate, not as a changed order.
        unique = {repr(sorted(r.items())): r for r in rows}
        out[f"order:{order_id}"] = {"rows": sorted(unique)}
    return out


def _heyloyalty_duplicates(data: dict[str, Any]) -> Counter[str]:
    emails = [m["fields"].get("email") for m in data["members"]]
    rows = Counter(repr(sorted(_plain(r).items())) for r in data["tracking"])
    dup = Counter(
        {
            "member": len(emails) - len(set(emails)),
            "purchase row": sum(n - 1 for n in rows.values()),
        }
    )
    return +dup


TICKETMASTER_HEYLOYALTY = Integration(
    name="ticketmaster-customers-to-heyloyalty",
    source="ticketmaster",
    destination="heyloyalty",
    sandboxes=lambda seed: {
        "ticketmaster": ticketmaster_sandbox(seed=seed, records=120, today=NOW),
        "heyloyalty": heyloyalty_sandbox(seed=seed),
    },
    block=lambda: {**_demo_block("ticketmaster-customers-to-heyloyalty"), "batch_size": 20},
    # Members only: purchases land a whole import at a time, too coarse to aim a kill at.
    landed=lambda store: len(store.lists[store.list_id].members),
    state=_heyloyalty_state,
    duplicates=_heyloyalty_duplicates,
    # platforms.md 5.6: the tracking import has no idempotency key (ObjectSpec.at_least_once).
    at_least_once=frozenset({"purchase row"}),
)


# --- TicketCo -> Airship Wallet ------------------------------------------------------------


def _wallet_state(data: dict[str, Any]) -> State:
    ext = {e["id"]: e["external_id"] for e in data["events"]}
    out: State = {}
    for e in data["events"]:
        out[f"event:{e['external_id']}"] = {
            "fields": e["fields"],
            "pass_groups": sorted(e["pass_groups"]),
        }
    for x in data["links"]:
        out[f"link:{x['external_id']}"] = {
            "event": ext[x["event_id"]],
            "fields": x["fields"],
            "templates": sorted(x["templates"]),
        }
    for p in data["passes"]:
        out[f"pass:{p['template_id']}:{p['external_id']}"] = {
            "event": ext[p["event_id"]],
            "fields": p["fields"],
            "status": p["status"],
            "notifications": p["notifications"],
        }
    return out


def _wallet_duplicates(data: dict[str, Any]) -> Counter[str]:
    dup: Counter[str] = Counter()
    for kind, values in (
        ("event", [e["external_id"] for e in data["events"]]),
        ("link", [x["external_id"] for x in data["links"]]),
        ("pass", [(p["template_id"], p["external_id"]) for p in data["passes"]]),
    ):
        dup[kind] = len(values) - len(set(values))
    return +dup


TICKETCO_WALLET = Integration(
    name="ticketco-tickets-to-wallet",
    source="ticketco",
    destination="airship_wallet",
    sandboxes=lambda seed: {
        "ticketco": ticketco_sandbox(seed=seed, records=1500, today=NOW),
        "airship_wallet": wallet_sandbox(seed=seed),
    },
    block=lambda: {
        "source": {"connection": "ticketco", "stream": "tickets"},
        "destination": {"connection": "airship_wallet", "object": "event_tickets"},
        "window": {"field": "attendance_at", "from": "+2d", "to": "+3d"},
        "batch_size": 20,
    },
    landed=lambda store: len(store.links),
    state=_wallet_state,
    duplicates=_wallet_duplicates,
    # Links are made several per call: small calls give a kill more places to land.
    connection={"batch_size": 5},
)


# --- TIXNGO -> SECUTIX 360 ------------------------------------------------------------------


def _s360_state(data: dict[str, Any]) -> State:
    emails = {c["contact_number"]: c["email"].casefold() for c in data["contacts"]}
    out: State = {}
    for c in data["contacts"]:
        row = {k: v for k, v in c.items() if k not in ("contact_number", "creation_date")}
        out[f"contact:{c['email'].casefold()}"] = row
    for t in data["tickets"]:
        row = _plain(t)
        for role in ("owner", "holder"):
            number = row.pop(f"{role}_contact_number")
            row[role] = emails.get(number) if number is not None else None
        out[f"ticket:{t['ticket_id']}"] = row
    return out


TIXNGO_S360 = Integration(
    name="tixngo-feedback-to-secutix360",
    source="tixngo",
    destination="secutix360",
    sandboxes=lambda seed: {
        "tixngo": tixngo_sandbox(seed=seed, records=300, today=NOW),
        "secutix360": s360_sandbox(seed=seed, records=300, today=NOW),
    },
    block=lambda: {**_demo_block("tixngo-feedback-to-secutix360"), "batch_size": 20},
    landed=lambda store: sum(t.external_status is not None for t in store.tickets.values()),
    state=_s360_state,
    duplicates=lambda data: +Counter({"contact": len(data["duplicate_emails"])}),
)


INTEGRATIONS: tuple[Integration, ...] = (
    TICKETCO_AIRSHIP,
    TICKETMASTER_HEYLOYALTY,
    TICKETCO_WALLET,
    TIXNGO_S360,
)


def differences(want: State, got: State) -> tuple[list[str], list[str], list[str]]:
    """Records missing from ``got``, records only in ``got``, and ``record.field`` that differ."""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    fields = [
        f"{key}.{name}: {want[key].get(name)!r} != {got[key].get(name)!r}"
        for key in sorted(set(want) & set(got))
        for name in sorted(set(want[key]) | set(got[key]))
        if want[key].get(name) != got[key].get(name)
    ]
    return missing, extra, fields
