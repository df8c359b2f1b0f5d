"""Airship CRM (airship.co.uk, the UK hospitality CRM; not Urban Airship): destination.

Object ``contact_bookings``: a contact profile with venue and event-tag groups, plus its
booking, the way Airship's own TicketCo connector writes them. See ``destination.py`` for the
invariants and ``sandbox.py`` for the simulator.
"""

from typing import Any

from ticketbridge.connectors.airship_crm.config import (
    PLATFORM,
    SANDBOX_TOKEN,
    AirshipCrmConfig,
    ContactBookingsOptions,
    GroupsOptions,
)
from ticketbridge.connectors.airship_crm.destination import (
    CONTACT_BOOKINGS,
    AirshipCrmDestination,
)
from ticketbridge.connectors.base import Connector, SandboxSpec, lazy_sandbox


def sandbox_config(url: str) -> dict[str, Any]:
    """Connection settings for a sandbox served at ``url`` (token as an ``${ENV}`` ref)."""
    return {
        "platform": PLATFORM,
        "base_url": url.rstrip("/") + "/v1",
        "token": "${AIRSHIP_TOKEN}",
        "account_id": 1,
    }


CONNECTOR = Connector(
    platform="airship_crm",
    title="Airship CRM (airship.co.uk)",
    config=AirshipCrmConfig,
    destination=AirshipCrmDestination,
    sandbox=SandboxSpec(
        lazy_sandbox("ticketbridge.connectors.airship_crm.sandbox"),
        sandbox_config,
        {"AIRSHIP_TOKEN": SANDBOX_TOKEN},
    ),
)

__all__ = [
    "CONNECTOR",
    "CONTACT_BOOKINGS",
    "AirshipCrmConfig",
    "AirshipCrmDestination",
    "ContactBookingsOptions",
    "GroupsOptions",
    "sandbox_config",
]
