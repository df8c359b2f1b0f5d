"""State store: runs, leases, checkpoints, ledger and dead letters (SQLAlchemy Core).

``SqlStateStore`` and ``open_store`` are loaded on first use: the engine's own modules import
the contract (``state.base``) for its types, and SQLAlchemy, a fifth of ``ticketbridge run``'s
imports, should not come with them (bench/README.md, "Start-up").
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name in ("SqlStateStore", "open_store"):
        from ticketbridge.engine.state import sql

        return getattr(sql, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
