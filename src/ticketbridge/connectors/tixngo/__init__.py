"""TIXNGO (the SECUTIX mobile-ticket wallet): a source of mobile-ticket status changes, read
from one organizer's diff (feedback) feed.

Registered through the ``ticketbridge.connectors`` entry point as ``CONNECTOR``. Its
``lease_scope`` is the organizer: however many syncs read one organizer (one per S-360
organization), only one of them runs at a time.
"""

from __future__ import annotations

from typing import Any

from ticketbridge.connectors.base import Connector, SandboxSpec
from ticketbridge.connectors.tixngo.config import TixngoConfig
from ticketbridge.connectors.tixngo.sandbox import ORGANIZER, SANDBOX_API_KEY, create_sandbox
from ticketbridge.connectors.tixngo.source import TICKET_UPDATES, TixngoSource
from ticketbridge.model.mobile_status import HISTORY_STATUSES, LIFECYCLE_STATUSES


def sandbox_config(url: str) -> dict[str, Any]:
    """Connection settings for a sandbox served at ``url`` (its origin, no path)."""
    return {
        "platform": "tixngo",
        "base_url": url.rstrip("/"),
        "organizer_email": ORGANIZER,
        "api_key": "${TIXNGO_API_KEY}",
    }


def _lease_scope(config: TixngoConfig) -> str:
    return config.lease_scope()


CONNECTOR = Connector(
    platform="tixngo",
    title="TIXNGO",
    config=TixngoConfig,
    source=TixngoSource,
    sandbox=SandboxSpec(create_sandbox, sandbox_config, {"TIXNGO_API_KEY": SANDBOX_API_KEY}),
    lease_scope=_lease_scope,
)

__all__ = [
    "CONNECTOR",
    "HISTORY_STATUSES",
    "LIFECYCLE_STATUSES",
    "TICKET_UPDATES",
    "TixngoConfig",
    "TixngoSource",
    "create_sandbox",
]
