"""The ACME sandbox on its own: auth, sessions, permissions, envelopes, orders and refunds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ticketbridge.connectors.acme import TIQETS_PERMISSIONS, create_sandbox, sandbox_mapping
from ticketbridge.connectors.acme.sandbox_store import AcmeStore
from ticketbridge.sandbox import SandboxApp

from .conftest import LOGIN


def _window(days: int = 2) -> dict[str, str]:
    now = datetime.now(UTC)
    return {"startTime": now.isoformat(), "endTime": (now + timedelta(days=days)).isoformat()}


async def _instance(http: httpx.AsyncClient, template: str = "Highlights Tour") -> dict[str, Any]:
    listed = (await http.get("/v2/b2b/event/instances", params=_window())).json()["list"]
    return next(e for e in listed if e["name"] == template)


def _order_body(event: dict[str, Any], quantity: int = 2, price_index: int = 0) -> dict[str, Any]:
    price = event["priceList"]["prices"][price_index]
    return {
        "saleChannel": "reseller",
        "paymentMethod": "invoice",
        "chargeAmount": price["price"] * quantity,
        "email": "guest@example.com",
        "events": [
            {
                "eventId": event["id"],
                "items": [
                    {
                        "eventId": event["id"],
                        "amount": price["price"],
                        "quantity": quantity,
                        "itemType": "Event",
                        "personTypeId": price["personType"]["id"],
                    }
                ],
            }
        ],
    }


def _tiqets_org(sandbox: SandboxApp) -> str:
    return str(sandbox_mapping()["organization_id"])


async def test_api_key_is_required_and_checked(http: httpx.AsyncClient) -> None:
    missing = await http.get("/v2/b2b/event/templates", headers={"x-acme-api-key": ""})
    assert missing.status_code == 401 and missing.json()["code"] == "UNAUTHORIZED"
    wrong = await http.get("/v2/b2b/event/templates", headers={"x-acme-api-key": "nope"})
    assert wrong.status_code == 403 and set(wrong.json()) == {"message", "code"}


async def test_session_login_reports_roles_expiry_and_time_zone(http: httpx.AsyncClient) -> None:
    bad = await http.get("/v2/b2b/customer/session", headers={**LOGIN, "x-acme-password": "wrong"})
    assert bad.status_code == 401 and bad.json()["code"] == "INVALID_CREDENTIALS"
    no_tenant = await http.get(
        "/v2/b2b/customer/session", headers={k: v for k, v in LOGIN.items() if "tenant" not in k}
    )
    assert no_tenant.status_code == 401
    body = (await http.get("/v2/b2b/customer/session", headers=LOGIN)).json()
    assert body["userName"] == "api_tiqets" and body["tenantId"] == 1234
    assert sorted(body["roles"]) == sorted(TIQETS_PERMISSIONS)
    assert body["expireMs"] > datetime.now(UTC).timestamp() * 1000
    assert body["tenantTimeZone"] == "UTC"


async def test_staff_calls_need_a_live_session(
    http: httpx.AsyncClient, session: dict[str, str], sandbox: SandboxApp
) -> None:
    assert (await http.get("/v2/b2b/organizations")).status_code == 401
    ok = await http.get("/v2/b2b/organizations", headers=session)
    assert ok.status_code == 200
    sandbox.store.mutate({"expire_sessions": True})
    expired = await http.get("/v2/b2b/organizations", headers=session)
    assert expired.status_code == 401 and expired.json()["code"] == "SESSION_EXPIRED"


async def test_templates_come_in_a_paginated_envelope(http: httpx.AsyncClient) -> None:
    first = (
        await http.get(
            "/v2/b2b/event/templates", params={"page": 1, "pageSize": 3, "sortField": "name"}
        )
    ).json()
    assert first["pagination"] == {
        "page": 1,
        "pageSize": 3,
        "sortField": "name",
        "sortDirection": "asc",
        "count": 4,
    }
    second = (await http.get("/v2/b2b/event/templates", params={"page": 2, "pageSize": 3})).json()
    names = [t["name"] for t in first["list"] + second["list"]]
    assert names == ["General Admission", "Highlights Tour", "Late Opening", "Spring Exhibition"]
    one = (await http.get(f"/v2/b2b/event/template/{first['list'][0]['id']}")).json()
    assert {p["personType"]["name"] for p in one["priceLists"][0]["prices"]} == {
        "Adult",
        "Child",
        "OTA Adult",
    }
    assert (await http.get("/v2/b2b/event/template/nope")).status_code == 404


async def test_instances_carry_capacity_sales_and_price_list(http: httpx.AsyncClient) -> None:
    listed = (await http.get("/v2/b2b/event/instances", params=_window(1))).json()
    assert set(listed) == {"list"}  # documented as a bare list
    tours = [e for e in listed["list"] if e["name"] == "Highlights Tour"]
    days = {e["startTime"][:10] for e in tours}
    assert len(tours) >= 5 and len(tours) > len(days)  # several timeslots a day
    event = tours[0]
    assert {
        "id",
        "templateId",
        "capacity",
        "startTime",
        "endTime",
        "soldQuantity",
        "available",
        "state",
        "priceList",
    } <= set(event)
    assert event["capacity"] == 20 and 0 <= event["soldQuantity"] <= 5
    names = {p["personType"]["name"]: p["price"] for p in event["priceList"]["prices"]}
    assert names == {"Adult": 18.0, "Child": 9.0, "OTA Adult": 16.5}
    missing = await http.get("/v2/b2b/event/instances")
    assert missing.status_code == 400


@pytest.mark.parametrize(
    ("permission", "call"),
    [
        ("EVENT_VIEW", ("GET", "/v2/b2b/event/instances")),
        ("EVENT_TEMPLATE_VIEW", ("GET", "/v2/b2b/event/templates")),
        ("ORDER_CREATE", ("POST", "/v2/b2b/orders/organizations/x")),
        ("ORDER_UPDATE", ("POST", "/v2/b2b/orders/update")),
        ("REFUNDS_EXECUTE", ("POST", "/v1/b2b/b2b/refunds")),
        ("ACCT_ORDERS_VIEW", ("GET", "/v2/b2b/organizations")),
    ],
)
async def test_each_route_checks_its_permission(
    http: httpx.AsyncClient,
    session: dict[str, str],
    sandbox: SandboxApp,
    permission: str,
    call: tuple[str, str],
) -> None:
    everything_else = [p for p in TIQETS_PERMISSIONS if p != permission]
    sandbox.store.mutate({"permissions": everything_else})
    method, path = call
    answer = await http.request(method, path, headers=session, json={}, params=_window())
    assert answer.status_code == 403
    assert answer.json() == {
        "message": f"User api_tiqets lacks permission {permission}",
        "code": "FORBIDDEN",
    }


def test_permissions_are_configurable_at_creation() -> None:
    limited = create_sandbox(permissions=["EVENT_VIEW"])
    assert limited.store.dump()["permissions"] == ["EVENT_VIEW"]


async def test_order_create_update_and_refund_move_sold_quantity(
    http: httpx.AsyncClient, session: dict[str, str], sandbox: SandboxApp
) -> None:
    event = await _instance(http)
    sold = event["soldQuantity"]
    org = _tiqets_org(sandbox)
    created = await http.post(
        f"/v2/b2b/orders/organizations/{org}", headers=session, json=_order_body(event, 3)
    )
    assert created.status_code == 200, created.text
    order = created.json()
    item = order["orderItems"][0]
    assert order["organizationId"] == org and order["totalAmount"] == "54.00"
    assert item["quantity"] == 3 and item["unitPrice"] == "18.00"
    assert (await _instance(http))["soldQuantity"] == sold + 3

    lowered = await http.post(
        "/v2/b2b/orders/update",
        headers=session,
        json={
            "orderId": order["id"],
            "orderItems": [{"orderItemId": item["itemId"], "quantity": 1}],
        },
    )
    assert lowered.json()["refundAmount"] == "36.00"
    assert (await _instance(http))["soldQuantity"] == sold + 1

    refund = await http.post(
        "/v1/b2b/b2b/refunds",
        headers=session,
        json={"orderId": order["id"], "incidentReasonCode": "Miscellaneous"},
    )
    assert refund.status_code == 200 and refund.json()["refundAmount"] == "18.00"
    assert (await _instance(http))["soldQuantity"] == sold
    nothing = await http.post(
        "/v1/b2b/b2b/refunds",
        headers=session,
        json={"orderId": order["id"], "incidentReasonCode": "Miscellaneous"},
    )
    assert nothing.status_code == 400 and nothing.json()["code"] == "NOTHING_TO_REFUND"

    read = await http.get(
        f"/v2/b2c/orders/{order['id']}", headers={**session, "x-b2c-tenant-id": "1234"}
    )
    assert read.json()["orderItems"][0]["quantity"] == 0
    no_tenant = await http.get(f"/v2/b2c/orders/{order['id']}", headers=session)
    assert no_tenant.status_code == 400

    writes = sandbox.stats.as_dict()["writes"]
    assert writes[f"order:{order['id']}"] == {"create": 1, "update": 2}
    assert sum(1 for k in writes if k.startswith("refund:")) == 2
    dumped = sandbox.store.dump()["orders"][0]
    assert dumped["refundAmount"] == "54.00"
    assert [r["source"] for r in dumped["refunds"]] == ["update", "refund"]


async def test_order_create_refuses_overselling_and_wrong_amounts(
    http: httpx.AsyncClient, session: dict[str, str], sandbox: SandboxApp
) -> None:
    event = await _instance(http)
    org = _tiqets_org(sandbox)
    sandbox.store.mutate({"events": [{"id": event["id"], "soldQuantity": 19}]})
    full = await http.post(
        f"/v2/b2b/orders/organizations/{org}", headers=session, json=_order_body(event, 2)
    )
    assert full.status_code == 400 and full.json()["code"] == "CAPACITY_EXCEEDED"
    body = {**_order_body(event, 1), "chargeAmount": 1.0}
    wrong = await http.post(f"/v2/b2b/orders/organizations/{org}", headers=session, json=body)
    assert wrong.status_code == 400 and wrong.json()["code"] == "INVALID_AMOUNT"
    unknown = await http.post(
        "/v2/b2b/orders/organizations/nope", headers=session, json=_order_body(event, 1)
    )
    assert unknown.status_code == 404
    assert sandbox.store.dump()["counts"]["orders"] == 0


def test_ids_follow_the_seed() -> None:
    a, b, c = (AcmeStore(stats=create_sandbox().stats, seed=s) for s in (42, 42, 7))
    assert [t.id for t in a.templates] == [t.id for t in b.templates]
    assert {t.id for t in a.templates}.isdisjoint(t.id for t in c.templates)
    assert sandbox_mapping(42) != sandbox_mapping(7)
    assert set(sandbox_mapping(42)["products"]) == {"museum-entry", "highlights-tour"}
