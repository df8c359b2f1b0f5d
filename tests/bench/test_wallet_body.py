"""The benchmark's plain-Python TicketCo -> Airship Wallet job sends what ticketbridge sends.

The dlt and raw Wallet jobs build their requests with ``bench.integrations.wallet_body``. Here
ticketbridge's own TicketCo mapping and ``airship_wallet`` destination write the tickets of a
sandbox data set into an in-process Wallet sandbox, every request recorded on the wire, and
the script's requests for the same item grosses must be exactly those: the same event creates
(path, pass group, fields), the same adaptive-link requests (templates, event, attendees with
every field, face value in micros, voided barcodes), the same tickets left out. If the two
drifted, the destination would not do the same work for every contender.

Then the stateless rerun the scripts make: the same requests again, where an event create
answered 400 becomes an event update and a link sent again updates its passes; the sandbox
then holds one pass per ticket and template, with the new seat and the moved start.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from bench.integrations import wallet_body as plain

from tests.connectors.airship_wallet.support import change_for
from ticketbridge.connectors.airship_wallet import (
    AirshipWalletConfig,
    AirshipWalletDestination,
    EventTicketsOptions,
    create_sandbox,
)
from ticketbridge.connectors.base import Record
from ticketbridge.connectors.ticketco.mapping import (
    MappingContext,
    group_items,
    map_event,
    map_ticket,
    ticket_key,
)
from ticketbridge.connectors.ticketco.sandbox import ZONE, TicketcoStore
from ticketbridge.demo import INTEGRATIONS
from ticketbridge.errors import MappingError, RecordRejected
from ticketbridge.http import HttpContext

BASE = "http://wallet.sandbox.test"
BATCH = 5
[DEMO] = [i for i in INTEGRATIONS if i.sync == "ticketco-tickets-to-wallet"]
OPTIONS = EventTicketsOptions.model_validate(
    {k: v for k, v in DEMO.config()["destination"].items() if k not in ("connection", "object")}
)
Sent = tuple[str, str, Any]  # method, path under /v1, JSON body


class Recording(httpx.ASGITransport):
    """The Wallet sandbox over ASGI, keeping every request the destination sends."""

    def __init__(self) -> None:
        self.sandbox = create_sandbox()
        super().__init__(app=self.sandbox.app)
        self.sent: list[Sent] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        path = request.url.raw_path.decode().removeprefix("/v1/")
        self.sent.append((request.method, path, orjson.loads(body) if body else None))
        return await super().handle_async_request(request)


def _config() -> AirshipWalletConfig:
    return AirshipWalletConfig.model_validate(
        {
            "platform": "airship_wallet",
            "base_url": BASE + "/v1",
            "project_id": plain.PROJECT_ID,
            "project_key": "sandbox-wallet-key",
            "project_secret": "sandbox-wallet-secret",
            "ios_template_id": plain.TEMPLATES[0],
            "android_template_id": plain.TEMPLATES[1],
            # Small batches, so that events span several link requests at this size (the
            # bench runs the default 100 on both sides).
            "batch_size": BATCH,
        }
    )


def _store() -> TicketcoStore:
    store = TicketcoStore(
        seed=7, records=700, today=datetime(2026, 3, 1, tzinfo=UTC), page_size=100
    )
    store.mutate(
        {"share": 0.05, "cancel_share": 0.04, "no_shows": True, "malformed_share": 0.01, "seed": 4}
    )
    return store


def _tickets(event: dict[str, Any], items: list[dict[str, Any]], now: datetime) -> list[Record]:
    """ticketbridge's TicketCo mapping of an event's item grosses (failures left out, as the
    engine dead-letters them)."""
    ctx = MappingContext(now=now, zone=ZONE)
    try:
        prepared = map_event(event, ZONE, "event")
    except MappingError:
        return []
    out = []
    for _ref, group in group_items(items):
        for index, item in enumerate(group):
            try:
                ticket = map_ticket(event, item, index, ctx, prepared=prepared)
            except MappingError:
                continue
            out.append(Record(key=ticket_key(ticket.number), kind="ticket", data=ticket))
    return out


def _script(event: dict[str, Any], items: list[dict[str, Any]]) -> list[Sent]:
    found = list(plain.attendees(event, items))
    if not found:
        return []
    try:
        fields = plain.event_fields(event)
    except plain.Unusable:
        return []
    out: list[Sent] = [("POST", *plain.event_create(event, fields))]
    out += [("POST", *plain.links_request(event, b)) for b in plain.batches(found, BATCH)]
    return out


def _key(sent: Sent) -> bytes:
    return orjson.dumps(sent, option=orjson.OPT_SORT_KEYS)


async def test_requests_match_what_ticketbridge_sends_on_sandbox_data() -> None:
    store = _store()
    now = datetime.now(UTC)
    wire = Recording()
    ctx = HttpContext()
    ctx.mount(BASE, wire)
    dest = AirshipWalletDestination(_config(), ctx)
    changes, script = [], []
    refused = 0
    for ev in store.events:
        event = store.event_json(ev)
        items = store.item_page([ev], 1, 100_000, pii=True)
        script += _script(event, items)
        for record in _tickets(event, items, now):
            try:
                changes.append(change_for(dest, record, options=OPTIONS))
            except RecordRejected:
                refused += 1
    try:
        outcomes = await dest.write("event_tickets", changes, OPTIONS)
    finally:
        await dest.aclose()
    assert all(o.ok for o in outcomes), [o.reason for o in outcomes if not o.ok][:3]

    assert sorted(map(_key, wire.sent)) == sorted(map(_key, script))
    attendees = [
        a for m, p, b in script if "links" in p for a in b["payload"]["events"][0]["attendees"]
    ]
    shown = Counter(a["fields"]["status"]["value"] for a in attendees)
    # The data set exercises what matters: many events and tickets, cancelled passes (voided
    # barcodes), attended ones, tickets left out for a bad date, events over 100 tickets.
    assert len(attendees) > 1000 and sum("events/" in p for _, p, _ in script) > 20
    assert shown["Cancelled"] > 0 and shown["Attended"] > 0 and shown["Valid"] > 0
    assert all(a["fields"]["faceValue"]["micros"] % 10_000 == 0 for a in attendees)
    total = sum(len(store.item_page([ev], 1, 100_000, pii=False)) for ev in store.events)
    assert total - len(attendees) > 0 and refused == 0  # bad stamps: left out by both
    events = sum("events/" in p for _, p, _ in wire.sent)
    assert sum("links/" in p for _, p, _ in wire.sent) > 1.5 * events  # several batches


async def test_a_stateless_rerun_updates_every_pass_without_duplicates() -> None:
    """The scripts' rerun: creates answered 400 become event updates; links sent again update
    their passes (the sandbox) or, answered 400, are sent as pass updates."""
    store = _store()
    seated = [e for e in store.events if e.venue == "Riverside Hall"]
    ev = max(seated, key=lambda e: len(store.item_page([e], 1, 100_000, pii=False)))
    wallet = create_sandbox()
    headers = {"Api-Revision": "1.2"}
    auth = ("sandbox-wallet-key", "sandbox-wallet-secret")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=wallet.app), base_url=BASE + "/v1/", auth=auth
    ) as http:

        async def run() -> Counter[int]:
            event = store.event_json(ev)
            items = store.item_page([ev], 1, 100_000, pii=True)
            statuses: Counter[int] = Counter()
            fields = plain.event_fields(event)
            path, body = plain.event_create(event, fields)
            answer = await http.post(path, json=body, headers=headers)
            statuses[answer.status_code] += 1
            if answer.status_code == 400:
                path, body = plain.event_update(event, fields)
                statuses[(await http.put(path, json=body, headers=headers)).status_code] += 1
            for batch in plain.batches(list(plain.attendees(event, items)), BATCH):
                path, body = plain.links_request(event, batch)
                answer = await http.post(path, json=body, headers=headers)
                statuses[answer.status_code] += 1
                for path, body in plain.pass_updates(batch, answer.json()):
                    statuses[(await http.put(path, json=body, headers=headers)).status_code] += 1
            return statuses

        first = await run()
        assert set(first) == {200}
        seated = next(
            i["id"] for i in store.item_page([ev], 1, 100_000, pii=False) if "seat_name" in i
        )
        store.mutate({"op": "item", "item_id": seated, "seat_name": "Z99"})
        store.mutate({"op": "event_start", "event_id": ev.id, "minutes": 30})
        again = await run()
        assert again[400] == 1 and set(again) == {200, 400}  # the create of an existing event
        data = (await http.get(BASE + "/_sandbox/data")).json()
    per_pass = Counter((p["template_id"], p["external_id"]) for p in data["passes"])
    assert max(per_pass.values()) == 1 and len(per_pass) == 2 * len(
        list(plain.attendees(store.event_json(ev), store.item_page([ev], 1, 100_000, pii=True)))
    )
    moved = plain.event_fields(store.event_json(ev))["startTime"]["value"]
    assert {p["fields"]["startTime"]["value"] for p in data["passes"]} == {moved}
    assert {
        p["fields"]["seat"]["value"] for p in data["passes"] if p["external_id"] == str(seated)
    } == {"Z99"}


def test_an_attendee_refused_as_a_duplicate_becomes_an_update_of_its_passes() -> None:
    batch = [
        {"adaptiveLinkExternalId": "11", "fields": {"seat": {"label": "Seat", "value": "A1"}}},
        {"adaptiveLinkExternalId": "12", "fields": {"seat": {"label": "Seat", "value": "A2"}}},
    ]
    answer = [
        {"adaptiveLinkExternalId": "11", "status": 200},
        {"adaptiveLinkExternalId": "12", "status": 400},
    ]
    assert plain.pass_updates(batch, answer) == [
        (f"pass/template/{t}/id/12", {"fields": batch[1]["fields"]}) for t in plain.TEMPLATES
    ]
    assert plain.pass_updates(batch, {"links": answer[:1]}) == []
