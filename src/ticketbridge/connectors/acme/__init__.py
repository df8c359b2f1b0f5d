"""ACME Ticketing: the client, the connection config and a sandbox of the B2B API.

ACME is neither a sync source nor a destination here: ticketbridge's Tiqets Supplier API
(``ticketbridge.supplier``) sells ACME's events through it. See ``client.py`` for the calls and
``sandbox.py`` for the simulator.
"""

from ticketbridge.connectors.acme.client import AcmeClient
from ticketbridge.connectors.acme.config import (
    BASE_URLS,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    TIQETS_PERMISSIONS,
    AcmeConfig,
)
from ticketbridge.connectors.acme.sandbox import create_sandbox, sandbox_config, sandbox_mapping
from ticketbridge.connectors.base import Connector, SandboxSpec

# Neither a source nor a destination: the Supplier API (ticketbridge.supplier) drives ACME.
CONNECTOR = Connector(
    platform="acme",
    title="ACME Ticketing",
    config=AcmeConfig,
    sandbox=SandboxSpec(
        create_sandbox,
        sandbox_config,
        {"ACME_API_KEY": SANDBOX_API_KEY, "ACME_PASSWORD": SANDBOX_PASSWORD},
    ),
)

__all__ = [
    "BASE_URLS",
    "CONNECTOR",
    "TIQETS_PERMISSIONS",
    "AcmeClient",
    "AcmeConfig",
    "create_sandbox",
    "sandbox_config",
    "sandbox_mapping",
]
