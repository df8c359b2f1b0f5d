"""``ticketbridge check`` for the Supplier API: is ACME set up the way Tiqets needs it?

It logs in as the API user, compares the user's permissions with the ones ACME's Tiqets set-up
page lists (``TIQETS_PERMISSIONS``), naming each missing one with the role that grants it, and
verifies that the organization and every mapped event template and ticket type exist in the
chosen environment (ids differ between ACME's sandbox and production).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ticketbridge.connectors.acme.client import AcmeClient
from ticketbridge.connectors.acme.config import TIQETS_PERMISSIONS, AcmeConfig
from ticketbridge.connectors.base import CheckResult
from ticketbridge.errors import ConfigError, ConnectorError
from ticketbridge.http import HttpContext
from ticketbridge.supplier.config import SupplierApiConfig

LOOKAHEAD_DAYS = 30  # where to find ticket types when the template lists no price lists


async def check_supplier(
    config: SupplierApiConfig, acme_config: AcmeConfig, http_context: HttpContext
) -> list[CheckResult]:
    """One result per thing checked; any ``ok=False`` means Tiqets sales would fail."""
    env = config.environment
    try:
        acme = acme_config.for_environment(env)
    except ValueError as exc:
        return [CheckResult("acme environment", False, str(exc))]
    results = [CheckResult("acme environment", True, f"{env} at {acme.base_url}")]
    client = AcmeClient(acme, http_context)
    try:
        try:
            granted = set(await client.permissions())
        except (ConfigError, ConnectorError) as exc:
            results.append(CheckResult("acme session", False, _reason(exc)))
            return results
        results.append(CheckResult("acme session", True, f"logged in as {acme.username}"))
        missing = [p for p in TIQETS_PERMISSIONS if p not in granted]
        results.append(
            CheckResult(
                "acme permissions",
                not missing,
                f"all {len(TIQETS_PERMISSIONS)} granted"
                if not missing
                else f"missing {len(missing)}: {', '.join(missing)}",
            )
        )
        results.extend(
            CheckResult(
                f"permission {p}",
                False,
                f"missing: give {acme.username} a group with the {TIQETS_PERMISSIONS[p]} role",
            )
            for p in missing
        )
        results.append(await _organization(client, config))
        results.extend(await _products(client, config))
    finally:
        await client.aclose()
    return results


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, ConnectorError | ConfigError) else str(exc)


async def _organization(client: AcmeClient, config: SupplierApiConfig) -> CheckResult:
    org_id = config.mapping.organization_id
    try:
        found = await client.organization(org_id)
    except ConnectorError as exc:
        return CheckResult("organization", False, f"{org_id}: {_reason(exc)}")
    if found is None:
        return CheckResult(
            "organization", False, f"{org_id} not found in ACME {config.environment}"
        )
    return CheckResult("organization", True, f"{org_id} ({found.name})")


async def _products(client: AcmeClient, config: SupplierApiConfig) -> list[CheckResult]:
    out: list[CheckResult] = []
    for product_id, product in config.mapping.products.items():
        name = f"product {product_id}"
        tid = product.event_template_id
        try:
            template = await client.event_template(tid)
            if template is None:
                out.append(
                    CheckResult(
                        name, False, f"event template {tid} not found in ACME {config.environment}"
                    )
                )
                continue
            known = template.person_type_ids()
            if not known:
                now = datetime.now(UTC)
                instances = await client.event_instances(
                    now, now + timedelta(days=LOOKAHEAD_DAYS), tid
                )
                known = {p.personType.id for i in instances for p in i.priceList.prices}
        except ConnectorError as exc:
            out.append(CheckResult(name, False, f"event template {tid}: {_reason(exc)}"))
            continue
        out.append(CheckResult(name, True, f"event template {tid} ({template.name})"))
        for variant_id, variant in product.variants.items():
            ok = variant.ticket_type_id in known
            out.append(
                CheckResult(
                    f"{name} variant {variant_id}",
                    ok,
                    f"ticket type {variant.ticket_type_id}"
                    if ok
                    else f"ticket type {variant.ticket_type_id} is not priced on template {tid}",
                )
            )
    return out
