"""TicketCo tickets → Airship Wallet passes end to end (issue 15): sandboxes under uvicorn,
the sync in a project file, ``ticketbridge`` as a subprocess.

Expectations are read from the TicketCo sandbox's own API (not through our connector), and
outcomes from the Wallet sandbox: its data (events, links, passes and their fields) and its
request and write counters.
"""

from __future__ import annotations

import csv
import io
import json
import queue
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from tests.e2e.harness import Stack, sigkill_when, writes_since
from ticketbridge.connectors.airship_wallet.sandbox import create_sandbox as wallet_sandbox
from ticketbridge.connectors.ticketco.sandbox import create_sandbox as ticketco_sandbox
from ticketbridge.sandbox import free_port

pytestmark = pytest.mark.e2e

SYNC = "ticketco-tickets-to-wallet"
TEMPLATES = (1001, 1002)
GROUP_PUT = "PUT /v1/events/project/{project_id}/passGroups/{group}"
PASS_PUT = "PUT /v1/pass/template/{template_id}/id/{external_id}"
LINKS_POST = "POST /v1/links/adaptive/multiple/project/{project_id}"
TOKEN_POST = "POST /token"
VENUES = "Europe/Oslo"  # the TicketCo sandbox's venues, and its days

Item = dict[str, Any]
Event = dict[str, Any]


@dataclass
class WalletStack(Stack):
    days: tuple[int, int] = (2, 3)  # the sync's window: today + days[0] .. today + days[1]


def start(
    tmp_path: Path,
    *,
    records: int = 2000,
    seed: int = 11,
    days: tuple[int, int] = (2, 3),
    wallet: dict[str, Any] | None = None,
    connection: dict[str, Any] | None = None,
    **settings: Any,
) -> WalletStack:
    """A TicketCo and a Wallet sandbox, and a tickets sync over events starting on the days
    ``today + days[0]`` through ``today + days[1]`` (small: about 100 tickets by default)."""
    sync = {
        "source": {"connection": "ticketco", "stream": "tickets"},
        "destination": {"connection": "airship_wallet", "object": "event_tickets"},
        "window": {
            "field": "attendance_at",
            "from": f"+{days[0]}d",
            "to": f"+{days[1]}d",
            "timezone": VENUES,
        },
        **settings,
    }
    stack = WalletStack.start(
        tmp_path,
        {
            "ticketco": ticketco_sandbox(seed=seed, records=records, today=datetime.now(UTC)),
            "airship_wallet": wallet_sandbox(seed=seed, **(wallet or {})),
        },
        {SYNC: sync},
    )
    assert isinstance(stack, WalletStack)
    stack.days = days
    if connection:
        project = yaml.safe_load(stack.config.read_text())
        project["connections"]["airship_wallet"].update(connection)
        stack.config.write_text(yaml.safe_dump(project, sort_keys=False))
    return stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[WalletStack]:
    s = start(tmp_path)
    yield s
    s.stop()


def source_tickets(stack: WalletStack) -> dict[str, tuple[Event, Item]]:
    """item id -> (event, item gross) for every item of an event in the sync's window, read
    straight from the TicketCo sandbox's public API."""
    base = stack.running["ticketco"].url + "/api/public/v1"
    token = stack.env["TICKETCO_TOKEN"]
    first, last = stack.days
    zone = ZoneInfo(VENUES)
    today = datetime.now(zone).date()
    lo = datetime.combine(today + timedelta(days=first), datetime.min.time(), zone)
    hi = datetime.combine(today + timedelta(days=last + 1), datetime.min.time(), zone)
    out: dict[str, tuple[Event, Item]] = {}
    with httpx.Client(timeout=30) as client:

        def pages(path: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
            page = 1
            while batch := client.get(
                f"{base}/{path}", params={"token": token, "page": page, **params}
            ).json()[key]:
                yield from batch
                page += 1

        for ev in list(pages("events", "events")):
            if lo <= datetime.fromisoformat(ev["start_at"]) < hi:
                for item in pages("item_grosses", "item_grosses", event_id=ev["id"]):
                    out[str(item["id"])] = (ev, item)
    return out


def wallet_time(value: str) -> str:
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def values(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v.get("value", v.get("micros")) for k, v in fields.items()}


def passes_by_link(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in data["passes"]:
        out.setdefault(p["external_id"], []).append(p)
    return out


def normalised(stack: Stack) -> dict[str, Any]:
    """The Wallet project's final state, without ids, timestamps or serials."""
    data = stack.data("airship_wallet")
    ext = {e["id"]: e["external_id"] for e in data["events"]}
    return {
        "events": {e["external_id"]: (e["fields"], e["pass_groups"]) for e in data["events"]},
        "links": {x["external_id"]: (ext[x["event_id"]], x["fields"]) for x in data["links"]},
        "passes": {(p["template_id"], p["external_id"]): p["fields"] for p in data["passes"]},
    }


def delta(before: dict[str, Any], after: dict[str, Any]) -> Counter[str]:
    return (
        Counter({k: n - before["requests"].get(k, 0) for k, n in after["requests"].items()})
        - Counter()
    )


# --- (1) first run --------------------------------------------------------------------------


def test_first_run_one_event_per_event_one_link_per_ticket_fields_as_at_the_source(
    stack: WalletStack,
) -> None:
    truth = source_tickets(stack)
    assert len(truth) > 50
    result = stack.run(SYNC)
    assert result["outcome"] == "ok" and result["created"] == len(truth), result
    assert result["rejected"] == 0
    data = stack.data("airship_wallet")

    events = {e["external_id"]: e for e in data["events"]}
    source_events = {str(ev["id"]): ev for ev, _ in truth.values()}
    assert set(events) == set(source_events), "one Wallet event per TicketCo event"
    for ext, ev in source_events.items():
        assert values(events[ext]["fields"]) == {
            "eventName": ev["title"],
            "venueTitle": " ".join(ev["location_name"].split()),
            "venueAddress": ev["street_address"],
            "startTime": wallet_time(ev["start_at"]),
            "doorsOpen": wallet_time(ev["doors_open_at"]),
            "endTime": wallet_time(ev["end_at"]),
        }
        assert events[ext]["pass_groups"] == [f"event-{ext}"]

    links = {x["external_id"]: x for x in data["links"]}
    assert len(data["links"]) == len(links) == len(truth), "one adaptive link per ticket"
    assert set(links) == set(truth)
    ids = {e["id"]: e["external_id"] for e in data["events"]}
    passes = passes_by_link(data)
    for number, (ev, item) in truth.items():
        link = links[number]
        assert ids[link["event_id"]] == str(ev["id"])
        cancelled = item["status"] != "sold"
        expected = {
            "ticketHolderName": f"{item['holder_first_name']} {item['holder_last_name']}",
            "section": item["section_name"],
            "ticketType": item["item_type_title"],
            "ticketNumber": number,
            "confirmationCode": str(item["ref_number"]),
            "faceValue": int(Decimal(item["price"]) * 1_000_000),
            "status": "Cancelled"
            if cancelled
            else ("Attended" if item["checked_in_at"] else "Valid"),
            "barcode_value": "VOID" if cancelled else item["barcode"],
            "barcodeAltText": "CANCELLED" if cancelled else item["barcode"],
        }
        for source_key, field in (
            ("seat_name", "seat"),
            ("row_name", "row"),
            ("gate_name", "gate"),
        ):
            if item.get(source_key) is not None:
                expected[field] = item[source_key]
        assert values(link["fields"]) == expected, number
        assert link["fields"]["faceValue"]["currencyCode"] == item["currency"] == "NOK"
        assert sorted(p["template_id"] for p in passes[number]) == list(TEMPLATES)
        for p in passes[number]:
            assert values(p["fields"]) == {**values(events[str(ev["id"])]["fields"]), **expected}
    assert any("seat" in links[n]["fields"] for n in truth)
    assert any("seat" not in links[n]["fields"] for n in truth), "standing tickets: no seat"


# --- (2) rerun, nothing changed ---------------------------------------------------------------


def test_rerun_with_nothing_changed_makes_no_destination_call(stack: WalletStack) -> None:
    first = stack.run(SYNC)
    before = stack.stats("airship_wallet")
    second = stack.run(SYNC)
    assert second["outcome"] == "ok" and second["created"] == second["updated"] == 0
    assert second["unchanged"] == first["created"] > 0
    assert second["destination_calls"] == 0
    after = stack.stats("airship_wallet")
    assert after["total_requests"] == before["total_requests"], "not even a token or a read"
    assert writes_since(before, after) == {}


# --- (3) one seat changed --------------------------------------------------------------------


def test_one_seat_changed_is_one_pass_update_per_template_with_the_change_message(
    stack: WalletStack,
) -> None:
    truth = source_tickets(stack)
    stack.run(SYNC)
    number = next(n for n, (_, item) in truth.items() if item.get("seat_name"))
    before_data = normalised(stack)
    before = stack.stats("airship_wallet")
    stack.admin("ticketco", "mutate", {"op": "item", "item_id": int(number), "seat_name": "99"})
    result = stack.run(SYNC)
    assert result["outcome"] == "ok" and result["updated"] == 1 and result["created"] == 0
    after = stack.stats("airship_wallet")
    assert delta(before, after) == Counter({PASS_PUT: len(TEMPLATES)})
    assert writes_since(before, after) == {f"pass:{t}:{number}": {"update": 1} for t in TEMPLATES}
    data = stack.data("airship_wallet")
    for p in passes_by_link(data)[number]:
        assert p["fields"]["seat"]["value"] == "99"
        assert p["notifications"] == ["Seat changed to 99"]
    after_data = normalised(stack)
    changed = {
        k for k, fields in after_data["passes"].items() if fields != before_data["passes"][k]
    }
    assert changed == {(t, number) for t in TEMPLATES}
    assert after_data["events"] == before_data["events"]


# --- (4) one event's start changed -------------------------------------------------------------


def test_event_start_changed_is_one_pass_group_call_reaching_every_pass(tmp_path: Path) -> None:
    stack = start(tmp_path, records=9000, days=(2, 2))
    try:
        truth = source_tickets(stack)
        per_event = Counter(str(ev["id"]) for ev, _ in truth.values())
        event_id, tickets = per_event.most_common(1)[0]
        assert tickets >= 100, per_event
        assert stack.run(SYNC)["created"] == len(truth)
        before = stack.stats("airship_wallet")
        moved = stack.admin(
            "ticketco", "mutate", {"op": "event_start", "event_id": int(event_id), "minutes": 90}
        )
        result = stack.run(SYNC)
        assert result["outcome"] == "ok" and result["updated"] == tickets, result
        after = stack.stats("airship_wallet")
        assert delta(before, after) == Counter({GROUP_PUT: 1})
        new_start = wallet_time(moved["start_at"])
        data = stack.data("airship_wallet")
        ext = {e["id"]: e["external_id"] for e in data["events"]}
        of_event = [p for p in data["passes"] if ext[p["event_id"]] == event_id]
        assert len(of_event) == tickets * len(TEMPLATES)
        assert {p["fields"]["startTime"]["value"] for p in of_event} == {new_start}
        assert all(f"Start time changed to {new_start}" in p["notifications"] for p in of_event)
        others = [p for p in data["passes"] if ext[p["event_id"]] != event_id]
        assert others and all(p["fields"]["startTime"]["value"] != new_start for p in others)
        assert all(not p["notifications"] for p in others)
    finally:
        stack.stop()


# --- (5) cancelled tickets --------------------------------------------------------------------


def test_cancelled_tickets_say_cancelled_with_voided_barcode_and_nothing_else_written(
    stack: WalletStack,
) -> None:
    truth = source_tickets(stack)
    stack.run(SYNC)
    links = passes_by_link(stack.data("airship_wallet"))
    seeded = [n for n, (_, item) in truth.items() if item["status"] != "sold"]
    assert seeded, "the seed cancels some tickets in the window"
    for n in seeded:
        for p in links[n]:
            assert values(p["fields"])["status"] == "Cancelled"
            assert p["fields"]["barcode_value"]["value"] == "VOID"

    valid = [n for n, (_, item) in truth.items() if item["status"] == "sold"][:3]
    before_data = normalised(stack)
    before = stack.stats("airship_wallet")
    for n in valid:
        stack.admin("ticketco", "mutate", {"op": "item", "item_id": int(n), "status": "cancelled"})
    result = stack.run(SYNC)
    assert result["outcome"] == "ok" and result["updated"] == len(valid)
    after = stack.stats("airship_wallet")
    assert delta(before, after) == Counter({PASS_PUT: len(valid) * len(TEMPLATES)})
    assert writes_since(before, after) == {
        f"pass:{t}:{n}": {"update": 1} for n in valid for t in TEMPLATES
    }
    after_data = normalised(stack)
    assert after_data["events"] == before_data["events"]
    assert after_data["links"] == before_data["links"], "links are not rewritten"
    for key, fields in after_data["passes"].items():
        old = before_data["passes"][key]
        if key[1] not in valid:
            assert fields == old
            continue
        moved = {k for k in fields if fields[k] != old.get(k)}
        assert moved == {"status", "barcode_value", "barcodeAltText"}, moved
        assert values(fields)["status"] == "Cancelled"
        assert (fields["barcode_value"]["value"], fields["barcodeAltText"]["value"]) == (
            "VOID",
            "CANCELLED",
        )
    for n in valid:
        for p in passes_by_link(stack.data("airship_wallet"))[n]:
            assert p["notifications"] == ["Ticket Cancelled"]


# --- (6) OAuth token expiring mid-run ---------------------------------------------------------


def test_oauth_token_expiring_mid_run_is_renewed_and_the_run_ends_ok(tmp_path: Path) -> None:
    stack = start(
        tmp_path,
        wallet={"token_ttl_s": 1.0},
        connection={"auth": "oauth", "batch_size": 10, "concurrency": 1},
    )
    try:
        truth = source_tickets(stack)
        stack.admin("airship_wallet", "faults", {"latency_ms": 150, "slow_rate": 1.0})
        proc = stack.popen("run", SYNC, "--json")
        # Mid-run, every token is also revoked at once (an expiry the client could not see
        # coming): the next request gets a 401, which must be answered by a new token.
        deadline = time.monotonic() + 60
        while len(stack.data("airship_wallet")["links"]) < 10:
            assert proc.poll() is None, "the run ended before its tokens were revoked"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        revoked = stack.admin("airship_wallet", "mutate", {"op": "revoke_tokens"})
        assert revoked["revoked"] >= 1
        out, errors = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + errors
        result = json.loads(out)
        assert result["outcome"] == "ok" and result["created"] == len(truth), result
        assert result["rejected"] == 0
        stats = stack.stats("airship_wallet")
        assert stats["statuses"].get("401", 0) >= 1, "the revoked token was refused once"
        assert stats["requests"][TOKEN_POST] >= 3, stats["requests"]  # expiries + the 401
        assert {x["external_id"] for x in stack.data("airship_wallet")["links"]} == set(truth)
        assert "401" not in errors and "Unauthorized" not in out
    finally:
        stack.stop()


# --- (7) SIGKILL mid-run -----------------------------------------------------------------------


def test_sigkill_mid_run_then_rerun_has_no_duplicate_link_and_none_missing(
    tmp_path: Path,
) -> None:
    stack = start(tmp_path, seed=5, connection={"batch_size": 5}, batch_size=10)
    try:
        truth = source_tickets(stack)
        stack.admin("airship_wallet", "faults", {"latency_ms": 60, "slow_rate": 1.0})
        proc = stack.popen("run", SYNC)
        kill_at = random.randint(5, len(truth) // 2)
        sigkill_when(
            stack, proc, lambda: len(stack.data("airship_wallet")["links"]), kill_at, "links"
        )
        partial = len(stack.data("airship_wallet")["links"])
        assert 0 < partial < len(truth), f"killed too early or too late ({partial})"
        stack.admin("airship_wallet", "faults", {})
        result = stack.run(SYNC)
        assert result["outcome"] == "ok", result
        data = stack.data("airship_wallet")
        external = [x["external_id"] for x in data["links"]]
        assert len(external) == len(set(external)), "no duplicate link per external id"
        assert set(external) == set(truth), "none missing"
        passes = Counter((p["template_id"], p["external_id"]) for p in data["passes"])
        assert set(passes.values()) == {1} and len(passes) == len(truth) * len(TEMPLATES)
        events = [e["external_id"] for e in data["events"]]
        assert len(events) == len(set(events))
        writes = stack.stats("airship_wallet")["writes"]
        assert all(k.get("create", 0) <= 1 for k in writes.values()), "nothing created twice"
    finally:
        stack.stop()


# --- (8) faults -------------------------------------------------------------------------------


def test_faults_give_the_same_final_state_field_by_field(tmp_path: Path) -> None:
    (tmp_path / "clean").mkdir()
    (tmp_path / "faulty").mkdir()
    clean = start(tmp_path / "clean", seed=21, connection={"batch_size": 10})
    faulty = start(tmp_path / "faulty", seed=21, connection={"batch_size": 10})
    try:
        faults = {"rate_5xx": 0.1, "rate_429": 0.1, "retry_after_s": 1, "seed": 4}
        for platform in ("ticketco", "airship_wallet"):
            faulty.admin(platform, "faults", faults)
        assert clean.run(SYNC)["outcome"] == "ok"
        faulty.run_until_ok(SYNC)
        injected = Counter(faulty.stats("airship_wallet")["faults"]) + Counter(
            faulty.stats("ticketco")["faults"]
        )
        assert injected.get("429") and injected.get("5xx"), injected
        want, got = normalised(clean), normalised(faulty)
        assert got["events"] == want["events"]
        assert got["links"] == want["links"]
        assert got["passes"] == want["passes"]
    finally:
        clean.stop()
        faulty.stop()


# --- (9) links CSV ----------------------------------------------------------------------------


def test_links_csv_lists_every_ticket_with_its_url(stack: WalletStack) -> None:
    truth = source_tickets(stack)
    stack.run(SYNC)
    proc = stack.cli("links", SYNC, "--csv", "-")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert {r["key"] for r in rows} == {f"ticket:ticketco:{n}" for n in truth}
    assert len(rows) == len(truth)
    links = {x["external_id"]: x for x in stack.data("airship_wallet")["links"]}
    for row in rows:
        link = links[row["ticket"]]
        assert row["key"] == f"ticket:ticketco:{row['ticket']}"
        assert row["url"].startswith("https://") and row["url"].endswith("/" + link["id"])
        assert row["ios_url"] == row["url"] + "/ios"
        assert row["android_url"] == row["url"] + "/android"
        assert row["outcome"] == "ok" and row["install_status"] == ""
    for secret in stack.env.values():
        assert secret not in proc.stdout and secret not in proc.stderr

    path = stack.directory / "links.csv"
    assert stack.cli("links", SYNC, "--csv", str(path)).returncode == 0
    assert path.read_text() == proc.stdout
    unknown = stack.cli("links", "no-such-sync")
    assert unknown.returncode == 2 and "no-such-sync" in unknown.stderr


# --- (9) install callbacks --------------------------------------------------------------------

CALLBACK_ENV = "WALLET_CALLBACK_SECRET"
CALLBACK_SECRET = "e2e-callback-secret-6f1c2a9d"
CALLBACK_HEADER = "X-Ticketbridge-Callback-Secret"


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """``proc``'s stdout, line by line, readable with a timeout."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _install_status(stack: WalletStack) -> dict[str, str]:
    proc = stack.cli("links", SYNC, "--csv", "-")
    assert proc.returncode == 0, proc.stderr
    return {r["ticket"]: r["install_status"] for r in csv.DictReader(io.StringIO(proc.stdout))}


def test_install_callbacks_need_the_secret_and_show_in_links(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/wallet"
    stack = start(
        tmp_path,
        connection={"callbacks": {"url": url, "port": port, "secret": "${" + CALLBACK_ENV + "}"}},
    )
    stack.env[CALLBACK_ENV] = CALLBACK_SECRET
    serve = None
    outputs: list[str] = []
    try:
        truth = source_tickets(stack)
        first = stack.run(SYNC)
        assert first["outcome"] == "ok" and first["created"] == len(truth)
        assert set(_install_status(stack).values()) == {""}, "no callback heard yet"

        serve = stack.popen("serve")
        lines = _lines(serve)
        line = lines.get(timeout=60)
        assert f"Wallet callbacks of airship_wallet on http://127.0.0.1:{port}" in line, line
        assert f"registered with Wallet project 12345 as {url}" in line
        outputs.append(line)
        registered = stack.data("airship_wallet")["callback"]
        assert registered == {"baseUrl": url, "headers": {CALLBACK_HEADER: CALLBACK_SECRET}}

        # Refused without the secret, and with a wrong one: 401, and nothing recorded.
        one = sorted(truth)[0]
        body = {"passId": 1, "templateId": 1001, "externalId": one, "platform": "ios"}
        with httpx.Client(timeout=10) as client:
            for headers in ({}, {CALLBACK_HEADER: "a-wrong-secret-of-some-length"}):
                for path in ("/pass/install", "/pass/uninstall", "/anything"):
                    refused = client.post(url + path, json=body, headers=headers)
                    assert refused.status_code == 401, (path, refused.text)
                    outputs.append(refused.text)
            lost = client.post(
                url + "/elsewhere", json=body, headers={CALLBACK_HEADER: CALLBACK_SECRET}
            )
            assert lost.status_code == 404
        assert set(_install_status(stack).values()) == {""}

        # Wallet's own callbacks (the sandbox simulating phones) carry the registered header.
        installed, removed = sorted(truth)[:2], sorted(truth)[1]
        stack.admin("airship_wallet", "mutate", {"op": "install", "external_ids": installed})
        wait_for(lambda: len(stack.data("airship_wallet")["callbacks_sent"]) == 4)
        sent = stack.data("airship_wallet")["callbacks_sent"]
        assert [s["status"] for s in sent] == [200] * 4, sent
        status = _install_status(stack)
        both = "installed (android, ios)"
        assert {n: status[n] for n in installed} == {n: both for n in installed}
        assert set(status.values()) == {both, ""} and len(status) == len(truth)

        stack.admin("airship_wallet", "mutate", {"op": "uninstall", "external_ids": [removed]})
        wait_for(lambda: len(stack.data("airship_wallet")["callbacks_sent"]) == 6)
        status = _install_status(stack)
        assert status[removed] == "uninstalled (android, ios)"
        assert status[installed[0]] == both

        table = stack.cli("links", SYNC)
        assert table.returncode == 0 and "install_status" in table.stdout
        assert "uninstalled (android, ios)" in table.stdout
        outputs += [table.stdout, table.stderr]
        csv_out = stack.cli("links", SYNC, "--csv", "-")
        outputs += [csv_out.stdout, csv_out.stderr]
    finally:
        if serve is not None:
            serve.send_signal(signal.SIGINT)
            rest, errors = serve.communicate(timeout=30)
            outputs += [rest, errors]
        stack.stop()
    assert serve is not None and serve.returncode == 0, outputs[-1]
    secrets = [CALLBACK_SECRET, *stack.env.values()]
    for text in outputs:
        for secret in secrets:
            assert secret not in text
    for db in tmp_path.glob("state.db*"):
        content = db.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, db.name


def wait_for(done: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
