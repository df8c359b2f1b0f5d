"""The Tiqets Supplier API, served by ticketbridge in front of ACME Ticketing.

Tiqets calls us for products, availability, reservations, bookings and cancellations
(``tiqets-supplier-api.yaml``); each booking becomes one ACME organization order under the
venue's Tiqets organization record. Not a connector: a server with its own state (the
reservations, in ticketbridge's state database).
"""

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
