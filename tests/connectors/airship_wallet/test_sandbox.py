"""The sandbox on its own: pagination, error bodies, callbacks, admin routes."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from ticketbridge.connectors.airship_wallet import verify_callback
from ticketbridge.connectors.airship_wallet.client import AirshipWalletClient
from ticketbridge.errors import CallbackRefused

from .support import BASE, HOOKS, IOS, PROJECT, SECRET, Harness, make_ticket
from .test_destination import create

HEADERS = {"Api-Revision": "1.2"}
AUTH = httpx.BasicAuth("sandbox-wallet-key", SECRET)


async def raw(h: Harness, method: str, path: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=h.transport, base_url=BASE, auth=AUTH) as http:
        return await http.request(method, path, headers=HEADERS, **kw)


def client_of(dest: object) -> AirshipWalletClient:
    client = dest.client  # type: ignore[attr-defined]
    assert isinstance(client, AirshipWalletClient)
    return client


async def test_pass_lists_are_paginated(harness: Harness) -> None:
    dest = harness.destination()
    await create(dest, [make_ticket(f"T{i}") for i in range(7)])
    pages = [p async for p in client_of(dest).pass_pages(IOS, page_size=3)]
    assert [len(p) for p in pages] == [3, 3, 1]
    ids = [s.id for page in pages for s in page]
    assert ids == sorted(ids) and len(set(ids)) == 7
    assert {s.status for page in pages for s in page} == {"not_been_installed"}
    second = await raw(
        harness,
        "GET",
        f"/v1/template/{IOS}/passes",
        params={"page": 2, "pageSize": 3, "order": "id", "direction": "DESC"},
    )
    body = second.json()
    assert body["count"] == 7 and [p["id"] for p in body["passes"]] == sorted(ids)[::-1][3:6]
    assert body["pagination"] == {
        "order": "id",
        "page": 2,
        "start": 3,
        "direction": "DESC",
        "pageSize": 3,
    }


async def test_errors_have_the_documented_body(harness: Harness) -> None:
    bad_page = await raw(harness, "GET", f"/v1/template/{IOS}/passes", params={"page": 0})
    missing = await raw(harness, "GET", f"/v1/events/project/{PROJECT}/id/nope")
    for response, status in ((bad_page, 400), (missing, 404)):
        assert response.status_code == status
        assert set(response.json()) == {"code", "description", "details"}
        assert response.json()["code"] == status
    await harness.admin("POST", "faults", {"rate_429": 1.0, "retry_after_s": 7})
    limited = await raw(harness, "GET", f"/v1/project/{PROJECT}")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert set(limited.json()) == {"code", "description", "details"}


async def test_duplicate_event_external_id_is_a_400(harness: Harness) -> None:
    body = {"fields": {"eventName": {"value": "Gala"}}}
    path = f"/v1/events/project/{PROJECT}/id/E1"
    assert (await raw(harness, "POST", path, json=body)).status_code == 200
    again = await raw(harness, "POST", path, json=body)
    assert again.status_code == 400 and "exists" in again.json()["details"]
    no_name = await raw(harness, "POST", f"/v1/events/project/{PROJECT}/id/E2", json={})
    assert no_name.status_code == 400


async def test_callback_registration_and_simulated_install(harness: Harness) -> None:
    dest = harness.destination()
    await create(dest, [make_ticket("T1"), make_ticket("T2")])
    secret_headers = {"X-Ticketbridge-Secret": "hook-secret-1"}
    await client_of(dest).register_callback(HOOKS + "/wallet", secret_headers)
    assert (await harness.data())["callback"] == {
        "baseUrl": HOOKS + "/wallet",
        "headers": secret_headers,
    }
    answer = await harness.admin("POST", "mutate", {"op": "install", "external_ids": ["T1"]})
    assert answer["callbacks_queued"] == 2  # the Apple and the Google pass of T1
    sent = await harness.store.drain_callbacks()
    assert [s["status"] for s in sent] == [200, 200]
    assert len(harness.hooks) == 2
    for hook in harness.hooks:
        assert hook["path"] == "/wallet/pass/install"
        assert hook["headers"]["x-ticketbridge-secret"] == "hook-secret-1"
        event = verify_callback(
            hook["headers"],
            hook["body"],
            hook["path"],
            header="X-Ticketbridge-Secret",
            secret="hook-secret-1",
        )
        assert event.kind == "install" and event.external_id == "T1"
        assert event.pass_id is not None and event.platform in {"ios", "android"}
    statuses = {p["external_id"]: p["status"] for p in (await harness.data())["passes"]}
    assert statuses == {"T1": "installed", "T2": "not_been_installed"}

    await client_of(dest).register_callback(HOOKS + "/v2", secret_headers, method="PUT")
    await harness.admin("POST", "mutate", {"op": "uninstall", "external_ids": ["T1"]})
    await harness.store.drain_callbacks()
    assert harness.hooks[-1]["path"] == "/v2/pass/uninstall"


def test_verify_callback_refuses_a_wrong_secret_without_echoing_it() -> None:
    body = orjson.dumps({"passId": 1, "externalId": "T1"})
    with pytest.raises(CallbackRefused) as caught:
        verify_callback(
            {"X-Secret": "guess"}, body, "/pass/install", header="X-Secret", secret="s3"
        )
    assert "guess" not in str(caught.value) and "s3" not in str(caught.value)
    with pytest.raises(CallbackRefused):
        verify_callback({}, body, "/pass/install", header="X-Secret", secret="s3")
    with pytest.raises(CallbackRefused):
        verify_callback({"x-secret": "s3"}, b"[1", "/pass/install", header="X-Secret", secret="s3")
    event = verify_callback(
        {"x-secret": "s3"}, body, "/x/pass/uninstall", header="X-Secret", secret="s3"
    )
    assert event.kind == "uninstall" and event.pass_id == "1"


async def test_seeded_events_reset_and_data() -> None:
    h = Harness(records=4, seed=3)
    try:
        first = await h.data()
        assert [e["external_id"] for e in first["events"]] == [
            f"seed-event-{i}" for i in range(1, 5)
        ]
        assert first == (await Harness(records=4, seed=3).data()), "deterministic for a seed"
        await create(h.destination(), [make_ticket("T1")])
        assert len((await h.data())["links"]) == 1
        await h.admin("POST", "reset")
        assert await h.data() == first and (await h.stats())["total_requests"] == 0
    finally:
        await h.aclose()


async def test_a_deleted_event_frees_its_external_id(harness: Harness) -> None:
    body = {"fields": {"eventName": {"value": "Gala"}}}
    path = f"/v1/events/project/{PROJECT}/id/E1"
    made = await raw(harness, "POST", path, json=body)
    assert (await raw(harness, "DELETE", path)).status_code == 200
    assert (await raw(harness, "GET", path)).status_code == 404
    again = await raw(harness, "POST", path, json=body)
    assert again.status_code == 200 and again.json()["eventId"] != made.json()["eventId"]


async def test_updates_reach_exactly_the_passes_they_address(harness: Harness) -> None:
    # The store finds links and passes through indexes: a link sent again, a pass addressed
    # by (template, external id) and an event update must each touch their own passes only.
    dest = harness.destination()
    await create(dest, [make_ticket(f"T{i}") for i in range(5)])
    before = {(p["template_id"], p["external_id"]): p for p in (await harness.data())["passes"]}
    assert len(before) == 10
    links = [link["external_id"] for link in (await harness.data())["links"]]
    third = links[2]
    resend = await raw(
        harness,
        "POST",
        f"/v1/links/adaptive/multiple/project/{PROJECT}",
        json={
            "iosTemplateId": IOS,
            "payload": {
                "events": [
                    {
                        "eventId": (await harness.data())["passes"][0]["event_id"],
                        "attendees": [
                            {
                                "adaptiveLinkExternalId": third,
                                "fields": {"seat": {"label": "Seat", "value": "Z9"}},
                            }
                        ],
                    }
                ]
            },
        },
    )
    assert resend.status_code == 200, resend.text
    one = await raw(
        harness,
        "PUT",
        f"/v1/pass/template/{IOS}/id/{links[0]}",
        json={"fields": {"seat": {"label": "Seat", "value": "Y1"}}},
    )
    assert one.status_code == 200, one.text
    after = {(p["template_id"], p["external_id"]): p for p in (await harness.data())["passes"]}
    changed = {key for key in after if after[key]["fields"] != before[key]["fields"]}
    assert changed == {(t, third) for t in {k[0] for k in before}} | {(IOS, links[0])}
    assert len(after) == 10
