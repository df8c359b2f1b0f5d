"""TicketCo → Airship CRM end to end: sandboxes under uvicorn, `ticketbridge` as a subprocess.

Expectations are computed from the TicketCo sandbox's own API (not from our connector), and
outcomes are read back from the Airship sandbox (its data and its write counters).
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.harness import Stack, sigkill_when, writes_since
from ticketbridge.connectors.airship_crm.sandbox import create_sandbox as airship_sandbox
from ticketbridge.connectors.ticketco.sandbox import create_sandbox as ticketco_sandbox
from ticketbridge.demo import INTEGRATIONS
from ticketbridge.engine.state.sql import open_store

pytestmark = pytest.mark.e2e

SYNC = "ticketco-bookings-to-airship"
VENUES = ["Riverside Hall", "Bowl Arena"]
TAGS = ["Golf", "Bowling"]


def sync_block(**settings: Any) -> dict[str, Any]:
    block = next(i for i in INTEGRATIONS if i.sync == SYNC).config()
    assert block["source"]["venues"] == VENUES
    return {**block, **settings}


def start(tmp_path: Path, records: int = 300, seed: int = 11, **settings: Any) -> Stack:
    return Stack.start(
        tmp_path,
        {
            "ticketco": ticketco_sandbox(seed=seed, records=records, today=datetime.now(UTC)),
            "airship_crm": airship_sandbox(seed=seed),
        },
        {SYNC: sync_block(**settings)},
    )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = start(tmp_path)
    yield s
    s.stop()


def expected_bookings(stack: Stack) -> dict[str, dict[str, Any]]:
    """ref -> its event, for every booking in the window at the configured venues, read
    straight from the TicketCo sandbox's public API."""
    base = stack.running["ticketco"].url + "/api/public/v1"
    token = stack.env["TICKETCO_TOKEN"]
    today = datetime.now(UTC).date()
    lo = datetime.combine(today - timedelta(days=1), datetime.min.time(), UTC)
    hi = datetime.combine(today + timedelta(days=31), datetime.min.time(), UTC)
    out: dict[str, dict[str, Any]] = {}
    with httpx.Client(timeout=30) as client:
        events, page = [], 1
        while batch := client.get(f"{base}/events", params={"token": token, "page": page}).json()[
            "events"
        ]:
            events += batch
            page += 1
        for ev in events:
            start_at = datetime.fromisoformat(ev["start_at"])
            # Venue names are typed by hand at the source: " Bowl Arena " is Bowl Arena.
            if _venue(ev["location_name"]) not in map(_venue, VENUES) or not lo <= start_at < hi:
                continue
            page = 1
            while items := client.get(
                f"{base}/item_grosses", params={"token": token, "event_id": ev["id"], "page": page}
            ).json()["item_grosses"]:
                for item in items:
                    out[str(item["ref_number"])] = ev
                page += 1
    return out


def opt_ins(stack: Stack, refs: set[str]) -> dict[str, bool | None]:
    """ref -> the buyer's latest e-mail opt-in answer on that booking (None: no answer), read
    straight from the TicketCo sandbox's public API."""
    base = stack.running["ticketco"].url + "/api/public/v1"
    token = stack.env["TICKETCO_TOKEN"]
    events = {str(ev["id"]) for ev in expected_bookings(stack).values()}
    out: dict[str, bool | None] = {}
    with httpx.Client(timeout=30) as client:
        for event_id in sorted(events):
            page = 1
            while items := client.get(
                f"{base}/item_grosses", params={"token": token, "event_id": event_id, "page": page}
            ).json()["item_grosses"]:
                for item in items:
                    ref = str(item["ref_number"])
                    if ref in refs and item.get("buyer_email_opt_in") is not None:
                        out[ref] = item["buyer_email_opt_in"]
                    else:
                        out.setdefault(ref, None)
                page += 1
    return {ref: out.get(ref) for ref in refs}


def _venue(name: str) -> str:
    return " ".join(name.split()).casefold()


def dead_letters(stack: Stack) -> dict[str, str]:
    path = stack.directory / "errors.csv"
    proc = stack.cli("errors", SYNC, "--csv", str(path))
    assert proc.returncode == 0, proc.stderr
    with path.open() as fh:
        return {row["key"].rsplit(":", 1)[1]: row["reason"] for row in csv.DictReader(fh)}


def test_first_run_sends_every_booking_of_the_window_with_contact_unit_and_groups(
    stack: Stack,
) -> None:
    expected = expected_bookings(stack)
    assert len(expected) > 20
    result = stack.run(SYNC)
    assert result["outcome"] == "ok"
    data = stack.data("airship_crm")
    sent = {b["booking_reference"]: b for b in data["bookings"]}
    rejected = dead_letters(stack)
    assert set(sent) | set(rejected) == set(expected), "every booking is sent or reported"
    assert not set(sent) & set(rejected)
    assert result["created"] == len(sent) and result["rejected"] == len(rejected)
    assert rejected, "the seeded data has bookings with neither email nor UK mobile"
    assert all("no email and no valid UK mobile" in r for r in rejected.values())

    units = {u["id"]: u["name"] for u in data["units"]}
    contacts = {c["id"]: c for c in data["contacts"]}
    for ref, booking in sent.items():
        event = expected[ref]
        assert _venue(units[booking["unit_id"]]) == _venue(event["location_name"])
        contact = contacts[booking["contact_id"]]
        groups = {
            g["name"]
            for u in contact["units"]
            if u["id"] == booking["unit_id"]
            for g in u["groups"]
        }
        assert "Booking" in groups
        assert {t for t in TAGS if t in event["tags"]} <= groups


def test_reruns_send_only_changes_and_consent_only_withdrawals(stack: Stack) -> None:
    expected = expected_bookings(stack)
    first = stack.run(SYNC)
    rejected = set(dead_letters(stack))
    before = stack.stats("airship_crm")

    # 2. Nothing changed: zero destination write calls.
    second = stack.run(SYNC)
    assert second["outcome"] == "ok" and second["created"] == second["updated"] == 0
    assert second["unchanged"] == first["created"]
    after = stack.stats("airship_crm")
    assert writes_since(before, after) == {}
    # Only the dead letters' retry may call the destination, and they fail before any call.
    assert second["destination_calls"] == 0

    # 3. Change the source: exactly the changed, cancelled and no-show bookings are written.
    data = stack.data("airship_crm")
    contact_of = {b["booking_reference"]: b["contact_id"] for b in data["bookings"]}
    consent_before = {c["id"]: c["allow_email"] for c in data["contacts"]}
    changes = stack.admin(
        "ticketco",
        "mutate",
        {
            "share": 0.15,
            "cancel_share": 0.08,
            "no_shows": True,
            "opt_in_flip_share": 0.2,
            "seed": 3,
        },
    )
    in_scope = set(expected) - rejected
    touched = set(changes["changed"]) | set(changes["cancelled"]) | set(changes["no_show"])
    must_write = touched & in_scope
    assert must_write, "the mutation should touch some in-scope bookings"
    flipped = set(changes["opt_in_flipped"]) & in_scope
    answers = opt_ins(stack, flipped)
    withdrawn = {ref for ref in flipped if answers[ref] is False}
    granted = flipped - withdrawn
    assert withdrawn and granted, "some in-scope buyers flipped their opt-in either way"
    third = stack.run(SYNC)
    written = writes_since(after, stack.stats("airship_crm"), prefix="booking:")
    assert {k.split(":", 1)[1] for k in written} == must_write
    assert all(kinds == {"update": 1} for kinds in written.values())
    assert third["updated"] == len(must_write | withdrawn)
    bookings = {b["booking_reference"]: b for b in stack.data("airship_crm")["bookings"]}
    for ref in set(changes["cancelled"]) & in_scope:
        assert bookings[ref]["stage_value"] == 550
    # 4. Consent (issue 20.1): a buyer who unticked the box is opted out at Airship; one who
    # ticked it keeps what Airship had (an opt-in is never written by side effect).
    consent_after = {c["id"]: c["allow_email"] for c in stack.data("airship_crm")["contacts"]}
    out = {contact_of[ref] for ref in withdrawn}
    assert all(consent_after[c] is False for c in out)
    for contact_id in {contact_of[ref] for ref in granted} - out:
        assert consent_after[contact_id] == consent_before[contact_id]
    assert {c for c, v in consent_after.items() if v != consent_before[c]} <= out


@pytest.mark.parametrize("source_process", [False, True], ids=["one-process", "reader-process"])
def test_sigkill_mid_run_then_rerun_has_no_duplicate_and_no_loss(
    tmp_path: Path, source_process: bool
) -> None:
    # With the reader, small batches keep the read-ahead small, so the reader is blocked on
    # a full pipe when the run is killed: it must notice, not wait there forever.
    settings: dict[str, Any] = (
        {"source_process": True, "batch_size": 5} if source_process else {"source_process": False}
    )
    stack = start(tmp_path, records=400, seed=5, **settings)
    try:
        expected = expected_bookings(stack)
        stack.admin("airship_crm", "faults", {"latency_ms": 40, "slow_rate": 1.0})
        proc = stack.popen("run", SYNC)
        # Killed once some bookings have landed (a random share of them), whatever the
        # machine's start-up time: the run is then mid-way, with writes in flight.
        kill_at = random.randint(10, len(expected) // 2)
        # A reader process left behind would hold the source open: it must end on its own.
        sigkill_when(
            stack, proc, lambda: len(stack.data("airship_crm")["bookings"]), kill_at, "bookings"
        )
        partial = len(stack.data("airship_crm")["bookings"])
        assert 0 < partial < len(expected), f"killed too early or too late ({partial})"
        # Issue 20.5: the killed run once stayed "running" for ever; its holder is dead.
        [killed] = json.loads(stack.cli("runs", SYNC, "--json").stdout)
        assert killed["outcome"] == "crashed", killed
        stack.admin("airship_crm", "faults", {})
        result = stack.run(SYNC)
        assert result["outcome"] == "ok", result
        outcomes = [r["outcome"] for r in json.loads(stack.cli("runs", SYNC, "--json").stdout)]
        assert outcomes == ["ok", "crashed"]
        rejected = set(dead_letters(stack))
        data = stack.data("airship_crm")
        refs = [b["booking_reference"] for b in data["bookings"]]
        assert len(refs) == len(set(refs)), "no duplicate booking"
        assert set(refs) == set(expected) - rejected, "nothing missing"
        writes = stack.stats("airship_crm")["writes"]
        assert all(k.get("create", 0) <= 1 for k in writes.values()), "nothing created twice"
        emails = [c["email"] for c in data["contacts"] if c["email"]]
        assert len(emails) == len(set(emails))
    finally:
        stack.stop()


def test_two_runs_started_together_one_runs_one_is_skipped(stack: Stack) -> None:
    # Slow enough that the first run is still going when the second has started up, even
    # when a loaded machine starts one interpreter a few seconds after the other.
    stack.admin("airship_crm", "faults", {"latency_ms": 300, "slow_rate": 1.0})
    procs = [stack.popen("run", SYNC, "--json") for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    outcomes = sorted(json.loads(out)["outcome"] for out, _ in outputs)
    assert outcomes == ["ok", "skipped"]
    runs = json.loads(stack.cli("runs", SYNC, "--json").stdout)
    assert sorted(r["outcome"] for r in runs) == ["ok", "skipped"]


def normalised(stack: Stack) -> dict[str, Any]:
    data = stack.data("airship_crm")
    contacts = {c["id"]: c for c in data["contacts"]}
    out = {}
    for b in data["bookings"]:
        c = contacts[b["contact_id"]]
        out[b["booking_reference"]] = (
            b["stage_value"],
            b["party_size"],
            b["party_datetime"],
            c["email"],
            c["mobile_number"],
            c["allow_email"],
            sorted(g["name"] for u in c["units"] for g in u["groups"]),
        )
    return out


def test_faults_give_the_same_final_state(tmp_path: Path) -> None:
    (tmp_path / "clean").mkdir()
    (tmp_path / "faulty").mkdir()
    clean = start(tmp_path / "clean", records=150, seed=21)
    faulty = start(tmp_path / "faulty", records=150, seed=21)
    try:
        faults = {
            "rate_5xx": 0.1,
            "rate_429": 0.1,
            "retry_after_s": 1,
            "latency_ms": 150,
            "slow_rate": 0.1,
            "seed": 4,
        }
        for platform in ("ticketco", "airship_crm"):
            faulty.admin(platform, "faults", faults)
        assert clean.run(SYNC)["outcome"] == "ok"
        faulty.run_until_ok(SYNC)
        injected = faulty.stats("airship_crm")["faults"]
        assert injected.get("429") and injected.get("5xx"), injected
        assert normalised(faulty) == normalised(clean)
    finally:
        clean.stop()
        faulty.stop()


def test_errors_csv_lists_dead_letters_with_reasons(stack: Stack) -> None:
    result = stack.run(SYNC)
    path = stack.directory / "dead.csv"
    proc = stack.cli("errors", SYNC, "--csv", str(path))
    assert proc.returncode == 0
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == result["rejected"] > 0
    assert all(r["key"].startswith("booking:ticketco:") and r["reason"] for r in rows)
    assert all(r["stage"] == "prepare" for r in rows)


def test_secrets_never_appear_in_output_or_state(stack: Stack) -> None:
    stack.env["TICKETBRIDGE_LOG_LEVEL"] = "DEBUG"
    proc = stack.cli("run", SYNC)
    assert proc.returncode == 0
    db = (stack.directory / "state.db").read_bytes()
    for secret in stack.env.values():
        assert secret not in proc.stdout and secret not in proc.stderr
        assert secret.encode() not in db


def test_backfill_imports_history_in_chunks(stack: Stack) -> None:
    today = datetime.now(UTC).date()
    start_day = today - timedelta(days=60)
    proc = stack.cli(
        "backfill",
        SYNC,
        "--from",
        start_day.isoformat(),
        "--to",
        (today - timedelta(days=1)).isoformat(),
        "--chunk",
        "20d",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["outcome"] == "ok" and result["created"] > 0
    bookings = stack.data("airship_crm")["bookings"]
    days = {b["party_datetime"][:10] for b in bookings}
    assert min(days) >= start_day.isoformat()
    assert max(days) < (today - timedelta(days=1)).isoformat()
    runs = json.loads(stack.cli("runs", SYNC, "--json").stdout)
    assert runs[0]["kind"] == "backfill"
    # Nothing of the backfill is re-sent by the nightly run for the overlapping day range.
    again = stack.cli(
        "backfill",
        SYNC,
        "--from",
        start_day.isoformat(),
        "--to",
        (today - timedelta(days=1)).isoformat(),
        "--chunk",
        "20d",
        "--json",
    )
    assert json.loads(again.stdout)["created"] == 0
    assert json.loads(again.stdout)["destination_calls"] == 0


def test_the_reader_process_rate_budget_waits_are_in_the_run_detail(tmp_path: Path) -> None:
    """TicketCo read in a forked reader under a rate of 20 calls a second: the run's
    ``budget_wait_s`` counts the reader's waits (it once counted this process's only)."""
    stack = start(tmp_path, records=200, source_process=True)
    try:
        project = yaml.safe_load(stack.config.read_text())
        project["connections"]["ticketco"]["rate_per_second"] = 20
        stack.config.write_text(yaml.safe_dump(project, sort_keys=False))
        result = stack.run(SYNC)
        assert result["outcome"] == "ok", result
        calls = result["source_calls"]
        store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
        try:
            run = store.get_run(result["run_id"])
        finally:
            store.close()
        assert run is not None
        # One token at a time: every call after the first waited about 1/20 s.
        assert run.detail["budget_wait_s"] >= 0.8 * (calls - 1) / 20, (calls, run.detail)
    finally:
        stack.stop()


def test_serve_tries_a_run_an_outage_ended_again_before_its_next_due_time(
    tmp_path: Path,
) -> None:
    stack = start(tmp_path, records=60, schedule="every 8s")
    try:
        project = yaml.safe_load(stack.config.read_text())
        project["connections"]["airship_crm"]["max_retries"] = 0  # the 503 ends the run at once
        stack.config.write_text(yaml.safe_dump(project, sort_keys=False))
        # The first write of the first scheduled run meets an outage; then Airship is back.
        stack.admin(
            "airship_crm", "faults", {"fail_next": 1, "fail_status": 503, "only_methods": ["POST"]}
        )
        stack.env["TICKETBRIDGE_SERVE_RETRIES"] = "1s"
        server = stack.popen("serve")
        try:
            runs: list[dict[str, Any]] = []
            deadline = time.monotonic() + 60
            while not any(r["outcome"] == "ok" for r in runs):
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, runs
                time.sleep(1)
                runs = json.loads(stack.cli("runs", SYNC, "--json").stdout)
        finally:
            server.terminate()
            _, stderr = server.communicate(timeout=30)
        failed, retried = sorted(runs, key=lambda r: r["id"])[:2]
        assert failed["outcome"] == "failed" and "503" in failed["error"], failed
        assert retried["outcome"] == "ok" and retried["created"] > 0, retried
        assert (failed["detail"].get("retry"), retried["detail"]["retry"]) == (None, 1)
        waited = datetime.fromisoformat(retried["started_at"]) - datetime.fromisoformat(
            failed["finished_at"]
        )
        # 1 s after the failure, not at the next due time 8 s after the first start.
        assert timedelta(seconds=0.5) < waited < timedelta(seconds=5), waited
        assert "schedule.retry" in stderr
    finally:
        stack.stop()
