"""The state-store contract: what every backend (SQLite, PostgreSQL) must do.

Invariants every implementation keeps (the contract suite in tests/engine/state checks them):

* ``commit_batch`` is one transaction. It first checks the caller's fencing token against the
  lease row; if another holder has taken the lease since, nothing is written and
  :class:`~ticketbridge.errors.LeaseLost` is raised.
* A checkpoint only changes through ``commit_batch`` (or ``set_checkpoint`` /
  ``operator_set_checkpoint`` by an operator), so it can never run ahead of the ledger rows
  committed with it unless an operator puts it there, and then the run history says who.
* Lease tokens only grow. Acquiring an expired lease increments the token.
* Secrets are never passed in; nothing here stores credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

RunOutcome = Literal["running", "ok", "partial", "failed", "skipped", "crashed"]
# "dry-run" and "checkpoint" are actions recorded by ``record_action`` (they write no synced
# data): the run history says who planned or changed what, whatever started it.
RunKind = Literal["run", "backfill", "retry", "dry-run", "checkpoint"]
LedgerOutcome = Literal["ok", "rejected", "skipped"]


@dataclass
class RunCounters:
    """Per-run counts shown to users. ``add`` merges a batch's counts into the run's."""

    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    skipped_policy: int = 0
    skipped_filter: int = 0
    retried: int = 0
    source_calls: int = 0
    destination_calls: int = 0

    def add(self, other: RunCounters) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Lease:
    """Proof of holding a sync. ``token`` is the fencing token checked on every write."""

    sync: str
    holder: str
    token: int
    acquired_until: datetime


@dataclass
class LedgerRow:
    """What the destination last acknowledged for one record of one sync.

    ``hashes`` maps entity name (e.g. ``booking``, ``contact``) to the hash of that entity's
    mapped fields as last acknowledged; ``dest_ids`` maps entity name to the destination's id.
    """

    key: str
    hashes: dict[str, str] = field(default_factory=dict)
    dest_ids: dict[str, str] = field(default_factory=dict)
    last_outcome: LedgerOutcome = "ok"
    status: str | None = None
    updated_at: datetime | None = None


@dataclass
class DeadLetterIn:
    """A record that failed, as handed to ``commit_batch``."""

    key: str
    stage: Literal["mapping", "prepare", "destination"]
    reason: str
    record: Mapping[str, Any] | None = None  # canonical record as JSON, when there is one
    raw: Mapping[str, Any] | None = None  # platform payload, when mapping failed


@dataclass
class DeadLetter:
    key: str
    stage: str
    reason: str
    record: dict[str, Any] | None
    raw: dict[str, Any] | None
    attempts: int
    first_seen: datetime
    last_seen: datetime
    last_run_id: int | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class PassInstall:
    """What a wallet platform last reported about one pass it issued (install callbacks).

    ``project_id``, ``template_id`` and ``external_id`` name the pass (the external id is the
    ticket's link id, shared by its passes of every template); ``status`` is ``installed`` or
    ``uninstalled``; ``changed_at`` is when the platform says it happened (else when it was
    received). ``received_at`` is set by the store.
    """

    project_id: str
    template_id: str
    external_id: str
    status: Literal["installed", "uninstalled"]
    changed_at: datetime
    pass_id: str | None = None
    platform: str | None = None
    received_at: datetime | None = None


@dataclass
class RunRow:
    id: int
    sync: str
    kind: str
    outcome: str
    started_at: datetime
    finished_at: datetime | None
    counters: RunCounters
    error: str | None
    detail: dict[str, Any]


class StateStore(Protocol):
    """Persistent state of every sync: runs, leases, checkpoints, ledger, dead letters."""

    # --- leases (single flight) -------------------------------------------------------
    def acquire_lease(self, sync: str, holder: str, ttl_s: float) -> Lease | None:
        """Take the sync's lease if free or expired (token + 1); None while someone holds it."""

    def renew_lease(self, lease: Lease, ttl_s: float) -> Lease:
        """Extend the lease (heartbeat). Raises LeaseLost if the token is no longer current."""

    def release_lease(self, lease: Lease) -> None:
        """Give the lease up (expire it now) if still ours; a lost lease is not an error here."""

    def get_lease(self, sync: str) -> Lease | None:
        """The sync's lease row as it stands (held or expired), None if it never had one."""

    # --- runs --------------------------------------------------------------------------
    def start_run(
        self,
        sync: str,
        kind: RunKind,
        lease: Lease | None,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert a ``running`` run with ``detail`` (e.g. who started it)."""

    def record_skipped_run(
        self, sync: str, reason: str, detail: Mapping[str, Any] | None = None
    ) -> int:
        """Store a run that did not start (e.g. ``running``: the lease was held)."""

    def record_action(
        self,
        sync: str,
        kind: RunKind,
        outcome: RunOutcome,
        detail: Mapping[str, Any],
        counters: RunCounters | None = None,
        error: str | None = None,
    ) -> int:
        """Store, finished, an action that took no lease and wrote no synced data (a dry
        run's plan, an operator's checkpoint change), so the history shows it and who did it."""

    def finish_run(
        self,
        run_id: int,
        lease: Lease | None,
        outcome: RunOutcome,
        counters: RunCounters,
        error: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None: ...

    def list_runs(self, sync: str | None = None, limit: int = 20) -> list[RunRow]: ...

    def close_abandoned_runs(self, is_dead: Callable[[str], bool] | None = None) -> int:
        """Close as ``crashed`` every ``running`` run whose sync's lease is no longer held
        (expired, released, or its holder ``is_dead``): its process ended without finishing
        it. Returns how many. Taking a sync's lease closes that sync's own in passing."""

    def get_run(self, run_id: int) -> RunRow | None: ...

    # --- checkpoint --------------------------------------------------------------------
    def get_checkpoint(self, sync: str) -> dict[str, Any] | None: ...

    def set_checkpoint(self, sync: str, checkpoint: Mapping[str, Any] | None) -> None:
        """Operator override (e.g. set a pagination key by hand). Not fenced: use with care."""

    def operator_set_checkpoint(
        self, sync: str, checkpoint: Mapping[str, Any] | None, by: str, lease: Lease | None
    ) -> int:
        """An operator sets the checkpoint (None: start from scratch), in one transaction with
        a finished run of kind ``checkpoint`` whose detail is ``{"by", "old", "new"}``: who
        set it, and the value before and after (its time is the run's). Fenced when ``lease``
        (the sync's) is given. Returns the run's id."""

    # --- ledger ------------------------------------------------------------------------
    def get_ledger(self, sync: str, keys: Sequence[str]) -> dict[str, LedgerRow]: ...

    def count_ledger(self, sync: str) -> int: ...

    def iter_ledger(self, sync: str, batch: int = 1000) -> Iterator[LedgerRow]:
        """Every ledger row of ``sync`` in key order, read ``batch`` rows at a time (keyset
        paging: memory stays bounded, and rows committed meanwhile are seen or not, but no
        row is repeated or skipped)."""

    # --- the one write path of a running sync -----------------------------------------
    def commit_batch(
        self,
        lease: Lease,
        run_id: int,
        *,
        ledger: Sequence[LedgerRow] = (),
        dead_letters: Sequence[DeadLetterIn] = (),
        resolved: Sequence[str] = (),
        checkpoint: Mapping[str, Any] | None = None,
        counters: RunCounters | None = None,
    ) -> None:
        """One transaction: fencing check, ledger upserts, dead letters (insert or bump
        ``attempts``), resolve dead letters of ``resolved`` keys, checkpoint (when not None),
        and the run's running counters (when not None, replacing the stored ones)."""

    # --- pass installs (wallet callbacks; not fenced: no sync writes them) -------------
    def record_pass_install(self, report: PassInstall) -> bool:
        """Keep ``report`` as its pass's status unless the stored one is newer (a later
        ``changed_at``; on a tie the report received last wins, so callbacks delivered out
        of order never turn an uninstall back into an install). True if stored."""

    def get_pass_installs(
        self, project_id: str, external_ids: Sequence[str]
    ) -> dict[str, list[PassInstall]]:
        """The stored status of every pass (any template) of those external ids, by external
        id; ids with no report are missing."""

    # --- console sessions (web/auth.py; by the token's hash, never the token) ----------
    def start_console_session(self, token_hash: str, role: str) -> None:
        """Record a login; sessions that started more than a week ago are forgotten."""

    def console_session_open(self, token_hash: str) -> bool:
        """Whether that login exists and has not ended."""

    def end_console_sessions(self, token_hash: str | None = None) -> int:
        """End one session (None: every open one); returns how many ended."""

    # --- dead letters ------------------------------------------------------------------
    def list_dead_letters(self, sync: str, include_resolved: bool = False) -> list[DeadLetter]: ...

    def iter_retryable(self, sync: str, run_id: int, batch: int = 500) -> Iterator[DeadLetter]:
        """Unresolved dead letters not already attempted in ``run_id``, oldest first."""

    def close(self) -> None: ...
