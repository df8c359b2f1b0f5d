"""The TIXNGO sandbox itself: stable opaque keys, the documented flow, transfers, injection,
auth and determinism, checked over its own HTTP API."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from ticketbridge.connectors.tixngo import HISTORY_STATUSES, LIFECYCLE_STATUSES, create_sandbox
from ticketbridge.connectors.tixngo.sandbox import ORGANIZER, SANDBOX_API_KEY

from .support import AUTH_HEADERS, ORIGIN, TODAY, Harness

# The flow of platforms.md 6.5: which status may follow which.
FLOW = {
    "INJECTED": {"DOWNLOADED"},
    "DOWNLOADED": {"ASSIGNED", "PENDING_TRANSFER", "ONLINE_ACTIVATED", "DELETION_PENDING"},
    "ASSIGNED": {"PENDING_TRANSFER", "ONLINE_ACTIVATED", "BT_ACTIVATED"},
    "PENDING_TRANSFER": {"TRANSFERRED", "FAILURE_TRANSFER"},
    "FAILURE_TRANSFER": {"PENDING_TRANSFER", "OFFLINE_ACTIVATED"},
    "TRANSFERRED": {"ONLINE_ACTIVATED", "PENDING_TRANSFER"},
    "ONLINE_ACTIVATED": {"CONTROLLED"},
    "OFFLINE_ACTIVATED": {"CONTROLLED"},
    "BT_ACTIVATED": {"CONTROLLED"},
    "DELETION_PENDING": {"DELETED"},
}


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


async def raw(h: Harness, method: str, path: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=h.transport, base_url=ORIGIN) as http:
        return await http.request(method, path, **kw)


async def test_keys_are_opaque_stable_and_an_empty_page_keeps_its_key(h: Harness) -> None:
    first = await h.feed(limit=1000)
    key = first["nextPageKey"]
    assert isinstance(key, str) and not key.isdigit()
    assert await h.feed(key, 1000) == await h.feed(key, 1000), "the same key, the same answer"
    last = first
    while last["tickets"]:
        key = last["nextPageKey"]
        last = await h.feed(key, 1000)
    assert last == {"tickets": [], "nextPageKey": key}, "no news: the same key back"


@pytest.mark.parametrize(
    "key", ["nonsense", base64.urlsafe_b64encode(b"tixngo-sandbox:99999").decode()]
)
async def test_a_key_it_did_not_hand_out_is_refused(h: Harness, key: str) -> None:
    response = await raw(
        h, "GET", "/organizer/tickets/diff", params={"paginationKey": key}, headers=AUTH_HEADERS
    )
    assert response.status_code == 400
    assert response.json()["message"] == "invalid paginationKey"


async def test_credentials_headers_or_basic_and_nothing_else(h: Harness) -> None:
    path = "/organizer/tickets/diff"
    assert (await raw(h, "GET", path)).status_code == 401
    wrong = {**AUTH_HEADERS, "X-Api-Key": "nope"}
    assert (await raw(h, "GET", path, headers=wrong)).status_code == 401
    other = {**AUTH_HEADERS, "X-Organizer-Email": "someone@else.example"}
    assert (await raw(h, "GET", path, headers=other)).status_code == 401
    assert (await raw(h, "GET", path, headers=AUTH_HEADERS)).status_code == 200
    basic = base64.b64encode(f"{ORGANIZER}:{SANDBOX_API_KEY}".encode()).decode()
    ok = await raw(h, "GET", path, headers={"Authorization": f"Basic {basic}"})
    assert ok.status_code == 200


async def test_seeded_data_is_deterministic_and_reset_restores_it(h: Harness) -> None:
    seeded = await h.data()
    other = Harness(create_sandbox(seed=7, records=2500, today=TODAY))
    assert await other.data() == seeded
    await h.admin("POST", "mutate", {"share": 0.2})
    assert await h.data() != seeded
    await h.admin("POST", "reset")
    assert await h.data() == seeded
    statuses = {t["status"] for t in seeded["tickets"]}
    assert statuses <= set(LIFECYCLE_STATUSES)
    assert len({t["event"]["id"] for t in seeded["tickets"]}) == 4


async def test_mutate_moves_a_share_one_step_along_the_documented_flow(h: Harness) -> None:
    before = await h.tickets()
    changed = await h.admin("POST", "mutate", {"share": 0.1, "seed": 5})
    after = await h.tickets()
    moved = {n for n in after if after[n] != before[n]}
    assert moved == set(changed["changed"])
    movable = [n for n, t in before.items() if t["status"] in FLOW]
    assert len(moved) == round(0.1 * len(movable))
    for n in moved:
        old, new = before[n]["status"], after[n]["status"]
        assert new in FLOW[old], f"{n}: {old} -> {new} is not in the flow"
        assert after[n]["previousStatus"] == old
        assert after[n]["updatedAt"] > before[n]["updatedAt"]
    kinds = {after[n]["status"] for n in moved}
    assert {"TRANSFERRED", "CONTROLLED", "DOWNLOADED"} <= kinds, kinds
    assert set(changed["deleted"]) == {n for n in moved if after[n]["status"] == "DELETED"}
    for n in changed["transferred"]:
        t = after[n]
        assert t["status"] == "TRANSFERRED"
        assert t["owner"]["email"] == t["holder"]["email"], "the new owner is the holder"
        assert t["owner"]["email"] != (before[n]["owner"] or {}).get("email")
        assert t["owner"]["id"] and t["assignee"] is None
    # From the key the feed ended at before the mutation (the same seed, the same keys),
    # the feed serves exactly the changed tickets.
    fresh = Harness(create_sandbox(seed=7, records=2500, today=TODAY))
    key = (await fresh.feed())["nextPageKey"]
    news = await h.feed(key)
    assert sorted(t["ticketId"] for t in news["tickets"]) == sorted(changed["changed"])


async def test_a_share_of_transfers_can_go_to_someone_who_already_got_one(h: Harness) -> None:
    tickets = await h.tickets()
    received = {t["owner"]["email"] for t in tickets.values() if t["status"] == "TRANSFERRED"}
    again_seen = 0
    for seed in range(1, 5):
        changed = await h.admin(
            "POST", "mutate", {"share": 0.3, "seed": seed, "same_recipient_share": 0.5}
        )
        tickets = await h.tickets()
        for n in changed["transferred_again_to"]:
            assert tickets[n]["owner"]["email"] in received, n
        for n in changed["transferred"]:
            assert tickets[n]["owner"]["email"] not in received, n
        received |= {tickets[n]["owner"]["email"] for n in changed["transferred"]}
        again_seen += len(changed["transferred_again_to"])
    assert again_seen, "some transfers went to earlier recipients"


async def test_transfer_op_to_the_same_person_twice_gives_one_account(h: Harness) -> None:
    to = {"email": "Lea.Meier@Example.org", "firstName": "Léa", "lastName": "Meier"}
    one = await h.admin("POST", "mutate", {"op": "transfer", "ticket_id": "S360-000001", "to": to})
    two = await h.admin("POST", "mutate", {"op": "transfer", "ticket_id": "S360-000002", "to": to})
    assert one["ticket"]["status"] == two["ticket"]["status"] == "TRANSFERRED"
    assert one["ticket"]["owner"] == two["ticket"]["owner"]
    assert one["ticket"]["holder"] == {k: to[k] for k in ("email", "firstName", "lastName")}
    assert one["ticket"]["previousStatus"] == "PENDING_TRANSFER"


async def test_an_edit_serves_a_status_text_as_it_is(h: Harness) -> None:
    edited = await h.admin(
        "POST", "mutate", {"op": "edit", "ticket_id": "S360-000003", "status": "LOST"}
    )
    assert edited["ticket"]["status"] == "LOST"


async def test_injection_adds_tickets_at_the_end_of_the_feed(h: Harness) -> None:
    key = (await h.feed())["nextPageKey"]
    ticket = {
        "ticketId": "S360-INJ-1",
        "event": {"id": "EVT9", "name": "Cup final", "startTime": "2026-06-01T20:00:00+02:00"},
        "purchaseDetails": {"purchaseDate": "2026-05-01T10:00:00Z"},
        "security": {"barcode": "123", "barcodeType": "QRCODE"},
        "spectatorDetails": {"firstName": "John", "lastName": "Doe", "email": "john@example.com"},
    }
    bad = {k: v for k, v in ticket.items() if k != "security"}
    refused = await raw(h, "POST", "/organizer/tickets", json=[ticket, bad], headers=AUTH_HEADERS)
    assert refused.status_code == 400
    assert refused.json()["errors"] == [{"index": 1, "message": "missing: security"}]
    assert (await h.feed(key))["tickets"] == [], "a refused batch injects nothing"
    done = await raw(h, "POST", "/organizer/tickets", json=[ticket], headers=AUTH_HEADERS)
    assert done.status_code == 200 and done.json() == {"injected": ["S360-INJ-1"]}
    (news,) = (await h.feed(key))["tickets"]
    assert news["ticketId"] == "S360-INJ-1" and news["status"] == "INJECTED"
    assert news["owner"] is None
    assert news["holder"] == {"email": "john@example.com", "firstName": "John", "lastName": "Doe"}
    assert news["event"]["name"] == "Cup final"


async def test_history_mode_serves_the_legacy_names() -> None:
    h = Harness(create_sandbox(seed=7, records=500, today=TODAY, mode="history"))
    statuses = {t["status"] for t in (await h.data())["tickets"]}
    assert statuses <= set(HISTORY_STATUSES)
    assert {"RECEIVED", "TRANSFER_PENDING", "ACTIVATED"} <= statuses
