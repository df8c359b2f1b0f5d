"""The sandbox on its own: auth, account scoping, string typing, validation, upsert rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from ticketbridge.connectors.airship_crm.sandbox import create_sandbox
from ticketbridge.sandbox import SandboxApp

AUTH = {"Authorization": "Bearer sandbox-airship-token"}


@pytest.fixture
async def http(sandbox: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sb", headers=AUTH) as client:
        yield client


def contact(**fields: Any) -> dict[str, Any]:
    return {"account_id": 1, "email": "jane@example.com", "first_name": "Jane", **fields}


async def test_bearer_auth_and_error_shape(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/v1/account/units", params={"account_id": 1}, headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    assert response.json() == {"errors": [{"message": "Unauthorized"}]}


async def test_account_id_in_query_or_body(http: httpx.AsyncClient) -> None:
    missing = await http.get("/v1/account/units")
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "account_id"
    other = await http.post("/v1/contact", json=contact(account_id=2))
    assert other.status_code == 403 and "errors" in other.json()
    in_body = await http.request(
        "GET", "/v1/contacts", json={"account_id": 1, "email": "nobody@example.com"}
    )
    assert in_body.status_code == 404
    assert in_body.json() == {"errors": [{"message": "Contact not found."}]}


async def test_units_are_laravel_paginated_and_string_typed(http: httpx.AsyncClient) -> None:
    body = (await http.get("/v1/account/units", params={"account_id": 1})).json()
    assert body["per_page"] == 100 and body["total"] == 4 and body["last_page"] == 1
    assert body["next_page_url"] is None and body["current_page"] == 1
    assert body["data"][0] == {"id": "1000", "name": "Account 1", "is_root": "1"}
    assert [u["name"] for u in body["data"][1:]] == [
        "Riverside Hall",
        "Bowl Arena",
        "Harbour Stage",
    ]


async def test_contact_upsert_is_string_typed_and_matches_email_then_mobile(
    http: httpx.AsyncClient, sandbox: SandboxApp
) -> None:
    first = await http.post(
        "/v1/contact",
        json=contact(
            mobile_number="07700900123",
            allow_email=True,
            units=[{"id": 1001, "groups": [{"name": "Booking", "folder_name": "TicketCo"}]}],
        ),
    )
    assert first.status_code == 201
    made = first.json()
    assert made["allow_email"] == "1" and made["allow_sms"] is None
    assert made["mobile_number"] == "447700900123" and isinstance(made["id"], str)
    assert made["units"][0]["groups"][0]["name"] == "Booking"
    # Same mobile, new email: matched by mobile, email updated; one contact.
    by_mobile = await http.post(
        "/v1/contact", json=contact(email="jane.new@example.com", mobile_number="447700900123")
    )
    assert by_mobile.status_code == 200 and by_mobile.json()["id"] == made["id"]
    # Group addressed by id, in the unit it belongs to.
    gid = made["units"][0]["groups"][0]["id"]
    again = await http.post(
        "/v1/contact",
        json=contact(email="jane.new@example.com", units=[{"id": 1001, "groups": [{"id": gid}]}]),
    )
    assert again.status_code == 200
    data = sandbox.store.dump()
    assert data["counts"]["contacts"] == 1 and data["counts"]["groups"] == 1
    assert sandbox.stats.writes["contact:jane@example.com"] == {"create": 1}
    assert sandbox.stats.writes["contact:jane.new@example.com"] == {"update": 2}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "jane@nomx.invalid"}, "email"),
        ({"email": "jane@localhost"}, "email"),
        ({"mobile_number": "447000900123"}, "mobile_number"),  # 070: not a mobile
        ({"mobile_number": "4512345678"}, "mobile_number"),
        ({"units": [{"id": 9999}]}, "units.0.id"),
        ({"units": [{"id": 1001, "groups": [{"id": 1}]}]}, "units.0.groups.0.id"),
        ({"bookings": [{"booking_reference": "B", "stage_value": 700}]}, "bookings.0.stage_value"),
        ({"bookings": [{"booking_reference": "B", "type_id": 2}]}, "bookings.0.type_id"),
        ({"bookings": [{"party_datetime": "01/06/2024"}]}, "bookings.0.party_datetime"),
        ({"rules": [{"rule_name": "overwrite_all"}]}, "rules.0.rule_name"),
    ],
)
async def test_validation_422_names_the_field(
    http: httpx.AsyncClient, sandbox: SandboxApp, fields: dict[str, Any], field: str
) -> None:
    response = await http.post("/v1/contact", json=contact(**fields))
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]
    assert sandbox.store.dump()["counts"]["contacts"] == 0


async def test_discard_invalid_data_drops_bad_fields(
    http: httpx.AsyncClient, sandbox: SandboxApp
) -> None:
    response = await http.post(
        "/v1/contact",
        json=contact(
            mobile_number="+45 12 34", dob="1 May", rules=[{"rule_name": "discard_invalid_data"}]
        ),
    )
    assert response.status_code == 201
    assert response.json()["mobile_number"] is None and response.json()["dob"] is None
    nothing = await http.post(
        "/v1/contact",
        json={
            "account_id": 1,
            "email": "x@nomx.invalid",
            "rules": [{"rule_name": "discard_invalid_data"}],
        },
    )
    assert nothing.status_code == 422  # nothing left to identify a contact by


async def test_mobile_is_unique_per_account(http: httpx.AsyncClient) -> None:
    await http.post("/v1/contact", json=contact(mobile_number="447700900123"))
    await http.post("/v1/contact", json=contact(email="bob@example.com"))
    clash = await http.post(
        "/v1/contact", json=contact(email="bob@example.com", mobile_number="447700900123")
    )
    assert clash.status_code == 422
    assert clash.json()["errors"][0]["field"] == "mobile_number"


async def test_preserve_consent_rule(http: httpx.AsyncClient, sandbox: SandboxApp) -> None:
    await http.post("/v1/contact", json=contact(allow_email=False))
    keep = [{"rule_name": "preserve_consent"}]
    await http.post("/v1/contact", json=contact(allow_email=True, allow_sms=True, rules=keep))
    [row] = sandbox.store.dump()["contacts"]
    assert row["allow_email"] is False  # existing opt-out kept
    assert row["allow_sms"] is True  # was unset: filled
    await http.post("/v1/contact", json=contact(allow_email=True))
    assert sandbox.store.dump()["contacts"][0]["allow_email"] is True


async def test_bookings_upsert_on_reference_and_update_by_id(
    http: httpx.AsyncClient, sandbox: SandboxApp
) -> None:
    booking = {
        "booking_reference": "R1",
        "unit_id": 1001,
        "stage_value": 1,
        "party_size": 2,
        "party_datetime": "2024-06-01 19:00:00",
        "deposit_paid": "45",
        "data": {"element_01": "x"},
    }
    for _ in range(2):
        await http.post("/v1/contact", json=contact(bookings=[booking]))
    found = await http.get("/v1/bookings", params={"account_id": 1, "booking_reference": "R1"})
    assert found.status_code == 200
    body = found.json()
    assert body["stage_value"] == "1" and body["party_size"] == "2"
    assert body["deposit_paid"] == "45.00" and body["unit_id"] == "1001"
    updated = await http.post(
        f"/v1/bookings/{body['id']}",
        json={"account_id": 1, "stage_value": 550, "enquiry_datetime": "2024-05-01 09:00:00"},
    )
    assert updated.status_code == 200 and updated.json()["stage_value"] == "550"
    assert updated.json()["party_enquirytime"] == "2024-05-01 09:00:00"
    by_element = await http.get("/v1/bookings", params={"account_id": 1, "element_01": "x"})
    assert by_element.json()["id"] == body["id"]
    missing = await http.post("/v1/bookings/424242", json={"account_id": 1, "party_size": 1})
    assert missing.status_code == 404 and "errors" in missing.json()
    assert sandbox.stats.writes["booking:R1"] == {"create": 1, "update": 2}
    assert sandbox.store.dump()["counts"]["bookings"] == 1


async def test_contact_search_body(http: httpx.AsyncClient) -> None:
    await http.post("/v1/contact", json=contact(mobile_number="07700900123", last_name="Doe"))
    by_mobile = await http.request(
        "GET", "/v1/contacts", json={"account_id": 1, "mobile_number": "447700900123"}
    )
    assert by_mobile.json()["email"] == "jane@example.com"
    by_name = await http.request(
        "GET",
        "/v1/contacts",
        json={"account_id": 1, "name": {"first_name": "jane", "last_name": "DOE"}},
    )
    assert [c["email"] for c in by_name.json()] == ["jane@example.com"]


async def test_lookup_lists(http: httpx.AsyncClient) -> None:
    query = {"account_id": 1}
    sources = (await http.get("/v1/booking/sources", params=query)).json()
    assert {"id": "10", "name": "Third Party"} in sources
    types = (await http.get("/v1/booking_types", params=query)).json()
    assert {"id": "13", "name": "General Booking"} in types
    stages = (await http.get("/v1/booking/stage_values", params=query)).json()
    assert [s["id"] for s in stages] == ["1", "100", "550"]


async def test_mutate_reset_and_seeded_records() -> None:
    today = datetime(2024, 6, 1, tzinfo=UTC)
    sb = create_sandbox(seed=3, records=5, today=today)
    seeded = sb.store.dump()
    assert seeded == create_sandbox(seed=3, records=5, today=today).store.dump()
    assert seeded["counts"]["contacts"] == 5
    email = seeded["contacts"][0]["email"]
    changed = sb.store.mutate({"unsubscribe": [email, "ghost@example.com"]})
    assert changed == {"unsubscribed": [email], "not_found": ["ghost@example.com"]}
    assert sb.store.dump()["contacts"][0]["allow_email"] is False
    sb.store.reset()
    assert sb.store.dump() == seeded


def test_units_are_deterministic_per_account() -> None:
    units = create_sandbox(account_id=7, units=["A", "B"]).store.dump()["units"]
    assert [(u["id"], u["name"], u["is_root"]) for u in units] == [
        (7000, "Account 7", True),
        (7001, "A", False),
        (7002, "B", False),
    ]


async def test_lookups_follow_changed_emails_mobiles_and_references(
    http: httpx.AsyncClient,
) -> None:
    """The store's look-up indexes: a value that changed is found under its new value only."""
    await http.post("/v1/contact", json=contact(mobile_number="07700900123"))
    # Matched by mobile, the contact gets a new email: the old one no longer finds it.
    await http.post(
        "/v1/contact",
        json={"account_id": 1, "email": "JANE.NEW@example.com", "mobile_number": "447700900123"},
    )

    async def by(key: str, value: str) -> httpx.Response:
        return await http.request("GET", "/v1/contacts", json={"account_id": 1, key: value})

    assert (await by("email", "jane.new@example.com")).json()["mobile_number"] == "447700900123"
    assert (await by("email", "jane@example.com")).status_code == 404
    # A new mobile moves the contact's mobile index the same way.
    await http.post(
        "/v1/contact",
        json={"account_id": 1, "email": "jane.new@example.com", "mobile_number": "447700900999"},
    )
    assert (await by("mobile_number", "447700900999")).json()["email"] == "jane.new@example.com"
    assert (await by("mobile_number", "447700900123")).status_code == 404

    booking = {"booking_reference": "OLD-1", "unit_id": 1001, "party_size": 2}
    await http.post("/v1/contact", json=contact(email="jane.new@example.com", bookings=[booking]))
    found = (
        await http.get("/v1/bookings", params={"account_id": 1, "booking_reference": "OLD-1"})
    ).json()
    moved = await http.post(
        f"/v1/bookings/{found['id']}", json={"account_id": 1, "booking_reference": "NEW-1"}
    )
    assert moved.status_code == 200
    new = await http.get("/v1/bookings", params={"account_id": 1, "booking_reference": "NEW-1"})
    old = await http.get("/v1/bookings", params={"account_id": 1, "booking_reference": "OLD-1"})
    assert new.json()["id"] == found["id"] and old.status_code == 404
