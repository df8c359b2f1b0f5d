"""Switching ``environment`` to production uses the production ids, with no other change.

Two ACME sandboxes with different seeds (so every id differs) stand in for ACME's sandbox and
production, mounted at the two real default base URLs; the ACME connection names neither.
"""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from ticketbridge.connectors.acme import BASE_URLS, AcmeConfig, create_sandbox, sandbox_mapping
from ticketbridge.errors import ConfigError
from ticketbridge.http import HttpContext
from ticketbridge.sandbox import SandboxApp
from ticketbridge.supplier import check_supplier

from .support import TOUR, Harness, acme_config, supplier_config

ACME_CONNECTION = AcmeConfig(
    platform="acme",
    api_key=SecretStr("sandbox-acme-key"),
    username="api_tiqets",
    password=SecretStr("sandbox-acme-password"),
    tenant_id="1234",
)  # no base_url: the environment's default
MAPPINGS = {"sandbox": sandbox_mapping(42), "production": sandbox_mapping(7)}


async def _sell(h: Harness) -> str:
    slot, _ = await h.open_slot(TOUR)
    reservation = (await h.reserve(TOUR, slot, adult=1)).json()
    booking = await h.book(reservation["reservation_id"])
    assert booking.status_code == 200, booking.text
    booking_id: str = booking.json()["booking_id"]
    return booking_id


def _order(sandbox: SandboxApp, booking_id: str) -> dict[str, object]:
    return next(o for o in sandbox.store.dump()["orders"] if o["id"] == booking_id)


async def test_switching_environment_uses_the_production_ids(sqlite_url: str) -> None:
    sand, prod = create_sandbox(seed=42), create_sandbox(seed=7)
    mounts = {BASE_URLS["sandbox"]: sand, BASE_URLS["production"]: prod}
    config = supplier_config(mappings=MAPPINGS)

    before = Harness(sqlite_url, sandbox=sand, config=config, acme=ACME_CONNECTION, mounts=mounts)
    try:
        sandbox_booking = await _sell(before)
    finally:
        await before.aclose()

    switched = config.model_copy(update={"environment": "production"})
    after = Harness(sqlite_url, sandbox=sand, config=switched, acme=ACME_CONNECTION, mounts=mounts)
    try:
        production_booking = await _sell(after)
        # A booking of the other environment is not this environment's to cancel.
        other = await after.http.delete(f"/v2/booking/{sandbox_booking}")
        assert other.json()["error_code"] == 1004
    finally:
        await after.aclose()

    in_sandbox, in_production = _order(sand, sandbox_booking), _order(prod, production_booking)
    assert in_sandbox["organizationId"] == MAPPINGS["sandbox"]["organization_id"]
    assert in_production["organizationId"] == MAPPINGS["production"]["organization_id"]
    tour = {env: m["products"][TOUR] for env, m in MAPPINGS.items()}
    items = in_production["items"]
    assert isinstance(items, list)
    assert items[0]["personTypeId"] == tour["production"]["variants"]["adult"]["ticket_type_id"]
    assert items[0]["eventId"] in prod.store.instances  # type: ignore[attr-defined]
    assert sand.store.dump()["counts"]["orders"] == 1
    assert prod.store.dump()["counts"]["orders"] == 1

    ctx = HttpContext()
    for url, sb in mounts.items():
        ctx.mount(url, httpx.ASGITransport(app=sb.app))
    results = await check_supplier(switched, ACME_CONNECTION, ctx)
    assert all(r.ok for r in results)
    assert results[0].detail == "production at https://api.acmeticketing.net"
    # The sandbox's ids are not production's: the check says so.
    wrong = supplier_config(mappings={"production": MAPPINGS["sandbox"]}, environment="production")
    assert not all(r.ok for r in await check_supplier(wrong, ACME_CONNECTION, ctx))


def test_a_custom_acme_url_cannot_follow_an_environment_switch(sqlite_url: str) -> None:
    config = supplier_config(mappings=MAPPINGS, environment="production")
    with pytest.raises(ConfigError, match="custom base_url"):
        Harness(sqlite_url, config=config, acme=acme_config())
