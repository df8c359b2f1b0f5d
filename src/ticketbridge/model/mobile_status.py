"""TIXNGO's mobile-ticket statuses (platforms.md 6.5 [DOC 4.1]), the vocabulary of
``Ticket.mobile_status``: TIXNGO emits them and SECUTIX 360 stores them as the external status,
in one of two modes. Here once, because neither connector may import the other."""

from __future__ import annotations

from typing import Literal

StatusMode = Literal["lifecycle", "history"]

LIFECYCLE_STATUSES = (
    "INJECTED",
    "DOWNLOADED",
    "ASSIGNED",
    "CONTROLLED",
    "PENDING_TRANSFER",
    "FAILURE_TRANSFER",
    "TRANSFERRED",
    "BT_ACTIVATED",
    "MANUAL_ACTIVATED",
    "OFFLINE_ACTIVATED",
    "ONLINE_ACTIVATED",
    "DELETION_PENDING",
    "DELETED",
    "ACTIVATED",
    "DEACTIVATED",
    "DEFAULT",
    "INVALID",
    "PENDING",
    "FAILURE",
)
"""The current list (S-360's ``TIXNGO_LIFECYCLE_MODE`` lifecycle)."""

HISTORY_STATUSES = (
    "INJECTED",
    "RECEIVED",
    "ACTIVATED",
    "TRANSFER_PENDING",
    "TRANSFERRED",
    "CONTROLLED",
    "DELETION_PENDING",
    "DELETED",
)
"""The legacy list (history mode)."""

STATUSES: dict[str, frozenset[str]] = {
    "lifecycle": frozenset(LIFECYCLE_STATUSES),
    "history": frozenset(HISTORY_STATUSES),
}
