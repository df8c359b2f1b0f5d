"""run_sync(): read -> select -> plan -> write -> commit, one destination batch at a time
(the next batch is planned while one is written).

Guarantees this module implements (DESIGN section 3):

* The checkpoint moves only in the same transaction as the ledger rows of the batch whose
  acknowledgement completes a source page, so a killed run resumes without loss, and the ledger
  makes the re-read part cost nothing at the destination. Which checkpoint a read moves is
  windows.py's (:class:`RunReads`); how pages become batches is readahead.py's.
* Pages flow from the source through a queue bounded in records (readahead.py): memory is
  bounded by the queue, not by the size of the data set or of the source's pages.
* A record that fails mapping, preparation or the destination is stored as a dead letter with
  its reason and retried at the end of the next run; a batch refused as a whole is split until
  the bad records are isolated.
* A run that runs out of rate budget keeps what it committed and ends ``partial``.
* A second start of a running sync is recorded as "skipped: running" and does nothing else;
  so is the start of a sync whose ``lease_key`` another sync's run holds (one run per TIXNGO
  organizer, however many syncs read it).
* A dry run reads, selects and plans as a run does, and writes nothing anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import structlog

from ticketbridge.connectors.base import (
    Change,
    Destination,
    Failed,
    Outcome,
    Page,
    ReadRequest,
    Record,
    Source,
    Window,
)
from ticketbridge.engine.leases import LeaseKeeper, default_holder
from ticketbridge.engine.plan import Planned, acknowledged_row, plan_record
from ticketbridge.engine.readahead import SourceBatch, source_batches
from ticketbridge.engine.records import record_from_json, record_to_json
from ticketbridge.engine.spec import RunOptions, RunResult, SyncSpec
from ticketbridge.engine.state.base import (
    DeadLetterIn,
    Lease,
    LedgerRow,
    RunCounters,
    RunOutcome,
    StateStore,
)
from ticketbridge.engine.windows import RunReads, advance_cursor
from ticketbridge.errors import (
    LeaseBusy,
    LeaseLost,
    MappingError,
    RateLimited,
    RecordRejected,
    TicketbridgeError,
)
from ticketbridge.model import Booking

log = structlog.get_logger("ticketbridge.engine")

# Records planned between two turns of the event loop while a batch is being written.
_PLAN_SLICE = 100


@dataclass
class BatchRows:
    """What one commit writes besides the checkpoint: ledger rows, dead letters, and the
    keys whose dead letters this batch resolved."""

    ledger: list[LedgerRow] = field(default_factory=list)
    dead: list[DeadLetterIn] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


def _was_sent(row: LedgerRow | None) -> bool:
    return row is not None and bool(row.dest_ids or row.hashes)


def _status_of(record: Record) -> str | None:
    return record.data.status.value if isinstance(record.data, Booking) else None


class _Run:
    """One run: each read request's batches are selected and planned, then written and
    committed in turn (``_write_batches``: the next batch is planned while one is written);
    then the dead letters are retried and the run's end committed."""

    reads: RunReads  # made by run(), from the checkpoint as it is when the run starts

    def __init__(
        self,
        store: StateStore,
        spec: SyncSpec,
        source: Source,
        destination: Destination,
        opts: RunOptions,
    ) -> None:
        self.store = store
        self.spec = spec
        self.source = source
        self.dest = destination
        self.opts = opts
        self.counters = RunCounters()
        self.lease: Lease | None = None
        self.keeper: LeaseKeeper | None = None
        self.shared: LeaseKeeper | None = None  # the lease shared with other syncs, if any
        self.run_id = 0
        self.max_cursor: datetime | None = None
        # Records read by this run that the destination itself refused (issue 20.12); dead
        # letters refused again are not counted: they failed before.
        self.refused = 0
        self._retrying = False
        self.plan_sample: list[dict[str, Any]] = []
        self.plan_omitted = 0
        self._calls0 = (source.api_calls, destination.api_calls)

    async def run(self) -> TicketbridgeError | None:
        """The run itself; returns the error that ended it early, or None."""
        try:
            checkpoint = dict(self.store.get_checkpoint(self.spec.name) or {})
            self.reads = RunReads(self.spec, self.opts, checkpoint)
            for request in self.reads.requests():
                # aclosing: a failed batch stops the read-ahead at once, not at loop shutdown.
                async with contextlib.aclosing(self._read(request)) as batches:
                    await self._write_batches(batches)
                done = self.reads.request_done()
                if done is not None:
                    self._commit(BatchRows(), done)
            if self.opts.kind != "backfill" and not self.opts.dry_run:
                await self.retry_dead_letters()
            if self.opts.dry_run:
                self._calls()
            else:
                self._commit(BatchRows(), self.reads.final(self.max_cursor))
            return None
        except TicketbridgeError as exc:
            log.warning("run.stopped", sync=self.spec.name, error=str(exc), kind=type(exc).__name__)
            self._calls()
            if not self.opts.dry_run and not isinstance(exc, LeaseLost):
                with contextlib.suppress(TicketbridgeError):
                    self._commit(BatchRows(), None)  # keep the latest counters for `runs`
            return exc

    # --- read ------------------------------------------------------------------------------
    def _read(self, request: ReadRequest) -> AsyncGenerator[SourceBatch, None]:
        return source_batches(
            self.source,
            request,
            size=self.spec.batch_size,
            read_ahead=self.opts.read_ahead,
            select=self._select_page,
        )

    def _select_page(self, page: Page) -> Iterator[Record]:
        """Counts the page as read and keeps the records the skip list lets through. Runs as
        the page is batched: skipped records take no room in a batch."""
        self.counters.read += len(page.records) + len(page.failures)
        for record in page.records:
            if record.cursor is not None:
                self.max_cursor = advance_cursor(self.max_cursor, record.cursor)
            if self.spec.is_skipped(record.key):
                self.counters.skipped_filter += 1
                continue
            yield record

    # --- the batches of one read, one planned while the one before is written ---------------
    async def _write_batches(self, batches: AsyncIterator[SourceBatch]) -> None:
        """Plan each batch (ledger, prepare, diff) while the batch before it is written, then
        write and commit it once that one is committed.

        Writes and commits stay strictly in order, one batch at a time, as the guarantees
        need; only the planning moves ahead, so that the destination is not idle while it
        runs (a twentieth of a large load's time was spent planning with nothing in flight).
        A batch holding a key of the batch in flight waits for that one's commit before it is
        planned: its diff needs the ledger row that commit writes. An error while planning,
        or reading, lets the batch in flight finish and commit first, as it would have
        without the overlap; if that batch fails too, its error is the one raised.
        """
        writing: asyncio.Task[None] | None = None
        in_flight: set[str] = set()
        try:
            async for batch in batches:
                keys = {r.key for r in batch.records}
                keys.update(f.key for f in batch.failures)
                if writing is not None and not in_flight.isdisjoint(keys):
                    task, writing = writing, None
                    await task
                rows = BatchRows()
                planned = await self._plan_read(batch, rows)
                if writing is not None:
                    task, writing = writing, None
                    await task
                writing = asyncio.create_task(self._finish_read(batch, planned, rows))
                in_flight = keys
            if writing is not None:
                task, writing = writing, None
                await task
        except asyncio.CancelledError:
            if writing is not None:
                writing.cancel()
                with contextlib.suppress(BaseException):
                    await writing
            raise
        except BaseException:
            if writing is not None:
                await writing  # its own error, if it fails, came first
            raise

    async def _plan_read(self, batch: SourceBatch, rows: BatchRows) -> list[Planned]:
        """The mapping failures of a batch into ``rows``, and the plan of its records."""
        failures = []
        for failure in batch.failures:
            if self.spec.is_skipped(failure.key):
                # Never processed, not even as a dead letter: whatever happens to it.
                self.counters.skipped_filter += 1
            else:
                failures.append(failure)
        if failures:
            sent = self.store.get_ledger(self.spec.name, [f.key for f in failures])
            for failure in failures:
                previous = sent.get(failure.key)
                self._dead_mapping(rows, failure.key, failure.reason, failure.raw, previous)
        return await self._plan_batch(batch.records, rows)

    async def _finish_read(
        self, batch: SourceBatch, planned: list[Planned], rows: BatchRows
    ) -> None:
        """Write a planned batch and commit its outcomes with the checkpoint it completes."""
        await self._apply(planned, rows)
        self._commit(rows, self.reads.at(batch.position) if batch.positioned else None)

    async def process(self, records: list[Record], rows: BatchRows) -> None:
        """Select, plan, write and record the outcomes of up to one destination batch."""
        await self._apply(await self._plan_batch(records, rows), rows)

    async def _plan_batch(self, records: list[Record], rows: BatchRows) -> list[Planned]:
        """Select and plan ``records`` against the ledger, a slice at a time: between slices
        the event loop answers the writes of the batch in flight and sends more."""
        if not records:
            return []
        ledger = self.store.get_ledger(self.spec.name, [r.key for r in records])
        planned: list[Planned] = []
        for start in range(0, len(records), _PLAN_SLICE):
            if start:
                await asyncio.sleep(0)
            part = records[start : start + _PLAN_SLICE]
            planned += self._plan(self._select(part, ledger), ledger, rows)
        return planned

    async def _apply(self, planned: list[Planned], rows: BatchRows) -> None:
        """Write the changes of a planned batch and record their outcomes in ``rows`` (a dry
        run only samples them)."""
        changes = [p.change for p in planned if p.change is not None]
        if self.opts.dry_run:
            self._sample(planned)
            self.counters.created += sum(c.action == "create" for c in changes)
            self.counters.updated += sum(c.action == "update" for c in changes)
            return
        if changes:
            self._record_outcomes(planned, await self._write(changes), rows)

    # --- select ------------------------------------------------------------------------------
    def _select(self, records: list[Record], ledger: Mapping[str, LedgerRow]) -> Iterable[Record]:
        """The records the consent rule lets through (the skip list went at read time)."""
        if self.spec.require_consent is None:
            return records
        return self._consented(records, ledger)

    def _consented(
        self, records: list[Record], ledger: Mapping[str, LedgerRow]
    ) -> Iterator[Record]:
        # Lazy: when a prepare error stops the run, only the records before it are counted.
        for record in records:
            # Without consent a contact never reaches the destination; one already there
            # goes on being synced, so that withdrawing consent is written there too.
            if self.spec.lacks_consent(record) and not _was_sent(ledger.get(record.key)):
                self.counters.skipped_filter += 1
                continue
            yield record

    # --- plan --------------------------------------------------------------------------------
    def _plan(
        self, records: Iterable[Record], ledger: Mapping[str, LedgerRow], rows: BatchRows
    ) -> list[Planned]:
        """Prepare each record and diff it against the ledger. Rows for the records that need
        no write (refused by prepare, skipped by the write policy) go into ``rows`` now."""
        planned: list[Planned] = []
        for record in records:
            previous = ledger.get(record.key)
            try:
                mapped = self.dest.prepare(self.spec.obj, record, self.spec.object_options)
            except (RecordRejected, MappingError) as exc:
                reason = exc.message if isinstance(exc, RecordRejected) else exc.reason
                self._reject(rows, record, previous, "prepare", reason)
                continue
            p = plan_record(record, mapped, previous, self.spec.policy)
            planned.append(p)
            if p.decision == "unchanged":
                self.counters.unchanged += 1
            elif p.decision == "skipped_policy":
                self.counters.skipped_policy += 1
                rows.ledger.append(acknowledged_row(p, {}, _status_of(record)))
        return planned

    def _sample(self, planned: list[Planned]) -> None:
        """Every planned create and update (and what the policy kept back) of a dry run, with
        the fields it would send; unchanged records are only counted."""
        for p in planned:
            if p.decision == "unchanged":
                continue
            entry: dict[str, Any] = {"key": p.record.key, "action": p.decision}
            if p.change is not None:
                entry["fields"] = p.change.fields
            entry["changed"] = sorted(p.changed)
            self._plan_entry(entry)

    def _plan_entry(self, entry: dict[str, Any]) -> None:
        # Bounded: a dry run of a huge load must not hold its whole plan; the counters
        # still count every record.
        if len(self.plan_sample) < self.opts.dry_run_sample:
            self.plan_sample.append(entry)
        else:
            self.plan_omitted += 1

    # --- write -------------------------------------------------------------------------------
    async def _write(self, changes: list[Change]) -> list[Outcome]:
        """Write; a batch refused as a whole is split in halves until the bad rows are alone."""
        try:
            return await self.dest.write(self.spec.obj, changes, self.spec.object_options)
        except RecordRejected as exc:
            if len(changes) == 1:
                return [Outcome(changes[0].key, ok=False, reason=exc.message)]
            mid = len(changes) // 2
            return await self._write(changes[:mid]) + await self._write(changes[mid:])

    def _record_outcomes(
        self, planned: list[Planned], outcomes: list[Outcome], rows: BatchRows
    ) -> None:
        """Ledger rows, counters and dead letters from the destination's outcomes."""
        by_key = {o.key: o for o in outcomes}
        for p in planned:
            if p.change is None:
                continue
            outcome = by_key.get(p.record.key) or Outcome(
                p.record.key, ok=False, reason="destination returned no outcome for this record"
            )
            if outcome.ok:
                rows.ledger.append(acknowledged_row(p, outcome.dest_ids, _status_of(p.record)))
                if outcome.skipped:
                    self.counters.skipped_policy += 1
                elif p.change.action == "create":
                    self.counters.created += 1
                else:
                    self.counters.updated += 1
                if p.previous is not None and p.previous.last_outcome == "rejected":
                    rows.resolved.append(p.record.key)
            else:
                self._reject(rows, p.record, p.previous, "destination", outcome.reason or "")

    # --- dead letters ------------------------------------------------------------------------
    def _dead_mapping(
        self,
        rows: BatchRows,
        key: str,
        reason: str,
        raw: dict[str, Any],
        previous: LedgerRow | None = None,
    ) -> None:
        self.counters.rejected += 1
        if self.opts.dry_run:
            self._plan_entry({"key": key, "action": "reject", "reason": reason})
        rows.dead.append(DeadLetterIn(key=key, stage="mapping", reason=reason, raw=raw))
        # As in _reject: a record sent before keeps its destination ids, so that its fixed
        # version (a later update of the same ticket) updates instead of re-creating.
        dest_ids = dict(previous.dest_ids) if previous else {}
        rows.ledger.append(LedgerRow(key=key, last_outcome="rejected", dest_ids=dest_ids))

    def _reject(
        self,
        rows: BatchRows,
        record: Record,
        previous: LedgerRow | None,
        stage: Literal["prepare", "destination"],
        reason: str,
    ) -> None:
        self.counters.rejected += 1
        self.refused += stage == "destination" and not self._retrying
        if self.opts.dry_run:
            self._plan_entry({"key": record.key, "action": "reject", "reason": reason})
            return
        rows.dead.append(
            DeadLetterIn(
                key=record.key,
                stage=stage,
                reason=reason,
                record=record_to_json(record),
            )
        )
        # Keep the ids of an earlier success: a fixed record updates instead of re-creating.
        row = LedgerRow(
            key=record.key,
            last_outcome="rejected",
            dest_ids=dict(previous.dest_ids) if previous else {},
            hashes={},
            status=_status_of(record),
        )
        rows.ledger.append(row)

    async def retry_dead_letters(self) -> None:
        """Give every dead letter not already attempted in this run another try."""
        self._retrying = True
        pending: list[Record] = []
        wanted = self.opts.retry_keys
        for dl in self.store.iter_retryable(self.spec.name, self.run_id):
            if self.spec.is_skipped(dl.key) or (wanted is not None and dl.key not in wanted):
                continue
            self.counters.retried += 1
            if dl.record is not None:
                pending.append(record_from_json(dl.record))
            elif dl.raw is not None:
                try:
                    pending.append(
                        self.source.remap(self.spec.stream, dl.raw, self.spec.stream_options)
                    )
                except MappingError as exc:
                    rows = BatchRows()
                    previous = self.store.get_ledger(self.spec.name, [dl.key]).get(dl.key)
                    self._dead_mapping(rows, dl.key, exc.reason, dl.raw, previous)
                    self._commit(rows, None)
            if len(pending) >= self.spec.batch_size:
                await self._flush(pending)
                pending = []
        if pending:
            await self._flush(pending)

    async def _flush(self, records: list[Record]) -> None:
        rows = BatchRows()
        await self.process(records, rows)
        self._commit(rows, None)

    # --- commit ------------------------------------------------------------------------------
    def _calls(self) -> None:
        self.counters.source_calls = self.source.api_calls - self._calls0[0]
        self.counters.destination_calls = self.dest.api_calls - self._calls0[1]

    def _commit(self, rows: BatchRows, checkpoint: dict[str, Any] | None) -> None:
        self._calls()
        if self.opts.dry_run:
            return
        assert self.lease is not None and self.keeper is not None
        self.keeper.check()
        if self.shared is not None:
            self.shared.check()
        self.store.commit_batch(
            self.lease,
            self.run_id,
            ledger=rows.ledger,
            dead_letters=rows.dead,
            resolved=rows.resolved,
            checkpoint=checkpoint,
            counters=self.counters,
        )
        if self.opts.on_progress:
            self.opts.on_progress(self.counters)


async def run_sync(
    store: StateStore,
    spec: SyncSpec,
    source: Source,
    destination: Destination,
    opts: RunOptions | None = None,
) -> RunResult:
    """One run of one sync. Never raises for data problems; returns the run's outcome."""
    opts = opts or RunOptions()
    spec = spec.with_overrides(opts)  # raises ValueError before anything is written
    run = _Run(store, spec, source, destination, opts)
    if opts.dry_run:
        error = await run.run()
        outcome = "ok" if error is None else "failed"
        message = str(error) if error is not None else None
        return RunResult(
            spec.name,
            outcome,
            run.counters,
            None,
            message,
            run.plan_sample,
            dry_run=True,
            plan_omitted=run.plan_omitted,
        )
    holder = opts.holder or default_holder()
    keeper = LeaseKeeper(store, spec.name, holder, ttl_s=opts.lease_ttl_s)
    shared = spec.shared_lease
    try:
        async with contextlib.AsyncExitStack() as held:
            if shared is not None:
                # First the lease this sync shares with the other readers of its source (one
                # run per TIXNGO organizer), then its own, which fences its state writes.
                run.shared = LeaseKeeper(store, shared, holder, ttl_s=opts.lease_ttl_s)
                await held.enter_async_context(run.shared)
            lease = await held.enter_async_context(keeper)
            run.lease, run.keeper = lease, keeper
            run.run_id = store.start_run(spec.name, opts.kind, lease, opts.detail)
            if opts.on_start is not None:
                opts.on_start(run.run_id)
            try:
                error = await run.run()
            except Exception as exc:
                # A bug, not a data problem: the traceback goes up, but the run is closed as
                # failed rather than left "running" until its lease expires.
                with contextlib.suppress(TicketbridgeError):
                    store.finish_run(
                        run.run_id, lease, "failed", run.counters, f"internal error: {exc!r}"
                    )
                raise
            outcome, message = _outcome(error, run.counters, run.refused)
            # A lost lease's token no longer passes the fence; the run is still recorded.
            fence = None if isinstance(error, LeaseLost) else lease
            detail = {**opts.detail, **(opts.on_finish() if opts.on_finish else {})}
            store.finish_run(run.run_id, fence, outcome, run.counters, message, detail)
            return RunResult(spec.name, outcome, run.counters, run.run_id, message, exception=error)
    except LeaseBusy as busy:
        # Only entering the lease raises LeaseBusy; the block's store writes raise LeaseLost.
        run_id = store.record_skipped_run(spec.name, "running", opts.detail)
        log.info("run.skipped", sync=spec.name, reason="running", lease=busy.sync)
        return RunResult(spec.name, "skipped", RunCounters(), run_id, "skipped: running")


def _outcome(
    error: BaseException | None, counters: RunCounters, refused: int
) -> tuple[RunOutcome, str | None]:
    """The run's outcome and its message.

    A run in which the destination refused every record it was sent wrote nothing and is
    ``failed`` like a run stopped by an error (DESIGN guarantee 5): the connection or the
    mapping is wrong, not a record. A run with some refusals, or whose only refusals are
    records that could not be mapped or prepared (bad source data, one record at a time),
    is ``ok``: its rejected count, the dead letters and the error e-mail say so, and the
    records are retried on every run, so a failing exit code would fire on every run until
    the data is fixed.
    """
    if error is not None:
        return ("partial" if isinstance(error, RateLimited) else "failed"), str(error)
    if destination_refused_everything(counters, refused):
        return "failed", (
            f"the destination refused every record it was sent ({refused}): nothing was "
            "written; see the reasons with `ticketbridge errors`"
        )
    return "ok", None


def destination_refused_everything(counters: RunCounters, refused: int) -> bool:
    """Records this run read were sent, and the destination took not one of them."""
    through = counters.created + counters.updated + counters.unchanged + counters.skipped_policy
    return refused > 0 and through == 0 and counters.read > counters.skipped_filter


__all__ = ["Failed", "RunOptions", "RunResult", "SyncSpec", "Window", "run_sync"]
