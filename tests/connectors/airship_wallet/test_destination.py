"""The destination against the sandbox over real HTTP: events, links, pass updates."""

from __future__ import annotations

from typing import Any

from ticketbridge.connectors.airship_wallet import (
    CONNECTOR,
    EVENT_TICKETS,
    AirshipWalletDestination,
    EventTicketsOptions,
    create_sandbox,
)
from ticketbridge.connectors.base import Change, Destination, Outcome, Record

from .support import ANDROID, IOS, STARTS, Harness, change_for, make_event, make_ticket

OPTS = EventTicketsOptions()
LINKS = "POST /v1/links/adaptive/multiple/project/{project_id}"
EVENT_CREATE = "POST /v1/events/project/{project_id}/id/{external_id}"
GROUP_PUT = "PUT /v1/events/project/{project_id}/passGroups/{group}"
PASS_PUT = "PUT /v1/pass/template/{template_id}/id/{external_id}"


async def write(dest: AirshipWalletDestination, changes: list[Change]) -> list[Outcome]:
    outcomes = await dest.write("event_tickets", changes, OPTS)
    assert sorted(o.key for o in outcomes) == sorted(c.key for c in changes)
    return outcomes


async def create(dest: AirshipWalletDestination, records: list[Record]) -> dict[str, Outcome]:
    outcomes = await write(dest, [change_for(dest, r) for r in records])
    assert all(o.ok for o in outcomes), [o.reason for o in outcomes if not o.ok]
    return {o.key: o for o in outcomes}


def passes_of(data: dict[str, Any], external_id: str) -> list[dict[str, Any]]:
    return [p for p in data["passes"] if p["external_id"] == external_id]


def test_registration() -> None:
    assert CONNECTOR.platform == "airship_wallet" and CONNECTOR.sandbox is not None
    assert CONNECTOR.sandbox.create is create_sandbox
    assert CONNECTOR.objects == (EVENT_TICKETS,)
    assert EVENT_TICKETS.accepts == ("ticket",) and EVENT_TICKETS.entities == ("event", "pass")
    config = CONNECTOR.sandbox.config("http://127.0.0.1:8410")
    assert config["project_secret"] == "${AIRSHIP_WALLET_SECRET}"
    assert config["token_url"] == "http://127.0.0.1:8410/token"


async def test_is_a_destination(harness: Harness) -> None:
    assert isinstance(harness.destination(), Destination)


async def test_first_write_creates_one_event_per_event_and_one_link_per_ticket(
    harness: Harness,
) -> None:
    dest = harness.destination(batch_size=2)
    gala, quiz = make_event("E1"), make_event("E2", name="Pub Quiz")
    records = [make_ticket(f"G{i}", event=gala) for i in range(3)]
    records += [make_ticket(f"Q{i}", event=quiz) for i in range(2)]
    outcomes = await create(dest, records)

    requests = await harness.requests()
    assert requests[EVENT_CREATE] == 2  # one per event, not per ticket
    assert requests[LINKS] == 3  # 3 attendees in batches of 2, plus 2 in one
    data = await harness.data()
    assert sorted(e["external_id"] for e in data["events"]) == ["E1", "E2"]
    assert data["pass_groups"] == {"event-E1": [1], "event-E2": [2]}
    assert sorted(x["external_id"] for x in data["links"]) == ["G0", "G1", "G2", "Q0", "Q1"]
    assert len(data["passes"]) == 10  # one per link and template (Apple and Google)
    link = next(x for x in data["links"] if x["external_id"] == "G1")
    assert link["fields"]["seat"] == {"label": "Seat", "value": "A12"}
    assert link["fields"]["faceValue"]["micros"] == 25_000_000
    ids = outcomes["ticket:test:G1"].dest_ids
    assert ids["link"] == link["id"] and ids["url"].endswith(link["id"])
    assert ids["event"] == "E1" and ids["ios_pass_link"] and ids["android_pass_link"]
    event = data["events"][0]
    assert event["fields"]["startTime"]["value"] == "2026-12-31T19:30:00Z"


async def test_a_retried_create_makes_no_second_link(harness: Harness) -> None:
    dest = harness.destination()
    records = [make_ticket("T1"), make_ticket("T2")]
    first = await create(dest, records)
    again = await create(harness.destination(), records)  # a new run: event is there (400)
    assert {k: o.dest_ids["link"] for k, o in first.items()} == {
        k: o.dest_ids["link"] for k, o in again.items()
    }
    data = await harness.data()
    assert len(data["events"]) == 1 and len(data["links"]) == 2 and len(data["passes"]) == 4
    writes = (await harness.stats())["writes"]
    assert writes["link:T1"] == {"create": 1, "update": 1}


async def test_existing_event_external_id_is_used_not_failed(harness: Harness) -> None:
    harness.store.create_event(
        "E1", {"fields": {"eventName": {"value": "New Year Gala"}}, "passGroups": ["event-E1"]}
    )
    outcomes = await create(harness.destination(), [make_ticket("T1")])
    assert (await harness.stats())["statuses"]["400"] == 1
    data = await harness.data()
    assert len(data["events"]) == 1
    assert outcomes["ticket:test:T1"].dest_ids["event_id"] == str(data["events"][0]["id"])
    # The event made elsewhere had no start time: ours reached it and its passes, in one call.
    assert (await harness.requests())[GROUP_PUT] == 1
    assert data["events"][0]["fields"]["startTime"]["value"] == "2026-12-31T19:30:00Z"
    assert all(p["fields"]["startTime"]["value"].endswith("19:30:00Z") for p in data["passes"])


async def test_seat_change_is_one_partial_pass_update_with_change_message(
    harness: Harness,
) -> None:
    dest = harness.destination(android_template_id=None)  # one template: one pass per ticket
    ids = (await create(dest, [make_ticket("T1"), make_ticket("T2")]))["ticket:test:T1"].dest_ids
    before = await harness.requests()
    moved = make_ticket("T1", seat="B2")
    [outcome] = await write(
        dest, [change_for(dest, moved, "update", changed=("pass",), dest_ids=ids)]
    )
    assert outcome.ok, outcome.reason
    after = await harness.requests()
    assert after[PASS_PUT] == 1
    assert sum(after.values()) - sum(before.values()) == 1, "nothing but the pass PUT"
    [pass_] = passes_of(await harness.data(), "T1")
    assert pass_["fields"]["seat"]["value"] == "B2"
    assert pass_["fields"]["row"]["value"] == "A"  # partial: other fields kept
    assert pass_["notifications"] == ["Seat changed to B2"]  # only the field that changed
    [other] = passes_of(await harness.data(), "T2")
    assert other["fields"]["seat"]["value"] == "A12"


async def test_a_ticket_change_updates_its_pass_on_each_template(harness: Harness) -> None:
    dest = harness.destination()
    ids = (await create(dest, [make_ticket("T1")]))["ticket:test:T1"].dest_ids
    change = change_for(
        dest, make_ticket("T1", gate="9"), "update", changed=("pass",), dest_ids=ids
    )
    assert (await write(dest, [change]))[0].ok
    writes = (await harness.stats())["writes"]
    assert writes[f"pass:{IOS}:T1"]["update"] == 1 and writes[f"pass:{ANDROID}:T1"]["update"] == 1
    assert (await harness.requests())[PASS_PUT] == 2


async def test_event_change_for_many_tickets_is_one_pass_group_update(harness: Harness) -> None:
    dest = harness.destination()
    event = make_event("E1")
    records = [make_ticket(f"T{i:03d}", event=event) for i in range(120)]
    created = await create(dest, records)
    later = make_event("E1", starts=STARTS.replace(hour=20))
    moved = [make_ticket(f"T{i:03d}", event=later) for i in range(120)]
    changes = [
        change_for(dest, r, "update", changed=("event",), dest_ids=created[r.key].dest_ids)
        for r in moved
    ]
    before = await harness.requests()
    outcomes = await write(dest, changes)
    assert all(o.ok for o in outcomes)
    after = await harness.requests()
    assert after[GROUP_PUT] == 1
    assert sum(after.values()) - sum(before.values()) == 1, "no call per pass"
    data = await harness.data()
    assert len(data["passes"]) == 240
    assert {p["fields"]["startTime"]["value"] for p in data["passes"]} == {"2026-12-31T20:30:00Z"}
    assert {p["fields"]["doorsOpen"]["value"] for p in data["passes"]} == {"2026-12-31T18:30:00Z"}
    # Every holder hears about the start time, and about nothing that did not change.
    assert all(
        p["notifications"] == ["Start time changed to 2026-12-31T20:30:00Z"] for p in data["passes"]
    )
    assert data["events"][0]["fields"]["startTime"]["value"] == "2026-12-31T20:30:00Z"


async def test_cancelled_ticket_pass_says_so_and_barcode_is_voided(harness: Harness) -> None:
    dest = harness.destination()
    ids = (await create(dest, [make_ticket("T1")]))["ticket:test:T1"].dest_ids
    cancelled = make_ticket("T1", status="cancelled")
    [outcome] = await write(
        dest, [change_for(dest, cancelled, "update", changed=("pass",), dest_ids=ids)]
    )
    assert outcome.ok
    for pass_ in passes_of(await harness.data(), "T1"):
        assert pass_["fields"]["status"]["value"] == "Cancelled"
        assert pass_["fields"]["barcode_value"]["value"] == "VOID"
        assert pass_["fields"]["barcodeAltText"]["value"] == "CANCELLED"
        assert "Ticket Cancelled" in pass_["notifications"]


async def test_refusals_are_outcomes_naming_the_record(harness: Harness) -> None:
    dest = harness.destination()
    ids = (await create(dest, [make_ticket("T1")]))["ticket:test:T1"].dest_ids
    ghost = make_ticket("T9")  # acknowledged before, but its pass is gone from Wallet
    moved = make_ticket("T1", event=make_event("E2"))
    outcomes = await write(
        dest,
        [
            change_for(
                dest, ghost, "update", changed=("pass",), dest_ids={**ids, "link_external": "T9"}
            ),
            change_for(dest, moved, "update", changed=("event",), dest_ids=ids),
        ],
    )
    by_key = {o.key: o for o in outcomes}
    assert not by_key["ticket:test:T9"].ok
    assert "ticket:test:T9: pass 'T9' not found" in str(by_key["ticket:test:T9"].reason)
    assert not by_key["ticket:test:T1"].ok
    assert "moved from event 'E1' to 'E2'" in str(by_key["ticket:test:T1"].reason)


async def test_rate_limits_are_retried_after_retry_after(harness: Harness) -> None:
    await harness.admin("POST", "faults", {"rate_429": 0.5, "retry_after_s": 3, "seed": 1})
    outcomes = await create(harness.destination(), [make_ticket(f"T{i}") for i in range(5)])
    assert len(outcomes) == 5
    stats = await harness.stats()
    assert stats["faults"]["429"] > 0
    assert harness.sleeps.count(3.0) == stats["faults"]["429"]
    assert len((await harness.data())["links"]) == 5


async def test_links_answer_wrapped_in_an_object_is_read_too() -> None:
    h = Harness(links_response="object")
    try:
        outcomes = await create(h.destination(), [make_ticket("T1")])
        assert outcomes["ticket:test:T1"].dest_ids["link"]
    finally:
        await h.aclose()


async def test_check_reports_credentials_project_and_templates(harness: Harness) -> None:
    results = await harness.destination().check()
    assert [(r.name, r.ok) for r in results] == [
        ("credentials", True),
        ("project", True),
        (f"template {IOS}", True),
        (f"template {ANDROID}", True),
    ]
    results = await harness.destination(android_template_id=4040).check()
    assert [(r.name, r.ok) for r in results][-1] == ("template 4040", False)
    results = await harness.destination(project_id=99).check()
    assert [(r.name, r.ok) for r in results] == [("credentials", True), ("project", False)]
    # Nothing answering: the credentials are not said to be accepted.
    unreachable = harness.destination(base_url="http://127.0.0.1:9/v1", max_retries=0)
    results = await unreachable.check()
    assert [(r.name, r.ok) for r in results] == [("credentials", False), ("project", False)]
    assert results[0].detail.startswith("not checked: ")


async def test_a_record_without_event_is_refused_alone(harness: Harness) -> None:
    dest = harness.destination()
    good = change_for(dest, make_ticket("T1"))
    orphan = make_ticket("T2", no_event=True)
    bad = Change(key=orphan.key, action="create", record=orphan, fields=dict(good.fields))
    outcomes = {o.key: o for o in await write(dest, [good, bad])}
    assert outcomes["ticket:test:T1"].ok
    assert not outcomes["ticket:test:T2"].ok
    assert "ticket:test:T2: ticket has no event" in str(outcomes["ticket:test:T2"].reason)
