"""TIXNGO → SECUTIX 360 feedback end to end (issue 16, "What it must show" 1-8): sandboxes
under uvicorn, the sync in a project file, ``ticketbridge`` as a subprocess.

Expectations are read from the TIXNGO sandbox's own diff endpoint over plain HTTP (not
through our connector); outcomes from the S-360 sandbox: its ticket rows and cultural
contacts, and its request and write counters.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.harness import Stack, sigkill_when, writes_since
from ticketbridge.connectors.secutix360.sandbox import create_sandbox as s360_sandbox
from ticketbridge.connectors.tixngo.sandbox import ORGANIZER, SANDBOX_API_KEY
from ticketbridge.connectors.tixngo.sandbox import create_sandbox as tixngo_sandbox
from ticketbridge.demo import INTEGRATIONS
from ticketbridge.sandbox import serve_in_thread

pytestmark = pytest.mark.e2e

SYNC = "tixngo-feedback-to-secutix360"
N = 2100  # three pages of 1000 (the last one short), then the empty "no news" answer
STATUS = "POST /tnci/backend-apis/externalAccessControlService/{version}/updateExternalTicketStatus"
CREATE = "POST /tnci/backend-apis/contactInformationPublicService/{version}/createCulturalContacts"


def sync_block(**settings: Any) -> dict[str, Any]:
    block = next(i for i in INTEGRATIONS if i.sync == SYNC).config()
    assert block["diff"] is True and block["schedule"] == "every 5m"
    return {**block, **settings}


def start(
    tmp_path: Path,
    records: int = N,
    seed: int = 11,
    tixngo: dict[str, Any] | None = None,
    **settings: Any,
) -> Stack:
    """Both sandboxes with ``records`` tickets, the sync (with ``settings``) and, in
    ``tixngo``, settings of the TIXNGO connection (e.g. its page ``limit``)."""
    now = datetime.now(UTC)
    stack = Stack.start(
        tmp_path,
        {
            "tixngo": tixngo_sandbox(seed=seed, records=records, today=now),
            "secutix360": s360_sandbox(seed=seed, records=records, today=now),
        },
        {SYNC: sync_block(**settings)},
    )
    if tixngo:
        project = yaml.safe_load(stack.config.read_text())
        project["connections"]["tixngo"].update(tixngo)
        stack.config.write_text(yaml.safe_dump(project, sort_keys=False))
    return stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = start(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Stack]:
    """600 tickets, for what does not need pages of 1000."""
    s = start(tmp_path, records=600)
    yield s
    s.stop()


# --- the source's truth, over plain HTTP ------------------------------------------------------


def feed(stack: Stack, key: str | None = None, limit: int = 10_000) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if key is not None:
        params["paginationKey"] = key
    headers = {"X-Organizer-Email": ORGANIZER, "X-Api-Key": SANDBOX_API_KEY}
    url = stack.running["tixngo"].url + "/organizer/tickets/diff"
    with httpx.Client(timeout=30) as client:
        response = client.get(url, params=params, headers=headers)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def source_tickets(stack: Stack) -> dict[str, dict[str, Any]]:
    """Every ticket as TIXNGO serves it now (the whole feed from the start), by ticketId."""
    return {t["ticketId"]: t for t in feed(stack)["tickets"]}


def pages(stack: Stack, limit: int = 1000) -> list[tuple[list[str], str]]:
    """The feed from the start as the sync reads it: each page's ticket ids and next key."""
    out: list[tuple[list[str], str]] = []
    key = None
    while True:
        body = feed(stack, key, limit)
        if not body["tickets"]:
            return out
        key = body["nextPageKey"]
        out.append(([t["ticketId"] for t in body["tickets"]], key))


def email(person: dict[str, Any] | None) -> str | None:
    return person["email"].casefold() if person else None


def expected(tickets: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """ticket id -> (status, mode, owner e-mail, holder e-mail), as S-360 must hold it."""
    return {
        n: (t["status"], "lifecycle", email(t["owner"]), email(t["holder"]))
        for n, t in tickets.items()
    }


# --- what S-360 holds ---------------------------------------------------------------------------


def s360(stack: Stack, name: str = "secutix360") -> dict[str, tuple[Any, ...]]:
    """ticket id -> (external status, mode, owner e-mail, holder e-mail) of every ticket
    whose external status was set."""
    data = stack.data(name)
    contacts = {c["contact_number"]: c["email"].casefold() for c in data["contacts"]}
    return {
        t["ticket_id"]: (
            t["external_status"],
            t["external_status_mode"],
            contacts.get(t["owner_contact_number"]),
            contacts.get(t["holder_contact_number"]),
        )
        for t in data["tickets"]
        if t["external_status"] is not None
    }


def no_duplicate_contact(stack: Stack, name: str = "secutix360") -> None:
    data = stack.data(name)
    assert data["duplicate_emails"] == [], data["duplicate_emails"][:5]
    emails = [c["email"].casefold() for c in data["contacts"]]
    assert len(emails) == len(set(emails))


def contact_emails(stack: Stack) -> Counter[str]:
    return Counter(c["email"].casefold() for c in stack.data("secutix360")["contacts"])


def ticket_writes(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {k.removeprefix("ticket:") for k in writes_since(before, after, "ticket:")}


def stored_key(stack: Stack) -> str | None:
    proc = stack.cli("checkpoint", SYNC)
    assert proc.returncode == 0, proc.stderr
    checkpoint = json.loads(proc.stdout) or {}
    key: str | None = (checkpoint.get("position") or {}).get("paginationKey")
    return key


# --- (1) first run, (2) rerun, (3) after mutate -----------------------------------------------


def test_first_run_pages_of_1000_then_a_rerun_with_nothing_new(stack: Stack) -> None:
    truth = source_tickets(stack)
    assert len(truth) == N
    asked = stack.stats("tixngo")["total_requests"]
    result = stack.run(SYNC)
    assert result["outcome"] == "ok" and result["rejected"] == 0, result
    assert result["created"] == N
    # ceil(N / 1000) pages, then one empty answer with the same key ("no news").
    assert result["source_calls"] == math.ceil(N / 1000) + 1 == 4
    assert stack.stats("tixngo")["total_requests"] - asked == 4, "as TIXNGO counted them"
    assert s360(stack) == expected(truth)
    statuses = Counter(t["status"] for t in truth.values())
    assert {"INJECTED", "DOWNLOADED", "ASSIGNED", "TRANSFERRED", "CONTROLLED"} <= set(statuses)
    # Every owner and holder is one contact, however many tickets name them.
    people = {e for row in expected(truth).values() for e in row[2:] if e}
    assert people <= set(contact_emails(stack))
    no_duplicate_contact(stack)
    # The stored key is where the feed ended.
    assert stored_key(stack) == pages(stack)[-1][1]

    # (2) A rerun with nothing new: one source call, no destination call at all.
    before = {p: stack.stats(p) for p in ("tixngo", "secutix360")}
    again = stack.run(SYNC)
    assert again["outcome"] == "ok" and again["read"] == 0
    assert (again["source_calls"], again["destination_calls"]) == (1, 0)
    after = {p: stack.stats(p) for p in ("tixngo", "secutix360")}
    assert after["tixngo"]["total_requests"] == before["tixngo"]["total_requests"] + 1
    assert after["secutix360"]["total_requests"] == before["secutix360"]["total_requests"]


def test_after_mutate_exactly_the_changed_tickets_are_written(small: Stack) -> None:
    stack = small
    stack.run(SYNC)
    contacts = contact_emails(stack)
    before = stack.stats("secutix360")
    changed = stack.admin("tixngo", "mutate", {"share": 0.1, "seed": 3})
    assert changed["transferred"], "the mutation transferred some tickets"
    result = stack.run(SYNC)
    assert result["outcome"] == "ok" and result["updated"] == len(changed["changed"])
    after = stack.stats("secutix360")
    assert ticket_writes(before, after) == set(changed["changed"])
    truth = source_tickets(stack)
    assert s360(stack) == expected(truth)
    # Each new holder of a transferred ticket is now a contact, created once.
    new_holders = {e for n in changed["transferred"] if (e := email(truth[n]["holder"]))}
    assert new_holders
    now = contact_emails(stack)
    assert all(now[e] == 1 and contacts[e] == 0 for e in new_holders)
    no_duplicate_contact(stack)


def test_a_second_transfer_to_the_same_person_creates_no_contact(small: Stack) -> None:
    stack = small
    stack.run(SYNC)
    lea = {"email": "lea.meier@example.org", "firstName": "Léa", "lastName": "Meier"}
    first, second = "S360-000101", "S360-000202"
    stack.admin("tixngo", "mutate", {"op": "transfer", "ticket_id": first, "to": lea})
    before = stack.stats("secutix360")
    assert stack.run(SYNC)["updated"] == 1
    middle = stack.stats("secutix360")
    assert middle["requests"].get(CREATE, 0) == before["requests"].get(CREATE, 0) + 1
    assert contact_emails(stack)["lea.meier@example.org"] == 1
    stack.admin("tixngo", "mutate", {"op": "transfer", "ticket_id": second, "to": lea})
    assert stack.run(SYNC)["updated"] == 1
    after = stack.stats("secutix360")
    assert after["requests"].get(CREATE, 0) == middle["requests"].get(CREATE, 0), "none"
    assert contact_emails(stack)["lea.meier@example.org"] == 1
    rows = {t["ticket_id"]: t for t in stack.data("secutix360")["tickets"]}
    assert rows[first]["holder_contact_number"] == rows[second]["holder_contact_number"]
    assert rows[first]["owner_contact_number"] == rows[second]["owner_contact_number"]
    assert ticket_writes(before, after) == {first, second}


# --- (4) the skip list -------------------------------------------------------------------------


def test_a_skipped_ticket_id_is_never_written_whatever_happens_to_it(tmp_path: Path) -> None:
    skipped = ["S360-000007", "S360-000377"]
    stack = start(tmp_path, records=600, skip=skipped)
    try:
        first = stack.run(SYNC)
        assert first["created"] == 600 - 2 and first["skipped_filter"] == 2
        to = {"email": "skip.me@example.org", "firstName": "Skip", "lastName": "Me"}
        stack.admin("tixngo", "mutate", {"op": "transfer", "ticket_id": skipped[0], "to": to})
        stack.admin("tixngo", "mutate", {"op": "edit", "ticket_id": skipped[1], "status": "??"})
        stack.admin("tixngo", "mutate", {"share": 0.5, "seed": 8})
        second = stack.run(SYNC)
        assert second["outcome"] == "ok" and second["rejected"] == 0
        writes = stack.stats("secutix360")["writes"]
        assert not [k for k in writes if k.removeprefix("ticket:") in skipped]
        assert not set(skipped) & set(s360(stack)), "no external status for them"
        assert "skip.me@example.org" not in contact_emails(stack)
        errors = json.loads(stack.cli("errors", SYNC, "--json").stdout)
        assert errors == [], "not even a dead letter"
    finally:
        stack.stop()


# --- (5) one run per organizer -------------------------------------------------------------


def test_two_syncs_on_one_organizer_started_together_one_runs_one_is_skipped(
    tmp_path: Path,
) -> None:
    """Two S-360 organizations, each with its sync, reading one TIXNGO organizer."""
    stack = start(tmp_path, records=300)
    other = serve_in_thread(s360_sandbox(seed=12, records=300, today=datetime.now(UTC)))
    try:
        stack.running["secutix360_b"] = other
        project = yaml.safe_load(stack.config.read_text())
        connection = dict(project["connections"]["secutix360"])
        project["connections"]["secutix360_b"] = {**connection, "base_url": other.url}
        block = sync_block()
        block["destination"] = {**block["destination"], "connection": "secutix360_b"}
        project["syncs"]["org-b"] = block
        stack.config.write_text(yaml.safe_dump(project, sort_keys=False))
        # Slow enough that the first run is still going when the second has started up.
        for name in ("secutix360", "secutix360_b"):
            stack.admin(name, "faults", {"latency_ms": 300, "slow_rate": 1.0})
        procs = [stack.popen("run", s, "--json") for s in (SYNC, "org-b")]
        outputs = [p.communicate(timeout=180) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        results = {json.loads(out)["sync"]: json.loads(out) for out, _ in outputs}
        assert sorted(r["outcome"] for r in results.values()) == ["ok", "skipped"], results
        ran = next(name for name, r in results.items() if r["outcome"] == "ok")
        waited = next(name for name, r in results.items() if r["outcome"] == "skipped")
        runs = json.loads(stack.cli("runs", waited, "--json").stdout)
        # The skipped run says why, and who started it (the history's started_by).
        assert [(r["outcome"], r["detail"]["reason"]) for r in runs] == [("skipped", "running")]
        assert runs[0]["detail"]["started_by"].startswith("cli")
        target = {SYNC: "secutix360", "org-b": "secutix360_b"}
        assert stack.stats(target[waited])["total_requests"] == 0, "the skipped one wrote nothing"
        assert len(s360(stack, target[ran])) == 300
        for name in target.values():
            stack.admin(name, "faults", {})
        # Once the first has ended, the other organization's sync runs.
        assert stack.run(waited)["outcome"] == "ok"
        assert s360(stack, target[waited]) == s360(stack, target[ran])
    finally:
        other.stop()
        stack.stop()


# --- (6) SIGKILL, then a rerun ------------------------------------------------------------------


def ledger_keys(stack: Stack) -> set[str]:
    with sqlite3.connect(stack.directory / "state.db") as db:
        rows = db.execute(
            "SELECT key FROM ledger WHERE sync = ? AND last_outcome = 'ok'", (SYNC,)
        ).fetchall()
    return {k.removeprefix("ticket:tixngo:") for (k,) in rows}


def test_sigkill_then_rerun_the_key_never_passed_an_unacknowledged_write(tmp_path: Path) -> None:
    # Pages of 200 (the connection's limit), batches of 50: many keys to stop between.
    records = 1200
    stack = start(tmp_path, records=records, seed=5, tixngo={"limit": 200}, batch_size=50)
    try:
        truth = source_tickets(stack)
        stack.admin("secutix360", "faults", {"latency_ms": 40, "slow_rate": 1.0})
        proc = stack.popen("run", SYNC)
        kill_at = random.randint(250, records - 300)  # past the first page, before the end
        sigkill_when(stack, proc, lambda: len(s360(stack)), kill_at, "ticket statuses")
        landed = set(s360(stack))
        assert 0 < len(landed) < records, f"killed too early or too late ({len(landed)})"
        key = stored_key(stack)
        keys = [k for _, k in pages(stack, 200)]
        assert key in keys, f"the stored key {key!r} is one TIXNGO handed out"
        # Every update before the stored key was acknowledged: written at S-360 and in
        # the ledger. (A key is only stored with its page's last acknowledged batch.)
        before_key = [n for ids, _ in pages(stack, 200)[: keys.index(key) + 1] for n in ids]
        assert set(before_key) <= landed
        assert set(before_key) <= ledger_keys(stack)
        stack.admin("secutix360", "faults", {})
        result = stack.run(SYNC)
        assert result["outcome"] == "ok" and result["rejected"] == 0, result
        assert s360(stack) == expected(truth), "nothing missing, nothing wrong"
        no_duplicate_contact(stack)
        writes = stack.stats("secutix360")["writes"]
        assert all(k.get("create", 0) <= 1 for k in writes.values()), "nothing created twice"
        outcomes = [r["outcome"] for r in json.loads(stack.cli("runs", SYNC, "--json").stdout)]
        assert outcomes == ["ok", "crashed"]
    finally:
        stack.stop()


# --- (7) an operator moves the key back ---------------------------------------------------------


def test_moving_the_key_back_replays_idempotently(tmp_path: Path) -> None:
    stack = start(tmp_path, records=600, tixngo={"limit": 200})
    try:
        replayed(stack)
    finally:
        stack.stop()


def replayed(stack: Stack) -> None:
    stack.run(SYNC)
    end_key = stored_key(stack)
    assert end_key == pages(stack, 200)[-1][1]
    first_page_key = pages(stack, 200)[0][1]
    state = stack.data("secutix360")
    before = stack.stats("secutix360")
    value = json.dumps({"position": {"paginationKey": first_page_key}})
    refused = stack.cli("checkpoint", SYNC, "--set", value)
    assert refused.returncode == 2 and "needs confirmation" in refused.stderr
    moved = stack.cli("checkpoint", SYNC, "--set", value, "--yes", "--by", "ops-oncall")
    assert moved.returncode == 0, moved.stderr
    replay = stack.run(SYNC)
    assert replay["outcome"] == "ok"
    assert replay["read"] == 400 and replay["unchanged"] == 400
    assert replay["source_calls"] == 3
    assert (replay["created"], replay["updated"], replay["destination_calls"]) == (0, 0, 0)
    assert stack.data("secutix360") == state, "no duplicate, nothing changed"
    assert writes_since(before, stack.stats("secutix360")) == {}
    assert stored_key(stack) == end_key, "and the key is where the feed ended"
    # Moved back to the start after changes: everything is read, only the changes written.
    changed = stack.admin("tixngo", "mutate", {"share": 0.05, "seed": 4})
    assert stack.cli("checkpoint", SYNC, "--set", "null", "--yes").returncode == 0
    again = stack.run(SYNC)
    assert again["read"] == 600 and again["updated"] == len(changed["changed"])
    assert again["created"] == 0
    assert s360(stack) == expected(source_tickets(stack))
    no_duplicate_contact(stack)
    history = json.loads(stack.cli("runs", SYNC, "--json").stdout)
    (by_ops,) = [
        r for r in history if r["kind"] == "checkpoint" and r["detail"]["by"] == "ops-oncall"
    ]
    assert by_ops["detail"]["new"] == json.loads(value)
    assert by_ops["detail"]["old"] == {"position": {"paginationKey": end_key}}


# --- (8) faults ----------------------------------------------------------------------------------


def test_faults_give_the_same_final_state_and_envelope_errors_are_dead_letters(
    tmp_path: Path,
) -> None:
    (tmp_path / "clean").mkdir()
    (tmp_path / "faulty").mkdir()
    clean = start(tmp_path / "clean", records=400, seed=21)
    faulty = start(tmp_path / "faulty", records=400, seed=21)
    try:
        refuse = {
            "op": "refuse",
            "share": 0.03,
            "code": "INVALID_PARAMETER",
            "detail": "Ticket is locked for control",
        }
        for s in (clean, faulty):
            s.admin("secutix360", "mutate", refuse)
        faults = {"rate_5xx": 0.1, "rate_429": 0.1, "retry_after_s": 1, "seed": 4}
        for platform in ("tixngo", "secutix360"):
            faulty.admin(platform, "faults", faults)
        want = clean.run(SYNC)
        runs = faulty.run_until_ok(SYNC)
        # A run cut short by faults is resumed by the next: together they create what the
        # clean run did, no contact twice.
        assert sum(r["created"] for r in runs) == want["created"]
        assert runs[-1]["rejected"] == want["rejected"] > 0
        injected = Counter(faulty.stats("secutix360")["faults"]) + Counter(
            faulty.stats("tixngo")["faults"]
        )
        assert injected.get("429") and injected.get("5xx"), injected
        assert s360(faulty) == s360(clean)
        assert contact_emails(faulty) == contact_emails(clean)
        no_duplicate_contact(faulty)
        letters = json.loads(faulty.cli("errors", SYNC, "--json").stdout)
        assert len(letters) == want["rejected"]
        assert all("Ticket is locked for control" in d["reason"] for d in letters), letters[:3]
        assert {d["key"] for d in letters} == {
            d["key"] for d in json.loads(clean.cli("errors", SYNC, "--json").stdout)
        }
    finally:
        clean.stop()
        faulty.stop()
