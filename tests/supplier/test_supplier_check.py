"""``check_supplier``: permissions named one by one, ids verified in the chosen environment."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from ticketbridge.connectors.acme import TIQETS_PERMISSIONS, create_sandbox, sandbox_mapping
from ticketbridge.connectors.base import CheckResult
from ticketbridge.http import HttpContext
from ticketbridge.sandbox import SandboxApp
from ticketbridge.supplier import check_supplier

from .support import ACME, acme_config, supplier_config


def _context(sandbox: SandboxApp) -> HttpContext:
    ctx = HttpContext()
    ctx.mount(ACME, httpx.ASGITransport(app=sandbox.app))
    return ctx


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


async def test_a_complete_setup_passes_every_check() -> None:
    results = await check_supplier(supplier_config(), acme_config(), _context(create_sandbox()))
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    names = [r.name for r in results]
    assert names[:4] == ["acme environment", "acme session", "acme permissions", "organization"]
    assert "product highlights-tour variant ota-adult" in names
    assert _by_name(results)["acme permissions"].detail == "all 13 granted"
    assert _by_name(results)["organization"].detail.endswith("(Tiqets)")


async def test_a_missing_refunds_permission_is_named_and_fails() -> None:
    sandbox = create_sandbox(permissions=[p for p in TIQETS_PERMISSIONS if p != "REFUNDS_EXECUTE"])
    results = await check_supplier(supplier_config(), acme_config(), _context(sandbox))
    failed = {r.name: r.detail for r in results if not r.ok}
    assert failed == {
        "acme permissions": "missing 1: REFUNDS_EXECUTE",
        "permission REFUNDS_EXECUTE": "missing: give api_tiqets a group with the orders-admin role",
    }


async def test_several_missing_permissions_are_each_named() -> None:
    sandbox = create_sandbox(permissions=["EVENT_VIEW", "EVENT_TEMPLATE_VIEW", "ORDER_VIEW"])
    results = await check_supplier(supplier_config(), acme_config(), _context(sandbox))
    named = {r.name for r in results if r.name.startswith("permission ")}
    assert named == {f"permission {p}" for p in TIQETS_PERMISSIONS} - {
        "permission EVENT_VIEW",
        "permission EVENT_TEMPLATE_VIEW",
        "permission ORDER_VIEW",
    }
    # Without ACCT_ORDERS_VIEW the organization cannot be read: reported, not raised.
    assert not _by_name(results)["organization"].ok


async def test_ids_that_do_not_exist_in_the_environment_are_reported() -> None:
    mapping = sandbox_mapping(42)
    mapping["organization_id"] = "no-such-org"
    mapping["products"]["museum-entry"]["event_template_id"] = "no-such-template"
    mapping["products"]["highlights-tour"]["variants"]["adult"]["ticket_type_id"] = "no-type"
    results = await check_supplier(
        supplier_config(mappings={"sandbox": mapping}), acme_config(), _context(create_sandbox())
    )
    failed = {r.name: r.detail for r in results if not r.ok}
    assert failed == {
        "organization": "no-such-org not found in ACME sandbox",
        "product museum-entry": "event template no-such-template not found in ACME sandbox",
        "product highlights-tour variant adult": f"ticket type no-type is not priced on template "
        f"{mapping['products']['highlights-tour']['event_template_id']}",
    }


async def test_refused_credentials_stop_the_check() -> None:
    results = await check_supplier(
        supplier_config(), acme_config(password=SecretStr("wrong")), _context(create_sandbox())
    )
    assert [(r.name, r.ok) for r in results] == [
        ("acme environment", True),
        ("acme session", False),
    ]
    assert "Invalid user name or password" in results[1].detail
    assert "wrong" not in results[1].detail
