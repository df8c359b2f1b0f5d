"""The ACME client over the sandbox: config defaults, sessions, reads and order writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from ticketbridge.connectors import registry
from ticketbridge.connectors.acme import (
    BASE_URLS,
    CONNECTOR,
    AcmeClient,
    AcmeConfig,
    sandbox_mapping,
)
from ticketbridge.errors import AcmeRefused, AuthError, RetryableError
from ticketbridge.http import HttpContext
from ticketbridge.sandbox import SandboxApp

from .conftest import BASE, config


def test_base_url_follows_the_environment() -> None:
    sandbox = AcmeConfig(platform="acme", api_key=SecretStr("k"))
    assert sandbox.base_url == BASE_URLS["sandbox"] == "https://sand1-api.acmeticketing.net"
    prod = AcmeConfig(platform="acme", environment="production", api_key=SecretStr("k"))
    assert prod.base_url == "https://api.acmeticketing.net"
    assert sandbox.for_environment("production").base_url == prod.base_url
    custom = config()
    with pytest.raises(ValueError, match="custom base_url"):
        custom.for_environment("production")
    with pytest.raises(ValidationError):
        AcmeConfig(platform="acme", api_key=SecretStr("k"), username="u")
    assert "sandbox-acme-password" in config().secrets()


def test_connector_is_registered_with_its_sandbox_settings() -> None:
    found = registry.get("acme")
    assert found is CONNECTOR and found.source is None and found.destination is None
    assert CONNECTOR.sandbox is not None
    assert CONNECTOR.sandbox.env == {
        "ACME_API_KEY": "sandbox-acme-key",
        "ACME_PASSWORD": "sandbox-acme-password",
    }
    settings = CONNECTOR.sandbox.config("http://127.0.0.1:8409/")
    assert settings == {
        "platform": "acme",
        "environment": "sandbox",
        "base_url": "http://127.0.0.1:8409",
        "api_key": "${ACME_API_KEY}",
        "username": "api_tiqets",
        "password": "${ACME_PASSWORD}",
        "tenant_id": "1234",
    }


async def test_one_login_serves_many_calls_and_expiry_logs_in_again(
    client: AcmeClient, sandbox: SandboxApp
) -> None:
    org = sandbox_mapping()["organization_id"]
    assert (await client.organization(org)) is not None
    assert (await client.organization("nope")) is None
    assert len(await client.organizations()) == 3
    requests = sandbox.stats.as_dict()["requests"]
    assert requests["GET /v2/b2b/customer/session"] == 1
    sandbox.store.mutate({"expire_sessions": True})  # ACME ends the session early
    assert (await client.organization(org)) is not None
    assert sandbox.stats.as_dict()["requests"]["GET /v2/b2b/customer/session"] == 2


async def test_a_session_near_its_expiry_is_renewed_before_use(sandbox: SandboxApp) -> None:
    now = [1_000.0]
    ctx = HttpContext()
    ctx.mount(BASE, httpx.ASGITransport(app=sandbox.app))
    made = AcmeClient(config(), ctx, clock=lambda: now[0])
    try:
        session = await made.login()
        now[0] = (session.expireMs or 0) / 1000  # the clock reaches ACME's deadline
        assert (await made.session()).session != session.session
    finally:
        await made.aclose()


async def test_permissions_come_from_the_session(client: AcmeClient, sandbox: SandboxApp) -> None:
    sandbox.store.mutate({"permissions": ["EVENT_VIEW"]})
    assert await client.permissions() == ["EVENT_VIEW"]
    with pytest.raises(AuthError) as refused:
        await client.event_templates()
    assert refused.value.status == 403 and "EVENT_TEMPLATE_VIEW" in refused.value.message


async def test_templates_instances_and_an_order_round_trip(
    client: AcmeClient, sandbox: SandboxApp
) -> None:
    templates = await client.event_templates()
    tour = next(t for t in templates if t.name == "Highlights Tour")
    assert (await client.event_template(tour.id)) == tour
    now = datetime.now(UTC)
    instances = await client.event_instances(now, now + timedelta(days=3), tour.id)
    assert instances and all(i.templateId == tour.id for i in instances)
    assert instances == sorted(instances, key=lambda i: i.start)
    event = instances[0]
    adult = event.priceList.prices[0]
    org = sandbox_mapping()["organization_id"]
    order = await client.create_organization_order(
        org,
        {
            "saleChannel": "reseller",
            "paymentMethod": "invoice",
            "chargeAmount": float(adult.price * 2),
            "events": [
                {
                    "eventId": event.id,
                    "items": [
                        {
                            "eventId": event.id,
                            "amount": float(adult.price),
                            "quantity": 2,
                            "itemType": "Event",
                            "personTypeId": adult.personType.id,
                        }
                    ],
                }
            ],
        },
    )
    item = order.orderItems[0]
    assert item.quantity == 2 and item.ticketingTypeId == adult.personType.id
    fetched = await client.order(order.id)
    assert fetched is not None and fetched.orderNumber == order.orderNumber
    assert await client.order("nope") is None
    after = await client.update_order(order.id, {item.orderItemId: 0})
    assert after.orderItems[0].quantity == 0 and after.refundAmount == adult.price * 2
    with pytest.raises(AcmeRefused) as nothing:
        await client.refund(order.id)
    assert nothing.value.code == "NOTHING_TO_REFUND"


async def test_capacity_refusal_keeps_its_code(client: AcmeClient, sandbox: SandboxApp) -> None:
    now = datetime.now(UTC)
    event = (await client.event_instances(now, now + timedelta(days=2)))[0]
    sandbox.store.mutate({"events": [{"id": event.id, "soldQuantity": event.capacity}]})
    price = event.priceList.prices[0]
    with pytest.raises(AcmeRefused) as full:
        await client.create_organization_order(
            sandbox_mapping()["organization_id"],
            {
                "events": [
                    {
                        "eventId": event.id,
                        "items": [
                            {
                                "quantity": 1,
                                "itemType": "Event",
                                "personTypeId": price.personType.id,
                            }
                        ],
                    }
                ]
            },
        )
    assert full.value.code == "CAPACITY_EXCEEDED" and full.value.status == 400


async def test_order_create_is_never_retried_but_reads_are(
    client: AcmeClient, sandbox: SandboxApp
) -> None:
    await client.login()
    sandbox.faults = sandbox.faults.model_copy(update={"rate_5xx": 1.0})
    with pytest.raises(RetryableError):
        await client.create_organization_order("x", {"events": []})
    requests = sandbox.stats.as_dict()["requests"]
    assert requests["POST /v2/b2b/orders/organizations/{organization_id}"] == 1
    with pytest.raises(RetryableError):
        await client.event_templates()
    assert sandbox.stats.as_dict()["requests"]["GET /v2/b2b/event/templates"] == 6
