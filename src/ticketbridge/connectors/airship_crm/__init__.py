"""Airship CRM (airship.co.uk, the UK hospitality CRM; not Urban Airship): destination.

Object ``contact_bookings``: a contact profile with venue and event-tag groups, plus its
booking, the way Airship's own TicketCo connector writes them. See ``destination.py`` for the
invariants and ``sandbox.py`` for the simulator.
"""

from ticketbridge.connectors.airship_crm.config import (
    SANDBOX_TOKEN,
    AirshipCrmConfig,
    ContactBookingsOptions,
    GroupsOptions,
)
from ticketbridge.connectors.airship_crm.destination import (
    CONTACT_BOOKINGS,
    AirshipCrmDestination,
)
from ticketbridge.connectors.airship_crm.sandbox import create_sandbox, sandbox_config
from ticketbridge.connectors.base import Connector, SandboxSpec

CONNECTOR = Connector(
    platform="airship_crm",
    title="Airship CRM (airship.co.uk)",
    config=AirshipCrmConfig,
    destination=AirshipCrmDestination,
    sandbox=SandboxSpec(create_sandbox, sandbox_config, {"AIRSHIP_TOKEN": SANDBOX_TOKEN}),
)

__all__ = [
    "CONNECTOR",
    "CONTACT_BOOKINGS",
    "AirshipCrmConfig",
    "AirshipCrmDestination",
    "ContactBookingsOptions",
    "GroupsOptions",
    "create_sandbox",
]
