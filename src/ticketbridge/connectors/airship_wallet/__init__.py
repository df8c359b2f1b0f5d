"""Airship (Urban Airship) Wallet: destination of event-ticket mobile passes.

Object ``event_tickets``: one Wallet event (with a pass group) per canonical event and one
adaptive link per ticket; passes follow ticket and event changes. See ``destination.py`` for
the invariants and ``sandbox.py`` for the simulator.
"""

from ticketbridge.connectors.airship_wallet.config import (
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SECRET,
    AirshipWalletConfig,
    EventTicketsOptions,
    WalletCallbacks,
)
from ticketbridge.connectors.airship_wallet.destination import (
    EVENT_TICKETS,
    AirshipWalletDestination,
)
from ticketbridge.connectors.airship_wallet.sandbox import create_sandbox, sandbox_config
from ticketbridge.connectors.airship_wallet.schemas import CallbackEvent, verify_callback
from ticketbridge.connectors.base import Connector, SandboxSpec

CONNECTOR = Connector(
    platform="airship_wallet",
    title="Airship Wallet (event-ticket passes)",
    config=AirshipWalletConfig,
    destination=AirshipWalletDestination,
    sandbox=SandboxSpec(
        create_sandbox,
        sandbox_config,
        {
            "AIRSHIP_WALLET_SECRET": SANDBOX_SECRET,
            "AIRSHIP_WALLET_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
        },
    ),
)

__all__ = [
    "CONNECTOR",
    "EVENT_TICKETS",
    "AirshipWalletConfig",
    "AirshipWalletDestination",
    "CallbackEvent",
    "EventTicketsOptions",
    "WalletCallbacks",
    "create_sandbox",
    "verify_callback",
]
