"""W1, TicketCo tickets -> Airship Wallet: one event with 1,000+ passes moves, and 1 % of the
tickets get a new seat. How many Wallet calls does the rerun make for those changes?

``python -m bench.wallet`` (a few minutes): a TicketCo sandbox with ``--records`` bookings and
an empty Wallet sandbox, each in its own process on loopback. The sync reads one day at one
venue: the day and venue of the largest future event with at least ``--min-tickets`` tickets
(each ticket is a pass per template, iOS and Android). Run 1 issues every pass; then that
event starts 30 minutes later and ``--share`` of the day's seated tickets change seat; run 2
is measured. Calls come from the Wallet sandbox's ``/_sandbox/stats`` (before/after), and the
passes it holds are checked field by field:

* every pass of the moved event shows the new start, the seat-changed passes the new seat,
  and no other pass changed;
* the target: 1 call for the event + 1 per changed ticket per pass template.

Results: ``results/<date>-w1.json`` (the rows, the checks, the machine, the commit, the
command). Exit 1 if a check fails; the calls are reported against the target, not failed.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import yaml

from bench import report
from bench.contenders import TICKETCO_TOKEN
from bench.procs import REPO, Sandbox, delta, run_measured

HERE = Path(__file__).resolve().parent
SYNC = "ticketco-tickets-to-wallet"
ZONE = ZoneInfo("Europe/Oslo")  # the TicketCo sandbox's venues
GROUP_PUT = "PUT /v1/events/project/{project_id}/passGroups/{group}"
PASS_PUT = "PUT /v1/pass/template/{template_id}/id/{external_id}"  # noqa: S105 - a route
Row = dict[str, Any]


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.wallet", description=__doc__)
    p.add_argument("--records", type=int, default=250_000, help="TicketCo bookings")
    p.add_argument("--min-tickets", type=int, default=1000, help="tickets of the moved event")
    p.add_argument("--share", type=float, default=0.01, help="share of seats changed")
    p.add_argument("--minutes", type=int, default=30, help="how far the event moves")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--port-base", type=int, default=18500)
    p.add_argument("--timeout", type=float, default=900, help="per run, seconds")
    p.add_argument("--results-dir", type=Path, default=HERE / "results")
    p.add_argument("--no-results", action="store_true", help="print only (tests)")
    return p.parse_args(argv)


def _items(ticketco: Sandbox, event_id: int) -> list[dict[str, Any]]:
    """An event's item grosses (its tickets) from TicketCo's public API."""
    found: list[dict[str, Any]] = []
    with httpx.Client(base_url=f"{ticketco.url}/api/public/v1", timeout=120) as client:
        page = 1
        while True:
            params: dict[str, Any] = {"token": TICKETCO_TOKEN, "event_id": event_id}
            batch = client.get(
                "item_grosses", params={**params, "page": page, "per_page": 1000}
            ).json()
            if not batch["item_grosses"]:
                return found
            found += batch["item_grosses"]
            page += 1


def _local(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["start_at"]).astimezone(ZONE)


def choose(ticketco: Sandbox, min_tickets: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The largest future event with at least ``min_tickets`` tickets, most of them seated
    (the sandbox seats one venue of three), and every event of its day at its venue (the
    sync's scope)."""
    data = ticketco.data()
    today = datetime.now(ZONE).date()
    future = [
        e
        for e in data["events"]
        if _local(e).date() > today and e["status"] not in ("cancelled", "canceled")
    ]
    for event in sorted(future, key=lambda e: (-e["bookings"], e["id"]))[:30]:
        items = _items(ticketco, event["id"])
        if len(items) >= min_tickets and 2 * sum(bool(i.get("seat_name")) for i in items) > len(
            items
        ):
            venue = event["location_name"].strip().casefold()
            scope = [
                e
                for e in future
                if _local(e).date() == _local(event).date()
                and e["location_name"].strip().casefold() == venue
            ]
            return event, scope
    raise SystemExit(f"no future event has {min_tickets} tickets: raise --records")


def project(ticketco: str, wallet: str, event: dict[str, Any]) -> dict[str, Any]:
    days = (_local(event).date() - datetime.now(ZONE).date()).days
    return {
        "connections": {
            "ticketco": {
                "platform": "ticketco",
                "base_url": f"{ticketco}/api/public/v1",
                "token": "${TICKETCO_TOKEN}",
                "page_size_param": "per_page",
                "page_size": 100,
                "short_page_is_last": True,
            },
            "wallet": {
                "platform": "airship_wallet",
                "base_url": f"{wallet}/v1",
                "project_id": 12345,
                "auth": "basic",
                "project_key": "sandbox-wallet-key",
                "project_secret": "${AIRSHIP_WALLET_SECRET}",
                "ios_template_id": 1001,
                "android_template_id": 1002,
            },
        },
        "syncs": {
            SYNC: {
                "source": {
                    "connection": "ticketco",
                    "stream": "tickets",
                    "venues": [event["location_name"].strip()],
                },
                "destination": {"connection": "wallet", "object": "event_tickets"},
                "window": {
                    "field": "attendance_at",
                    "from": f"+{days}d",
                    "to": f"+{days}d",
                    "timezone": "Europe/Oslo",
                },
            }
        },
    }


def passes(wallet: Sandbox) -> dict[tuple[int, str], dict[str, Any]]:
    """(template, ticket) -> the pass's fields, and its event's external id under ``_event``."""
    data = wallet.data()
    events = {e["id"]: e["external_id"] for e in data["events"]}
    return {
        (p["template_id"], p["external_id"]): {**p["fields"], "_event": events[p["event_id"]]}
        for p in data["passes"]
    }


def measured(name: str, cmd: list[str], env: dict[str, str], work: Path, args: Any) -> Row:
    logs = work / name
    logs.mkdir(parents=True, exist_ok=True)
    m = run_measured(cmd, env=env, cwd=work, timeout_s=args.timeout, logs=logs)
    out = m.stdout[m.stdout.find("{") :]
    result = json.loads(out) if out.startswith("{") else {}
    if m.exit_code != 0 or result.get("outcome") != "ok":
        raise SystemExit(f"{name} failed ({m.exit_code}): {m.stderr[-2000:]}")
    return {"run": name, **m.as_dict(), "result": result}


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    command = "python -m bench.wallet " + shlex.join(sys.argv[1:] if argv is None else argv)
    env_info = report.environment(command)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-wallet-") as tmp:
        work = Path(tmp)
        ticketco = Sandbox("ticketco", args.port_base, args.records, args.seed, work / "logs")
        wallet = Sandbox("airship_wallet", args.port_base + 1, 0, args.seed, work / "logs")
        try:
            ticketco.wait_ready()
            wallet.wait_ready()
            return _scenario(args, ticketco, wallet, work, rng, env_info)
        finally:
            ticketco.stop()
            wallet.stop()


def _scenario(
    args: Any,
    ticketco: Sandbox,
    wallet: Sandbox,
    work: Path,
    rng: random.Random,
    env_info: dict[str, Any],
) -> int:
    event, scope = choose(ticketco, args.min_tickets)
    tickets = {str(i["id"]): i for e in scope for i in _items(ticketco, e["id"])}
    moved = {str(i["id"]) for i in _items(ticketco, event["id"])}
    config = work / "ticketbridge.yaml"
    config.write_text(yaml.safe_dump(project(ticketco.url, wallet.url, event), sort_keys=False))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(work),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO),
        "TICKETCO_TOKEN": TICKETCO_TOKEN,
        "AIRSHIP_WALLET_SECRET": "sandbox-wallet-secret",
        "TICKETBRIDGE_DATABASE_URL": f"sqlite:///{work / 'state.db'}",
    }
    cmd = [sys.executable, "-m", "ticketbridge", "run", SYNC, "--json", "--config", str(config)]
    print(
        f"W1: event {event['id']} ({len(moved)} tickets) moves; {len(tickets)} tickets in "
        f"scope ({len(scope)} events at {event['location_name'].strip()} that day)",
        flush=True,
    )

    before = wallet.stats()
    first = measured("run-1", cmd, env, work, args)
    first["destination"] = delta(wallet.stats(), before)
    issued = passes(wallet)

    seated = sorted(n for n, i in tickets.items() if i.get("seat_name"))
    changed = sorted(rng.sample(seated, max(1, round(args.share * len(tickets)))))
    ticketco.mutate({"op": "event_start", "event_id": event["id"], "minutes": args.minutes})
    for n, number in enumerate(changed):
        ticketco.mutate({"op": "item", "item_id": int(number), "seat_name": f"W{n + 1}"})

    before = wallet.stats()
    second = measured("run-2", cmd, env, work, args)
    dst = delta(wallet.stats(), before)
    second["destination"] = dst
    after = passes(wallet)

    templates = len({t for t, _ in issued})
    target = 1 + templates * len(changed)
    calls = dst["total_requests"]
    checks = _checks(issued, after, moved, changed, str(event["id"]), second, len(tickets))
    row: Row = {
        "scenario": "W1",
        "records": args.records,
        "event": event["id"],
        "event_tickets": len(moved),
        "event_passes": sum(1 for (_, n) in after if n in moved),
        "tickets_in_scope": len(tickets),
        "seats_changed": len(changed),
        "seats_changed_in_moved_event": len(set(changed) & moved),
        "templates": templates,
        "target_calls": target,
        "destination_calls": calls,
        "destination_requests": dst["requests"],
        "pass_group_updates": dst["requests"].get(GROUP_PUT, 0),
        "pass_updates": dst["requests"].get(PASS_PUT, 0),
        "updated": second["result"].get("updated"),
        "source_calls_run_2": second["result"].get("source_calls"),
        "runs": [_slim(first), _slim(second)],
    }
    _print(row, checks)
    if not args.no_results:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        path = args.results_dir / f"{day}-w1.json"
        body = {"environment": env_info, "rows": [row], "checks": checks}
        path.write_text(json.dumps(body, indent=2, default=str) + "\n")
        print(f"wrote {path}")
    return 0 if all(c["ok"] for c in checks) else 1


def _slim(run: Row) -> Row:
    dst = run["destination"]
    return {
        **{k: v for k, v in run.items() if k not in ("destination", "result")},
        "counters": {k: run["result"].get(k) for k in ("read", "created", "updated", "unchanged")},
        "destination_calls": dst["total_requests"],
        "destination_requests": dst["requests"],
        "destination_writes": sum(dst["write_totals"].values()),
    }


def _checks(
    issued: dict[tuple[int, str], dict[str, Any]],
    after: dict[tuple[int, str], dict[str, Any]],
    moved: set[str],
    changed: list[str],
    event: str,
    second: Row,
    in_scope: int,
) -> list[Row]:
    starts = {f["startTime"]["value"] for (_, n), f in after.items() if n in moved}
    old = {f["startTime"]["value"] for (_, n), f in issued.items() if n in moved}
    seats = {n: f"W{i + 1}" for i, n in enumerate(changed)}
    wrong_seat = [
        k for k, f in after.items() if k[1] in seats and f["seat"]["value"] != seats[k[1]]
    ]
    others = [
        k
        for k, f in after.items()
        if k[1] not in moved and k[1] not in seats and f != issued.get(k)
    ]
    in_event = Counter(f["_event"] for f in after.values())
    want_updated = len(moved | set(changed))
    return [
        {
            "check": "run 1 issued a pass per ticket and template",
            "ok": len(issued) == 2 * in_scope,
            "detail": f"{len(issued)} passes for {in_scope} tickets",
        },
        {
            "check": "every pass of the moved event shows its new start",
            "ok": len(starts) == 1 and not starts & old and in_event[event] == 2 * len(moved),
            "detail": f"start {sorted(old)} -> {sorted(starts)}, {in_event[event]} passes",
        },
        {
            "check": "the changed seats, on both passes",
            "ok": not wrong_seat,
            "detail": f"{len(changed)} tickets, {len(wrong_seat)} passes wrong",
        },
        {
            "check": "no other pass changed",
            "ok": not others,
            "detail": f"{len(others)} changed",
        },
        {
            "check": "run 2 updated exactly the changed tickets",
            "ok": second["result"].get("updated") == want_updated,
            "detail": f"updated {second['result'].get('updated')}, expected {want_updated}",
        },
    ]


def _print(row: Row, checks: list[Row]) -> None:
    print(
        f"W1 run 2: {row['destination_calls']} Wallet calls (target {row['target_calls']}: 1 for "
        f"the event + {row['templates']} x {row['seats_changed']} seats): "
        f"{row['pass_group_updates']} pass-group updates, {row['pass_updates']} pass updates; "
        f"updated {row['updated']} tickets ({row['event_tickets']} of the moved event, "
        f"{row['event_passes']} passes)",
        flush=True,
    )
    for c in checks:
        print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
