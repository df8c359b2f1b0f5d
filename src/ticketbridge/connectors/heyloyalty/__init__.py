"""Heyloyalty (Danish e-mail/SMS marketing): destination.

Object ``members``: contacts upserted as members of one list (matched on email or mobile), and
orders sent as purchase events through the Heycommerce tracking import, the way Heyloyalty's
own Ticketmaster integration fills a list and its activity feed. See ``destination.py`` for
the invariants and ``sandbox.py`` for the simulator.
"""

from ticketbridge.connectors.base import Connector, SandboxSpec
from ticketbridge.connectors.heyloyalty.config import (
    SANDBOX_API_SECRET,
    HeyloyaltyConfig,
    MappingOptions,
    MembersOptions,
)
from ticketbridge.connectors.heyloyalty.destination import MEMBERS, HeyloyaltyDestination
from ticketbridge.connectors.heyloyalty.sandbox import create_sandbox, sandbox_config

CONNECTOR = Connector(
    platform="heyloyalty",
    title="Heyloyalty",
    config=HeyloyaltyConfig,
    destination=HeyloyaltyDestination,
    sandbox=SandboxSpec(
        create_sandbox, sandbox_config, {"HEYLOYALTY_API_SECRET": SANDBOX_API_SECRET}
    ),
)

__all__ = [
    "CONNECTOR",
    "MEMBERS",
    "HeyloyaltyConfig",
    "HeyloyaltyDestination",
    "MappingOptions",
    "MembersOptions",
    "create_sandbox",
    "sandbox_config",
]
