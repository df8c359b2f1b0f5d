"""Ticketmaster (Nordic "TM1"/International client data): a source of customers and orders.

Stream ``customers``: customers as contacts with per-channel marketing consent, and their
orders as bookings, read by updated-at cursor (the Ticketmaster -> Heyloyalty integration).
Stream ``tickets``: each purchased ticket of the orders, for mobile-pass destinations.
The API has no public spec [GAP]; every path and parameter name lives in ``paths.Paths`` and
can be overridden per connection. Registered through the ``ticketbridge.connectors`` entry
point as ``CONNECTOR``.
"""

from __future__ import annotations

from ticketbridge.connectors.base import Connector, SandboxSpec
from ticketbridge.connectors.ticketmaster.config import (
    CUSTOMERS,
    TICKETS,
    CustomersOptions,
    Paths,
    TicketmasterConfig,
    TicketsOptions,
)
from ticketbridge.connectors.ticketmaster.sandbox import (
    SANDBOX_ENV,
    create_sandbox,
    sandbox_config,
)
from ticketbridge.connectors.ticketmaster.source import TicketmasterSource

CONNECTOR = Connector(
    platform="ticketmaster",
    title="Ticketmaster (client data)",
    config=TicketmasterConfig,
    source=TicketmasterSource,
    sandbox=SandboxSpec(create_sandbox, sandbox_config, SANDBOX_ENV),
)

__all__ = [
    "CONNECTOR",
    "CUSTOMERS",
    "TICKETS",
    "CustomersOptions",
    "Paths",
    "TicketmasterConfig",
    "TicketmasterSource",
    "TicketsOptions",
    "create_sandbox",
]
