"""Ticketmaster → Heyloyalty end to end: sandboxes under uvicorn, `ticketbridge` as a subprocess.

Ground truth comes from the Ticketmaster sandbox's own store (raw customers and orders) and the
Heyloyalty sandbox's data and write counters, never from our connectors.
"""

from __future__ import annotations

import email
import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from tests.e2e.harness import Stack
from ticketbridge.connectors.heyloyalty.sandbox import create_sandbox as heyloyalty_sandbox
from ticketbridge.connectors.ticketmaster.sandbox import create_sandbox as ticketmaster_sandbox
from ticketbridge.demo import INTEGRATIONS
from ticketbridge.engine.state.sql import open_store
from ticketbridge.model import normalize_email
from ticketbridge.sandbox import free_port

pytestmark = pytest.mark.e2e

SYNC = "ticketmaster-customers-to-heyloyalty"


def block(**changes: Any) -> dict[str, Any]:
    b = next(i for i in INTEGRATIONS if i.sync == SYNC).config()
    for path, value in changes.items():
        node = b
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return b


def start(
    tmp_path: Path,
    records: int = 120,
    seed: int = 4,
    extra: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
) -> Stack:
    return Stack.start(
        tmp_path,
        {
            "ticketmaster": ticketmaster_sandbox(
                seed=seed, records=records, today=datetime.now(UTC)
            ),
            "heyloyalty": heyloyalty_sandbox(seed=seed),
        },
        {SYNC: block(**(changes or {}))},
        extra,
    )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = start(tmp_path)
    yield s
    s.stop()


def customers(stack: Stack) -> dict[str, dict[str, Any]]:
    store = stack.running["ticketmaster"].sandbox.store
    return {str(k): v for k, v in store.customers.items()}  # type: ignore[attr-defined]


def orders(stack: Stack) -> dict[str, dict[str, Any]]:
    store = stack.running["ticketmaster"].sandbox.store
    return {str(k): v for k, v in store.orders.items()}  # type: ignore[attr-defined]


def consented(c: dict[str, Any]) -> bool:
    consent = c.get("marketing_consent") or {}
    return bool(consent.get("email") or consent.get("sms"))


def usable_email(c: dict[str, Any]) -> str | None:
    try:
        return normalize_email(c["email"]).lower() if c.get("email") else None
    except ValueError:
        return None


def members(stack: Stack) -> dict[str, dict[str, Any]]:
    """ticketmaster id -> member, as the Heyloyalty sandbox holds them."""
    out = {}
    for m in stack.data("heyloyalty")["members"]:
        out[str(m["fields"]["reference"])] = m
    return out


def member_emails(stack: Stack) -> set[str]:
    return {m["fields"]["email"].lower() for m in stack.data("heyloyalty")["members"]}


def write_project(stack: Stack, **changes: Any) -> None:
    project = yaml.safe_load(stack.config.read_text())
    project["syncs"][SYNC] = block(**changes)
    stack.config.write_text(yaml.safe_dump(project, sort_keys=False))


def test_consented_customers_become_members_and_others_never_appear(stack: Stack) -> None:
    result = stack.run(SYNC)
    assert result["outcome"] == "ok"
    people = customers(stack)
    got = members(stack)
    # Matched on email: customers sharing an address are one member.
    expected = {usable_email(c) for c in people.values() if consented(c) and usable_email(c)}
    assert member_emails(stack) == expected
    never = {usable_email(c) for c in people.values() if not consented(c)} - expected
    assert never and not never & member_emails(stack), "no consent, never on the list"
    for cid, member in got.items():
        assert member["fields"]["email"].lower() == usable_email(people[cid])


def test_matching_on_mobile_works_across_formats(tmp_path: Path) -> None:
    stack = start(tmp_path, changes={"match": ["mobile"]})
    try:
        assert stack.run(SYNC)["outcome"] == "ok"
        first = stack.stats("heyloyalty")["write_totals"]
        # Each source mobile format (+45 .., 0045.., bare 8 digits) must hit the same member:
        # a second full import (a backfill re-reads everything) creates nobody new.
        since = (datetime.now(UTC) - timedelta(days=800)).date().isoformat()
        proc = stack.cli("backfill", SYNC, "--from", since, "--json")
        assert proc.returncode == 0, proc.stderr
        assert stack.stats("heyloyalty")["write_totals"].get("create") == first.get("create")
        got = stack.data("heyloyalty")["members"]
        mobiles = [m["fields"].get("mobile") for m in got]
        assert all(mobiles) and len(mobiles) == len(set(mobiles))
    finally:
        stack.stop()


def test_a_wrong_secret_is_a_clear_auth_error_and_writes_nothing(stack: Stack) -> None:
    stack.env["HEYLOYALTY_API_SECRET"] = "not-the-secret"
    proc = stack.cli("run", SYNC, "--json")
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["outcome"] == "failed"
    assert result["error"].startswith("heyloyalty (heyloyalty): HTTP 401")
    assert "not-the-secret" not in proc.stdout + proc.stderr
    assert stack.stats("heyloyalty")["writes"] == {}


def test_unsubscribed_members_are_resubscribed_only_when_allowed(stack: Stack) -> None:
    write_project(stack, **{"destination.resubscribe_unsubscribed": False})
    stack.run(SYNC)
    emails = [m["fields"]["email"] for m in stack.data("heyloyalty")["members"]]
    stack.admin("heyloyalty", "mutate", {"unsubscribe": emails})

    changed = [
        str(c) for c in stack.admin("ticketmaster", "mutate", {"share": 0.4, "seed": 8})["changed"]
    ]
    result = stack.run(SYNC)
    assert result["skipped_policy"] > 0
    got = members(stack)
    touched = [cid for cid in changed if cid in got]
    assert touched
    assert all(got[cid]["status"]["status"] == "unsubscribed" for cid in touched)

    write_project(stack, **{"destination.resubscribe_unsubscribed": True})
    changed = [
        str(c) for c in stack.admin("ticketmaster", "mutate", {"share": 0.4, "seed": 9})["changed"]
    ]
    stack.run(SYNC)
    got = members(stack)
    touched = [cid for cid in changed if cid in got and consented(customers(stack)[cid])]
    assert touched
    # Re-subscribed on the channels the customer said yes to, and never on one they said no
    # to: the upsert re-activates the whole member, so a "no" is turned off again after it.
    for cid in touched:
        consent = customers(stack)[cid].get("marketing_consent") or {}
        status = got[cid]["status"]
        if consent.get("email") is True:
            assert status["email"] == "active", (cid, consent, status)
        if consent.get("email") is False:
            assert status["email"] != "active", (cid, consent, status)
        if consent.get("sms") is False:
            assert status["mobile"] != "active", (cid, consent, status)
    assert any(got[cid]["status"]["status"] == "active" for cid in touched)


def test_two_year_import_runs_in_chunks_and_resumes_in_the_chunk_it_was_killed_in(
    tmp_path: Path,
) -> None:
    stack = start(tmp_path, records=240)
    try:
        _import_killed_in_second_chunk(stack)
    finally:
        stack.stop()


def _import_killed_in_second_chunk(stack: Stack) -> None:
    since = (datetime.now(UTC) - timedelta(days=730)).date().isoformat()
    stack.admin("heyloyalty", "faults", {"latency_ms": 60, "slow_rate": 1.0})
    proc = stack.popen("backfill", SYNC, "--from", since, "--chunk", "365d")
    deadline = time.monotonic() + 60
    state = None
    while (
        state is None
        or state.get_checkpoint(SYNC) is None
        or ((state.get_checkpoint(SYNC) or {}).get("backfill", {}).get("index") != 1)
    ):
        assert proc.poll() is None, "the import finished before its second chunk was seen"
        assert time.monotonic() < deadline
        if state is None and (stack.directory / "state.db").exists():
            state = open_store(f"sqlite:///{stack.directory / 'state.db'}")
        time.sleep(0.02)
    assert state is not None
    state.close()
    time.sleep(0.5)  # some of the second chunk is written
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed_at = json.loads(stack.cli("checkpoint", SYNC).stdout)["backfill"]
    assert killed_at["index"] == 1 and len(killed_at["chunks"]) >= 2
    stack.admin("heyloyalty", "faults", {})
    resumed = stack.cli("backfill", SYNC, "--from", since, "--chunk", "365d", "--json")
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    total = len(customers(stack)) + len(orders(stack))
    assert result["read"] < total, "the first chunk is not read again"
    writes = stack.stats("heyloyalty")["writes"]
    assert all(k.get("create", 0) <= 1 for k in writes.values()), "nothing created twice"
    # The import covers [from, today): customers last updated today are the scheduled sync's.
    lo = datetime.fromisoformat(since).replace(tzinfo=UTC)
    hi = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC)
    in_range = stack.running["ticketmaster"].sandbox.store.ids(  # type: ignore[attr-defined]
        "customers", lo, hi
    )
    expected = {
        usable_email(c)
        for cid, c in customers(stack).items()
        if cid in in_range and consented(c) and usable_email(c)
    }
    assert member_emails(stack) == expected, "nothing missing"


def test_mapping_adds_nested_fields_and_removed_fields_are_not_sent(tmp_path: Path) -> None:
    stack = start(tmp_path, changes={"mapping.remove": ["lastname"]})
    try:
        stack.run(SYNC)
        people = customers(stack)
        got = members(stack)
        with_cards = [cid for cid in got if (people[cid].get("cards") or {}).get("Cardnumber")]
        assert with_cards
        for cid in with_cards:
            assert str(got[cid]["fields"]["Cardnumber"]) == str(people[cid]["cards"]["Cardnumber"])
        assert all("lastname" not in m["fields"] for m in got.values())
        assert any("firstname" in m["fields"] for m in got.values())
    finally:
        stack.stop()


def test_purchases_are_tracked_once_each_across_reruns(stack: Stack) -> None:
    stack.run(SYNC)
    stack.admin("ticketmaster", "mutate", {"new_orders": 6, "share": 0.1, "seed": 2})
    stack.run(SYNC)
    stack.run(SYNC)
    writes = stack.stats("heyloyalty")["writes"]
    tracked = {k.split(":", 1)[1]: v for k, v in writes.items() if k.startswith("tracking:")}
    assert tracked and all(v == {"create": 1} for v in tracked.values())
    people = customers(stack)
    expected = {
        oid
        for oid, o in orders(stack).items()
        if o.get("status") == "COMPLETED"
        and consented(people.get(str(o.get("customer_id")), {}))
        and usable_email(people.get(str(o.get("customer_id")), {}))
    }
    assert set(tracked) == expected


def test_unchanged_customers_cost_zero_destination_calls(stack: Stack) -> None:
    stack.run(SYNC)
    before = stack.stats("heyloyalty")["total_requests"]
    again = stack.run(SYNC)
    assert again["destination_calls"] == 0
    assert stack.stats("heyloyalty")["total_requests"] == before


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def test_a_run_with_failing_members_sends_one_error_email(tmp_path: Path) -> None:
    box, port = Inbox(), free_port()
    smtp = Controller(box, hostname="127.0.0.1", port=port)
    smtp.start()
    stack = start(
        tmp_path,
        extra={"smtp": {"host": "127.0.0.1", "port": port, "sender": "tb@venue.example"}},
        changes={"notify": {"errors_to": ["crm@venue.example"]}},
    )
    try:
        result = stack.run(SYNC)
        assert result["rejected"] > 0
        assert len(box.messages) == 1
        msg = box.messages[0]
        text = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
        body = text.get_payload(decode=True).decode()  # type: ignore[union-attr]
        assert body.count("\n- ") == result["rejected"]
        assert "contact:ticketmaster:" in body
        assert any(p.get_filename() for p in msg.walk())
    finally:
        stack.stop()
        smtp.stop()


def test_manual_import_switches_override_the_sync_for_that_import(stack: Stack) -> None:
    since = (datetime.now(UTC) - timedelta(days=800)).date().isoformat()
    members_only = stack.cli("backfill", SYNC, "--from", since, "--no-orders", "--json")
    assert members_only.returncode == 0, members_only.stderr
    writes = stack.stats("heyloyalty")["writes"]
    assert any(k.startswith("member:") for k in writes)
    assert not any(k.startswith("tracking:") for k in writes), "--no-orders imports no orders"
    orders_only = stack.cli(
        "backfill",
        SYNC,
        "--from",
        since,
        "--no-members",
        "--orders",
        "--no-resubscribe",
        "--no-send-optin",
        "--no-automations",
        "--json",
    )
    assert orders_only.returncode == 0, orders_only.stderr
    assert json.loads(orders_only.stdout)["created"] > 0
    assert any(k.startswith("tracking:") for k in stack.stats("heyloyalty")["writes"])
    # A switch the sync does not have is refused before anything runs.
    bad = stack.cli("backfill", SYNC, "--from", since, "--set-source", "venues=[x]")
    assert bad.returncode == 2 and "no setting 'venues'" in bad.stderr
