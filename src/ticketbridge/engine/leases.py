"""Single flight for async runs: hold a sync's lease for the length of a block, with heartbeat.

::

    keeper = LeaseKeeper(store, sync, ttl_s=60)
    async with keeper as lease:  # LeaseBusy if the sync runs elsewhere
        run_id = store.start_run(sync, "run", lease)
        ...                      # every store.commit_batch(lease, ...) is fenced by lease.token
        keeper.check()           # optional: fail fast once a renewal found the lease taken

Invariants:

* Entering either holds the lease or raises :class:`LeaseBusy`; it never waits for it.
* While the block runs, the lease is renewed every ``ttl_s / 3`` (by default), so a block may
  run far longer than ``ttl_s``. Renewal talks to the store in a worker thread so a slow
  database never stalls the event loop (so the store must be thread-safe; SqlStateStore is).
* A renewal that finds the token no longer current records the :class:`LeaseLost` (``lost``,
  ``check()``) and stops renewing. It does not interrupt the block: the store's fencing already
  refuses the stale holder's next write, and ``check()`` lets long loops stop earlier.
  Other renewal errors (database briefly unreachable) are logged and retried at the next beat.
* Leaving the block releases the lease if it is still ours, whatever the block raised. A renewal
  in flight is awaited first, so it cannot extend the lease after the release.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from types import TracebackType

import structlog

from ticketbridge.engine.state.base import Lease, StateStore
from ticketbridge.errors import LeaseBusy, LeaseLost, StateError

__all__ = ["LeaseKeeper", "default_holder", "holder_is_dead"]

log = structlog.get_logger(__name__)


def default_holder() -> str:
    """``host:pid:random`` — unique per keeper, and tells an operator where a run lives."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(holder: str) -> bool:
    """True only when ``holder`` names a process of *this* host that no longer exists.

    A run killed with SIGKILL cannot release its lease; without this, the next run of that
    sync would be skipped as "running" until the lease expired. Holders on other hosts are
    never judged dead: only their lease expiry can free them.
    """
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class LeaseKeeper:
    """Async context manager holding ``sync``'s lease in ``store`` for the block's duration."""

    def __init__(
        self,
        store: StateStore,
        sync: str,
        holder: str | None = None,
        ttl_s: float = 60.0,
        *,
        renew_every_s: float | None = None,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be > 0")
        self.store = store
        self.sync = sync
        self.holder = holder or default_holder()
        self.ttl_s = ttl_s
        self.renew_every_s = ttl_s / 3 if renew_every_s is None else renew_every_s
        if not 0 < self.renew_every_s < ttl_s:
            raise ValueError("renew_every_s must be > 0 and < ttl_s")
        self._lease: Lease | None = None
        self._lost: LeaseLost | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def lease(self) -> Lease:
        """The lease as last acquired or renewed (same token, latest ``acquired_until``)."""
        if self._lease is None:
            raise RuntimeError("LeaseKeeper is not entered")
        return self._lease

    @property
    def lost(self) -> LeaseLost | None:
        """The LeaseLost a renewal ran into, if any."""
        return self._lost

    def check(self) -> None:
        """Raise the remembered LeaseLost, if a renewal found the lease taken."""
        if self._lost is not None:
            raise self._lost

    async def __aenter__(self) -> Lease:
        if self._task is not None:
            raise RuntimeError("LeaseKeeper is already entered")
        lease = await asyncio.to_thread(
            self.store.acquire_lease, self.sync, self.holder, self.ttl_s
        )
        if lease is None:
            lease = await asyncio.to_thread(self._take_over_from_dead_holder)
        if lease is None:
            raise LeaseBusy(self.sync)
        self._lease = lease
        self._lost = None
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._heartbeat(), name=f"lease-heartbeat:{self.sync}")
        return lease

    def _take_over_from_dead_holder(self) -> Lease | None:
        current = self.store.get_lease(self.sync)
        if current is None or not holder_is_dead(current.holder):
            return None
        log.warning("lease.takeover", sync=self.sync, dead_holder=current.holder)
        # Expiring it through the holder's own token keeps this race-safe: if a third process
        # took the lease meanwhile, the release matches nothing and our acquire fails.
        self.store.release_lease(current)
        return self.store.acquire_lease(self.sync, self.holder, self.ttl_s)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            # A stop signal, not task.cancel(): cancelling would abandon a renewal running in
            # its thread, which could then land after the release below and re-extend it.
            self._stop.set()
            await task
        if self._lease is None or self._lost is not None:
            return
        try:
            await asyncio.to_thread(self.store.release_lease, self._lease)
        except StateError as error:
            # Not fatal: the lease expires by itself after ttl_s.
            log.warning("lease_release_failed", sync=self.sync, error=str(error))

    async def _heartbeat(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), self.renew_every_s)
                return
            except TimeoutError:
                pass
            try:
                self._lease = await asyncio.to_thread(
                    self.store.renew_lease, self.lease, self.ttl_s
                )
            except LeaseLost as error:
                self._lost = error
                log.error("lease_lost", sync=self.sync, holder=self.holder, error=str(error))
                return
            except Exception as error:
                # Transient (database restart, network): the next beat tries again. If the
                # lease expires meanwhile and someone takes it, fencing stops our writes.
                log.warning("lease_renewal_failed", sync=self.sync, error=str(error))
