"""State store: runs, leases, checkpoints, ledger and dead letters (SQLAlchemy Core)."""

from ticketbridge.engine.state.base import (
    DeadLetter,
    DeadLetterIn,
    Lease,
    LedgerRow,
    PassInstall,
    RunCounters,
    RunRow,
    StateStore,
)
from ticketbridge.engine.state.sql import SqlStateStore, open_store

__all__ = [
    "DeadLetter",
    "DeadLetterIn",
    "Lease",
    "LedgerRow",
    "PassInstall",
    "RunCounters",
    "RunRow",
    "SqlStateStore",
    "StateStore",
    "open_store",
]
