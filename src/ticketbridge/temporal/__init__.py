"""Scale-out on Temporal: many venues' syncs on many workers, one run per sync cluster-wide.

An optional extra (``pip install 'ticketbridge[temporal]'``, the ``temporalio`` SDK). Nothing
else of the package imports this one at import time, so the local scheduler and ``ticketbridge
run`` work without it; the CLI reaches the commands through :func:`load_commands`, which says how
to install the extra when it is missing.

* ``ids``        workflow, schedule and lease-holder ids (one run per sync)
* ``messages``   what workflows and activities exchange
* ``workflows``  SyncRun, ScheduledSyncRun, SkippedRun
* ``activities`` the run activity: the engine's run loop, heartbeating its position
* ``budget``     a rated account's budget shared by every worker through PostgreSQL
* ``cluster``    connecting (address, namespace; TLS and API key from the environment)
* ``worker``     ``ticketbridge worker``; ``schedules`` ``ticketbridge schedules apply``
* ``commands``   the bodies of the CLI commands
"""

from __future__ import annotations

from types import ModuleType

from ticketbridge.errors import ConfigError

__all__ = ["EXTRA", "load_commands"]

EXTRA = "pip install 'ticketbridge[temporal]'"


def load_commands() -> ModuleType:
    """``ticketbridge.temporal.commands``, or a ConfigError saying how to get the extra."""
    try:
        import temporalio  # noqa: F401
    except ModuleNotFoundError:
        raise ConfigError(
            f"Temporal support is not installed: {EXTRA} (the temporalio SDK)"
        ) from None
    from ticketbridge.temporal import commands as found

    return found
