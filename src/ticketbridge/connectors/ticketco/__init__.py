"""TicketCo (Norway): a source of bookings and tickets, read from events and item grosses.

Registered through the ``ticketbridge.connectors`` entry point as ``CONNECTOR``.
"""

from __future__ import annotations

from typing import Any

from ticketbridge.connectors.base import Connector, SandboxSpec, lazy_sandbox
from ticketbridge.connectors.ticketco.config import BASE, SANDBOX_TOKEN, TicketcoConfig
from ticketbridge.connectors.ticketco.source import (
    BOOKINGS,
    TICKETS,
    BookingsOptions,
    TicketcoSource,
)


def sandbox_config(url: str) -> dict[str, Any]:
    """Connection settings for a sandbox served at ``url`` (its origin, no path)."""
    return {
        "platform": "ticketco",
        "base_url": url.rstrip("/") + BASE,
        "token": "${TICKETCO_TOKEN}",
    }


CONNECTOR = Connector(
    platform="ticketco",
    title="TicketCo",
    config=TicketcoConfig,
    source=TicketcoSource,
    sandbox=SandboxSpec(
        lazy_sandbox("ticketbridge.connectors.ticketco.sandbox"),
        sandbox_config,
        {"TICKETCO_TOKEN": SANDBOX_TOKEN},
    ),
)

__all__ = [
    "BOOKINGS",
    "CONNECTOR",
    "TICKETS",
    "BookingsOptions",
    "TicketcoConfig",
    "TicketcoSource",
]
