"""The Tiqets Supplier API, served by ticketbridge in front of ACME Ticketing.

Tiqets calls us for products, availability, reservations, bookings and cancellations
(``tiqets-supplier-api.yaml``); each booking becomes one ACME organization order under the
venue's Tiqets organization record. Not a connector: a server with its own state (the
reservations, in ticketbridge's state database).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ticketbridge.supplier.app import FORBIDDEN_MESSAGE, create_app, serve_supplier
    from ticketbridge.supplier.check import check_supplier
    from ticketbridge.supplier.config import (
        EnvMapping,
        ProductMapping,
        SupplierApiConfig,
        VariantMapping,
    )
    from ticketbridge.supplier.demo import demo_sale
    from ticketbridge.supplier.reservations import metadata as reservations_metadata

# Imported when first used: every project file loads supplier.config, and a sync run has no
# use for the server (Starlette, the ACME client), which would add a fifth to its start-up.
_LAZY = {
    "FORBIDDEN_MESSAGE": "app",
    "create_app": "app",
    "serve_supplier": "app",
    "check_supplier": "check",
    "EnvMapping": "config",
    "ProductMapping": "config",
    "SupplierApiConfig": "config",
    "VariantMapping": "config",
    "demo_sale": "demo",
    "reservations_metadata": "reservations",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    found = import_module(f"{__name__}.{module}")
    return getattr(found, "metadata" if name == "reservations_metadata" else name)


__all__ = [
    "FORBIDDEN_MESSAGE",
    "EnvMapping",
    "ProductMapping",
    "SupplierApiConfig",
    "VariantMapping",
    "check_supplier",
    "create_app",
    "demo_sale",
    "reservations_metadata",
    "serve_supplier",
]
