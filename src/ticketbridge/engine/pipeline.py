"""run_sync(): read -> select -> plan -> write -> commit, one destination batch at a time.

Guarantees this module implements (DESIGN section 3):

* The checkpoint moves only in the same transaction as the ledger rows of the batch whose
  acknowledgement completes a source page, so a killed run resumes without loss, and the ledger
  makes the re-read part cost nothing at the destination.
* Pages flow from the source through a queue bounded in records (readahead.py): memory is
  bounded by the queue, not by the size of the data set or of the source's pages.
* A record that fails mapping, preparation or the destination is stored as a dead letter with
  its reason and retried at the end of the next run; a batch refused as a whole is split until
  the bad records are isolated.
* A run that runs out of rate budget keeps what it committed and ends ``partial``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
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
from ticketbridge.engine.readahead import ReadAhead
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
from ticketbridge.engine.windows import (
    BackfillState,
    advance_cursor,
    backfill_chunks,
    business_window,
    cursor_since,
)
from ticketbridge.errors import (
    ConnectorError,
    LeaseBusy,
    LeaseLost,
    MappingError,
    RateLimited,
    RecordRejected,
    TicketbridgeError,
)
from ticketbridge.model import Booking

log = structlog.get_logger("ticketbridge.engine")

_END = object()


@dataclass
class _Batch:
    ledger: list[LedgerRow] = field(default_factory=list)
    dead: list[DeadLetterIn] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


@dataclass
class _Read:
    """What the source gave for one destination batch: records, mapping failures, and the
    position of the last source page whose records are all in here (if any)."""

    records: list[Record] = field(default_factory=list)
    failures: list[Failed] = field(default_factory=list)
    position: dict[str, Any] | None = None
    positioned: bool = False

    @property
    def empty(self) -> bool:
        return not (self.records or self.failures or self.positioned)


def _was_sent(row: LedgerRow | None) -> bool:
    return row is not None and bool(row.dest_ids or row.hashes)


def _status_of(record: Record) -> str | None:
    return record.data.status.value if isinstance(record.data, Booking) else None


class _Run:
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
        self.run_id = 0
        self.checkpoint: dict[str, Any] = {}
        self.max_cursor: datetime | None = None
        self.plan_sample: list[dict[str, Any]] = []
        self._calls0 = (source.api_calls, destination.api_calls)

    # --- bookkeeping ---------------------------------------------------------------------
    def _calls(self) -> None:
        self.counters.source_calls = self.source.api_calls - self._calls0[0]
        self.counters.destination_calls = self.dest.api_calls - self._calls0[1]

    def _commit(self, batch: _Batch, checkpoint: dict[str, Any] | None) -> None:
        self._calls()
        if self.opts.dry_run:
            return
        assert self.lease is not None and self.keeper is not None
        self.keeper.check()
        self.store.commit_batch(
            self.lease,
            self.run_id,
            ledger=batch.ledger,
            dead_letters=batch.dead,
            resolved=batch.resolved,
            checkpoint=checkpoint,
            counters=self.counters,
        )
        if self.opts.on_progress:
            self.opts.on_progress(self.counters)

    # --- reading ---------------------------------------------------------------------------
    def _requests(self) -> Iterable[tuple[ReadRequest, str]]:
        """Read requests of this run, each with the checkpoint slot its position goes into."""
        spec, cp = self.spec, self.checkpoint
        base = ReadRequest(
            stream=spec.stream, options=spec.stream_options, page_size=spec.page_size
        )
        if self.opts.kind == "retry":
            return  # only the dead letters, in retry_dead_letters()
        if self.opts.kind == "backfill":
            yield from self._backfill_requests(base)
            return
        if spec.strategy == "window":
            assert spec.window is not None
            w = spec.window
            today = self.opts.today or datetime.now(UTC).date()
            window = business_window(w.field, w.start, w.end, today, w.timezone)
            yield replace(base, window=window, position=cp.get("position")), "position"
        elif spec.strategy == "cursor":
            stored = cp.get("cursor")
            since = cursor_since(datetime.fromisoformat(stored) if stored else None, spec.lookback)
            yield replace(base, since=since, position=cp.get("position")), "position"
        else:
            yield replace(base, position=cp.get("position")), "position"

    def _backfill_requests(self, base: ReadRequest) -> Iterable[tuple[ReadRequest, str]]:
        spec = self.spec
        start = spec.backfill_from
        if start is None:
            raise TicketbridgeError(f"sync {spec.name}: backfill needs a start date (--from)")
        end = self.opts.backfill_to or (self.opts.today or datetime.now(UTC).date())
        field_name = spec.window.field if spec.window else "updated_at"
        tz = spec.window.timezone if spec.window else "UTC"
        chunks = backfill_chunks(field_name, start, end, spec.backfill_chunk, tz)
        saved = self.checkpoint.get("backfill")
        state = BackfillState(chunks)
        if saved:
            old = BackfillState.from_json(saved)
            if old.same_range(chunks):
                state = old
        for index in range(state.index, len(chunks)):
            position = state.position if index == state.index else None
            state.index, state.position = index, position
            self.checkpoint["backfill"] = state.to_json()
            request = replace(base, window=chunks[index], position=position)
            if spec.strategy == "cursor":
                # A cursor source has no business-date window: the chunk bounds updated-at.
                request.since = chunks[index].start
            yield request, "backfill"
            state.index, state.position = index + 1, None
            self.checkpoint["backfill"] = state.to_json()
            self._commit(_Batch(), dict(self.checkpoint))
        self.checkpoint.pop("backfill", None)

    def _set_position(self, slot: str, position: dict[str, Any] | None) -> dict[str, Any]:
        if slot == "backfill":
            state = dict(self.checkpoint["backfill"])
            state["position"] = position
            self.checkpoint["backfill"] = state
        else:
            self.checkpoint["position"] = position
        return dict(self.checkpoint)

    async def _reads(self, request: ReadRequest) -> AsyncGenerator[_Read, None]:
        """The source's pages, read ahead while we write (up to ``read_ahead`` records,
        default two batches), regrouped into destination batches of up to ``batch_size``.

        A batch takes every page already waiting in the queue (it never waits for one while
        it holds records), so batches span source pages when the source is ahead and stay
        small when it is slow. A page's position goes with the batch holding its last
        record: the checkpoint then moves only once everything before it is acknowledged.
        """
        size = max(1, self.spec.batch_size)
        queue = ReadAhead(self.opts.read_ahead or 2 * size)

        async def produce() -> None:
            try:
                async for page in self.source.read(request):
                    await queue.put(page)
                queue.put_marker(_END)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                queue.put_marker(exc)

        pending = _Read()
        task = asyncio.create_task(produce())
        try:
            while True:
                if pending.empty:
                    item = await queue.get()
                elif queue.empty():
                    yield pending  # nothing more is ready: write what we have
                    pending = _Read()
                    continue
                else:
                    item = queue.get_nowait()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                page: Page = item
                self.counters.read += len(page.records) + len(page.failures)
                pending.failures.extend(page.failures)
                for record in self._selected(page):
                    if len(pending.records) >= size:
                        yield pending
                        pending = _Read()
                    pending.records.append(record)
                if page.position is not None:
                    pending.position, pending.positioned = page.position, True
                if len(pending.records) >= size:
                    yield pending
                    pending = _Read()
            if not pending.empty:
                yield pending
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _selected(self, page: Page) -> Iterable[Record]:
        for record in page.records:
            if record.cursor is not None:
                self.max_cursor = advance_cursor(self.max_cursor, record.cursor)
            if self.spec.is_skipped(record.key):
                self.counters.skipped_filter += 1
                continue
            yield record

    # --- processing ------------------------------------------------------------------------
    async def process_read(self, read: _Read, slot: str) -> None:
        """Write one batch and commit its outcomes with the checkpoint it completes."""
        batch = _Batch()
        for failure in read.failures:
            self._dead_mapping(batch, failure.key, failure.reason, failure.raw)
        await self.process(read.records, batch)
        checkpoint = self._set_position(slot, read.position) if read.positioned else None
        self._commit(batch, checkpoint)

    def _dead_mapping(self, batch: _Batch, key: str, reason: str, raw: dict[str, Any]) -> None:
        self.counters.rejected += 1
        batch.dead.append(DeadLetterIn(key=key, stage="mapping", reason=reason, raw=raw))
        batch.ledger.append(LedgerRow(key=key, last_outcome="rejected"))

    async def process(self, records: list[Record], batch: _Batch) -> None:
        """Prepare, plan, write and record the outcomes of up to one destination batch."""
        if not records:
            return
        ledger = self.store.get_ledger(self.spec.name, [r.key for r in records])
        planned: list[Planned] = []
        for record in records:
            previous = ledger.get(record.key)
            if self.spec.lacks_consent(record) and not _was_sent(previous):
                # Without consent a contact never reaches the destination; one already there
                # goes on being synced, so that withdrawing consent is written there too.
                self.counters.skipped_filter += 1
                continue
            try:
                mapped = self.dest.prepare(self.spec.obj, record, self.spec.object_options)
            except (RecordRejected, MappingError) as exc:
                reason = exc.message if isinstance(exc, RecordRejected) else exc.reason
                self._reject(batch, record, previous, "prepare", reason)
                continue
            p = plan_record(record, mapped, previous, self.spec.policy)
            planned.append(p)
            if p.decision == "unchanged":
                self.counters.unchanged += 1
            elif p.decision == "skipped_policy":
                self.counters.skipped_policy += 1
                batch.ledger.append(acknowledged_row(p, {}, _status_of(record)))
        changes = [p.change for p in planned if p.change is not None]
        if self.opts.dry_run:
            self._sample(planned)
            self.counters.created += sum(c.action == "create" for c in changes)
            self.counters.updated += sum(c.action == "update" for c in changes)
            return
        if not changes:
            return
        outcomes = {o.key: o for o in await self._write(changes)}
        for p in planned:
            if p.change is None:
                continue
            outcome = outcomes.get(p.record.key) or Outcome(
                p.record.key, ok=False, reason="destination returned no outcome for this record"
            )
            if outcome.ok:
                batch.ledger.append(acknowledged_row(p, outcome.dest_ids, _status_of(p.record)))
                if outcome.skipped:
                    self.counters.skipped_policy += 1
                elif p.change.action == "create":
                    self.counters.created += 1
                else:
                    self.counters.updated += 1
                if p.previous is not None and p.previous.last_outcome == "rejected":
                    batch.resolved.append(p.record.key)
            else:
                self._reject(batch, p.record, p.previous, "destination", outcome.reason or "")

    def _reject(
        self,
        batch: _Batch,
        record: Record,
        previous: LedgerRow | None,
        stage: Literal["prepare", "destination"],
        reason: str,
    ) -> None:
        self.counters.rejected += 1
        if self.opts.dry_run:
            self.plan_sample.append({"key": record.key, "action": "reject", "reason": reason})
            return
        batch.dead.append(
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
        batch.ledger.append(row)

    async def _write(self, changes: list[Change]) -> list[Outcome]:
        """Write; a batch refused as a whole is split in halves until the bad rows are alone."""
        try:
            return await self.dest.write(self.spec.obj, changes, self.spec.object_options)
        except RecordRejected as exc:
            if len(changes) == 1:
                return [Outcome(changes[0].key, ok=False, reason=exc.message)]
            mid = len(changes) // 2
            return await self._write(changes[:mid]) + await self._write(changes[mid:])

    def _sample(self, planned: list[Planned]) -> None:
        for p in planned:
            if len(self.plan_sample) >= self.opts.dry_run_sample:
                return
            if p.decision == "unchanged":
                continue
            entry: dict[str, Any] = {"key": p.record.key, "action": p.decision}
            if p.change is not None:
                entry["fields"] = p.change.fields
            entry["changed"] = sorted(p.changed)
            self.plan_sample.append(entry)

    async def retry_dead_letters(self) -> None:
        """Give every dead letter not already attempted in this run another try."""
        pending: list[Record] = []
        for dl in self.store.iter_retryable(self.spec.name, self.run_id):
            if self.spec.is_skipped(dl.key):
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
                    batch = _Batch()
                    self._dead_mapping(batch, dl.key, exc.reason, dl.raw)
                    self._commit(batch, None)
            if len(pending) >= self.spec.batch_size:
                await self._flush(pending)
                pending = []
        if pending:
            await self._flush(pending)

    async def _flush(self, records: list[Record]) -> None:
        batch = _Batch()
        await self.process(records, batch)
        self._commit(batch, None)

    def finalize_checkpoint(self) -> dict[str, Any]:
        cp = self.checkpoint
        if self.opts.kind != "backfill" and self.spec.strategy in ("window", "cursor", "full"):
            cp["position"] = None  # the next run reads its own window / cursor afresh
        if self.spec.strategy == "cursor" and self.opts.kind != "backfill":
            stored = cp.get("cursor")
            new = advance_cursor(
                datetime.fromisoformat(stored) if stored else None, self.max_cursor
            )
            cp["cursor"] = new.isoformat() if new else None
        return dict(cp)


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
        run.checkpoint = dict(store.get_checkpoint(spec.name) or {})
        error = await _body(run, retry=False)
        outcome = "ok" if error is None else "failed"
        return RunResult(spec.name, outcome, run.counters, None, error, run.plan_sample)
    keeper = LeaseKeeper(store, spec.name, opts.holder or default_holder(), ttl_s=opts.lease_ttl_s)
    try:
        lease = await keeper.__aenter__()
    except LeaseBusy:
        run_id = store.record_skipped_run(spec.name, "running")
        log.info("run.skipped", sync=spec.name, reason="running")
        return RunResult(spec.name, "skipped", RunCounters(), run_id, "skipped: running")
    run.lease, run.keeper = lease, keeper
    try:
        run.run_id = store.start_run(spec.name, opts.kind, lease)
        run.checkpoint = dict(store.get_checkpoint(spec.name) or {})
        error = await _body(run, retry=opts.kind != "backfill")
        outcome = _outcome(error)
        message = str(error) if error else None
        lease_for_finish: Lease | None = lease
        if isinstance(error, LeaseLost):
            lease_for_finish = None
        store.finish_run(run.run_id, lease_for_finish, outcome, run.counters, message)
        return RunResult(spec.name, outcome, run.counters, run.run_id, message)
    finally:
        await keeper.__aexit__(None, None, None)


def _outcome(error: BaseException | None) -> RunOutcome:
    if error is None:
        return "ok"
    if isinstance(error, RateLimited):
        return "partial"
    return "failed"


async def _body(run: _Run, *, retry: bool) -> Any:
    """The run itself; returns the error that ended it early, or None."""
    try:
        for request, slot in run._requests():
            # aclosing: a failed batch stops the read-ahead at once, not at loop shutdown.
            async with contextlib.aclosing(run._reads(request)) as reads:
                async for read in reads:
                    await run.process_read(read, slot)
        if retry and not run.opts.dry_run:
            await run.retry_dead_letters()
        if not run.opts.dry_run:
            run._commit(_Batch(), run.finalize_checkpoint())
        else:
            run._calls()
        return None
    except (ConnectorError, LeaseLost, TicketbridgeError) as exc:
        log.warning("run.stopped", sync=run.spec.name, error=str(exc), kind=type(exc).__name__)
        run._calls()
        if not run.opts.dry_run and not isinstance(exc, LeaseLost):
            with contextlib.suppress(TicketbridgeError):
                run._commit(_Batch(), None)  # keep the latest counters for `runs`
        return exc


def run_date(today: date | None) -> date:
    return today or datetime.now(UTC).date()


__all__ = ["Failed", "RunOptions", "RunResult", "SyncSpec", "Window", "run_sync"]
