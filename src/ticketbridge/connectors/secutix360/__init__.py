"""SECUTIX 360 (S-360): destination of TIXNGO's mobile-ticket feedback.

Object ``ticket_feedback``: each ticket's TIXNGO status stored as its external status with
its mode, the wallet owner and the holder as cultural contacts (the holder the ticket's
beneficiary). See ``destination.py`` for the invariants and ``sandbox.py`` for the simulator.
"""

from ticketbridge.connectors.base import Connector, SandboxSpec
from ticketbridge.connectors.secutix360.config import (
    DEFAULT_STATUS_CODES,
    SANDBOX_PASSWORD,
    Secutix360Config,
    TicketFeedbackOptions,
)
from ticketbridge.connectors.secutix360.destination import (
    TICKET_FEEDBACK,
    Secutix360Destination,
)
from ticketbridge.connectors.secutix360.sandbox import create_sandbox, sandbox_config

CONNECTOR = Connector(
    platform="secutix360",
    title="SECUTIX 360 (TIXNGO feedback: external status, cultural contacts)",
    config=Secutix360Config,
    destination=Secutix360Destination,
    sandbox=SandboxSpec(
        create_sandbox, sandbox_config, {"S360_OPERATOR_PASSWORD": SANDBOX_PASSWORD}
    ),
)

__all__ = [
    "CONNECTOR",
    "DEFAULT_STATUS_CODES",
    "TICKET_FEEDBACK",
    "Secutix360Config",
    "Secutix360Destination",
    "TicketFeedbackOptions",
    "create_sandbox",
]
