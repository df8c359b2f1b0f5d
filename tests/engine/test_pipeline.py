"""The guarantees of DESIGN section 3, proven on test-only connectors and a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes import BASE, TODAY, MemoryDestination, MemorySource, Stored, booking, spec
from ticketbridge.connectors.base import Change, Mapped, ObjectOptions, Page, ReadRequest, Record
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.spec import RunOptions
from ticketbridge.engine.state.sql import SqlStateStore, open_store
from ticketbridge.errors import BudgetExhausted, FatalError, RetryableError
from ticketbridge.model import BookingStatus


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


async def test_first_run_creates_everything_and_second_run_costs_no_destination_call(
    store: SqlStateStore,
) -> None:
    source = MemorySource([booking(i) for i in range(35)])
    dest = MemoryDestination()
    first = await run_sync(store, spec(), source, dest)
    assert first.outcome == "ok"
    assert first.counters.created == 35
    assert len(dest.stored) == 35
    calls = dest.calls
    second = await run_sync(store, spec(), source, dest)
    assert second.counters.unchanged == 35
    assert second.counters.created == second.counters.updated == 0
    assert dest.calls == calls, "unchanged records must cost zero destination calls"
    assert second.counters.destination_calls == 0


async def test_only_changed_records_are_sent(store: SqlStateStore) -> None:
    books = [booking(i) for i in range(20)]
    source = MemorySource(books)
    dest = MemoryDestination()
    await run_sync(store, spec(), source, dest)
    source.bookings[3] = booking(3, party=5)
    source.bookings[7] = books[7].model_copy(update={"status": BookingStatus.CANCELLED})
    result = await run_sync(store, spec(), source, dest)
    assert result.counters.updated == 2
    assert result.counters.unchanged == 18
    assert dest.stored["booking:mem:R00003"].booking["party_size"] == 5
    assert dest.stored["booking:mem:R00007"].booking["status"] == "cancelled"
    assert sum(dest.writes.values()) == 22


async def test_resume_after_failure_mid_run_no_duplicate_no_loss(store: SqlStateStore) -> None:
    source = MemorySource([booking(i) for i in range(100)], page_size=10)
    dest = MemoryDestination()
    dest.fail_on_call[5] = RetryableError("connection reset", platform="memdest")
    result = await run_sync(store, spec(), source, dest)
    assert result.outcome == "failed"
    assert store.count_ledger("mem") == 40  # 4 batches committed before the failure
    checkpoint = store.get_checkpoint("mem")
    assert checkpoint is not None and checkpoint["position"] == {"next": 40}

    dest.fail_on_call.clear()
    again = await run_sync(store, spec(), source, dest)
    assert again.outcome == "ok"
    assert source.requests[-1].position == {"next": 40}, "the second run resumes at page 5"
    assert again.counters.read == 60
    assert len(dest.stored) == 100, "nothing is missing"
    assert max(dest.creates.values()) == 1, "nothing is created twice"


async def test_crash_after_destination_applied_batch_creates_no_duplicate(
    store: SqlStateStore,
) -> None:
    source = MemorySource([booking(i) for i in range(30)], page_size=10)
    dest = MemoryDestination()

    def crash_after_second(changes: list[Change]) -> None:
        if dest.calls == 2:
            # The platform applies the writes, then we die before the outcome is committed:
            # the worst moment, acknowledged there and unknown here.
            for c in changes:
                dest.stored.setdefault(c.key, Stored())
                dest.creates[c.key] += 1
            raise FatalError("process killed", platform="memdest")

    dest.before_write = crash_after_second
    first = await run_sync(store, spec(), source, dest)
    assert first.outcome == "failed"
    dest.before_write = None
    second = await run_sync(store, spec(), source, dest)
    assert second.outcome == "ok"
    assert len(dest.stored) == 30
    # The re-sent batch is an upsert on the match key: it updates, never duplicates.
    assert all(n == 1 for n in dest.creates.values())


async def test_second_start_is_skipped_and_recorded(store: SqlStateStore) -> None:
    source = MemorySource([booking(i) for i in range(5)])
    dest = MemoryDestination()
    dest.gate = asyncio.Event()
    first = asyncio.create_task(run_sync(store, spec(), source, dest))
    await asyncio.wait_for(dest.entered.wait(), 5)
    second = await run_sync(store, spec(), MemorySource([]), MemoryDestination())
    assert second.outcome == "skipped"
    assert second.exit_code == 0
    dest.gate.set()
    assert (await first).outcome == "ok"
    runs = store.list_runs("mem")
    assert sorted(r.outcome for r in runs) == ["ok", "skipped"]
    assert next(r for r in runs if r.outcome == "skipped").detail == {"reason": "running"}


async def test_stale_lease_holder_cannot_write(tmp_path: Path) -> None:
    clock = {"now": datetime(2026, 11, 22, tzinfo=UTC)}
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", clock=lambda: clock["now"])
    try:
        source = MemorySource([booking(i) for i in range(30)], page_size=10)
        dest = MemoryDestination()

        def steal(changes: list[Change]) -> None:
            if dest.calls == 2:
                # The first holder stalls past its lease; another process takes the sync.
                clock["now"] += timedelta(minutes=10)
                assert store.acquire_lease("mem", "other-host", 60) is not None

        dest.before_write = steal
        result = await run_sync(store, spec(), source, dest, RunOptions(lease_ttl_s=60))
        assert result.outcome == "failed"
        assert "lease" in (result.error or "").lower()
        # Only the first batch was committed; the stale holder's second batch was refused.
        assert store.count_ledger("mem") == 10
        assert store.get_checkpoint("mem") == {"position": {"next": 10}}
    finally:
        store.close()


async def test_rejected_record_is_dead_lettered_with_reason_and_retried(
    store: SqlStateStore,
) -> None:
    source = MemorySource([booking(i) for i in range(10)])
    dest = MemoryDestination()
    dest.reject = lambda c: "email: domain does not exist" if c.key.endswith("R00004") else None
    result = await run_sync(store, spec(), source, dest)
    assert result.counters.rejected == 1 and result.counters.created == 9
    letters = store.list_dead_letters("mem")
    assert [(d.key, d.reason) for d in letters] == [
        ("booking:mem:R00004", "email: domain does not exist")
    ]
    # Next run: the source no longer returns it (a cursor moved on) - it is retried anyway.
    dest.reject = lambda c: None
    source.bookings = source.bookings[5:]
    again = await run_sync(store, spec(), source, dest)
    assert again.counters.retried == 1
    assert "booking:mem:R00004" in dest.stored
    assert store.list_dead_letters("mem") == []
    assert store.list_dead_letters("mem", include_resolved=True)[0].resolved_at is not None


async def test_a_run_whose_every_record_is_refused_fails(store: SqlStateStore) -> None:
    """Issue 20.12: the destination took nothing, so the run is failed (exit 1), not ok;
    with some records through it is ok and counts the refusals."""
    source = MemorySource([booking(i) for i in range(5)])
    dest = MemoryDestination()
    dest.reject = lambda c: "422: The email must be a valid email address."
    result = await run_sync(store, spec(), source, dest)
    assert result.outcome == "failed" and result.exit_code == 1
    assert result.counters.rejected == 5 and result.counters.created == 0
    assert "the destination refused every record it was sent (5)" in (result.error or "")
    [run] = store.list_runs("mem")
    assert run.outcome == "failed" and "refused every record" in (run.error or "")

    # Some get through: ok, with the refusals counted (README: exit codes).
    dest.reject = lambda c: "refused" if c.key.endswith(("R00000", "R00001")) else None
    some = await run_sync(store, spec(), source, dest)
    assert some.outcome == "ok" and some.exit_code == 0
    assert (some.counters.created, some.counters.rejected) == (3, 2)

    # Nothing new read, the two dead letters refused again: not a failed run every 5 minutes.
    source.bookings = []
    again = await run_sync(store, spec(), source, dest)
    assert again.outcome == "ok" and (again.counters.retried, again.counters.rejected) == (2, 2)

    # Records the destination cannot take (prepare) or that cannot be mapped are bad data,
    # one record at a time: a run of only those is ok, with the refusals counted.
    source.bookings = [booking(9).model_copy(update={"contact": None})]
    bad_data = await run_sync(store, spec(), source, dest)
    assert bad_data.outcome == "ok" and bad_data.counters.rejected == 3


async def test_a_retry_of_selected_dead_letters_retries_only_those(
    store: SqlStateStore,
) -> None:
    source = MemorySource([booking(i) for i in range(10)])
    dest = MemoryDestination()
    bad = {"booking:mem:R00002", "booking:mem:R00004", "booking:mem:R00006"}
    dest.reject = lambda c: "refused" if c.key in bad else None
    await run_sync(store, spec(), source, dest)
    dest.reject = lambda c: None
    chosen = frozenset({"booking:mem:R00004"})
    result = await run_sync(
        store, spec(), source, dest, RunOptions(kind="retry", retry_keys=chosen)
    )
    assert result.counters.retried == 1 and result.counters.updated + result.counters.created == 1
    assert {d.key for d in store.list_dead_letters("mem")} == bad - chosen


async def test_a_run_stores_who_started_it_and_its_end_detail(store: SqlStateStore) -> None:
    started: list[int] = []
    opts = RunOptions(
        detail={"started_by": "ada (operator)"},
        on_start=started.append,
        on_finish=lambda: {"log": ["a line"]},
    )
    result = await run_sync(store, spec(), MemorySource([booking(1)]), MemoryDestination(), opts)
    assert started == [result.run_id]
    run = store.get_run(started[0])
    assert run is not None
    assert run.detail == {"started_by": "ada (operator)", "log": ["a line"]}


async def test_mapping_failure_is_dead_lettered_and_remapped_later(
    store: SqlStateStore,
) -> None:
    source = MemorySource([booking(i) for i in range(6)], failures={2: "attendance_at: bad"})
    dest = MemoryDestination()
    result = await run_sync(store, spec(), source, dest)
    assert result.counters.rejected == 1
    assert store.list_dead_letters("mem")[0].stage == "mapping"
    source.failures.clear()
    source.bookings = []  # only the retry can bring it now
    again = await run_sync(store, spec(), source, dest)
    assert again.counters.retried == 1 and again.counters.created == 1
    assert store.list_dead_letters("mem") == []


async def test_record_the_destination_cannot_take_is_rejected_before_any_call(
    store: SqlStateStore,
) -> None:
    books = [booking(i) for i in range(4)]
    books[1] = books[1].model_copy(update={"contact": None})
    dest = MemoryDestination()
    result = await run_sync(store, spec(), MemorySource(books), dest)
    assert result.counters.rejected == 1
    letter = store.list_dead_letters("mem")[0]
    assert letter.stage == "prepare" and "no email" in letter.reason
    assert letter.record is not None and letter.record["key"] == "booking:mem:R00001"


async def test_whole_batch_rejection_is_split_to_isolate_bad_records(
    store: SqlStateStore,
) -> None:
    source = MemorySource([booking(i) for i in range(16)], page_size=16)
    dest = MemoryDestination()
    dest.whole_batch = True
    bad = {"booking:mem:R00003", "booking:mem:R00012"}
    dest.reject = lambda c: "invalid row" if c.key in bad else None
    result = await run_sync(store, spec(batch_size=16), source, dest)
    assert result.counters.created == 14
    assert result.counters.rejected == 2
    assert {d.key for d in store.list_dead_letters("mem")} == bad
    assert set(dest.stored) == {f"booking:mem:R{i:05d}" for i in range(16)} - bad


async def test_budget_exhausted_ends_partial_and_keeps_progress(store: SqlStateStore) -> None:
    source = MemorySource([booking(i) for i in range(50)], page_size=10)
    dest = MemoryDestination()
    dest.fail_on_call[3] = BudgetExhausted("call budget used up", platform="memdest")
    result = await run_sync(store, spec(), source, dest)
    assert result.outcome == "partial"
    assert result.exit_code == 3
    assert store.count_ledger("mem") == 20
    dest.fail_on_call.clear()
    again = await run_sync(store, spec(), source, dest)
    assert again.outcome == "ok" and len(dest.stored) == 50
    assert max(dest.creates.values()) == 1


async def test_backfill_of_26_months_runs_in_3_chunks_and_resumes_in_its_chunk(
    store: SqlStateStore,
) -> None:
    start = date(2024, 1, 1)
    books = [
        booking(i, attendance=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=20 * i))
        for i in range(39)
    ]  # about 26 months of bookings
    source = MemorySource(books, page_size=5)
    dest = MemoryDestination()
    s = spec(strategy="window", backfill_from=start)
    opts = RunOptions(kind="backfill", backfill_to=date(2026, 3, 1))
    chunk_of_failure = {"window": None}
    writes_in_chunk = {"n": 0}

    def fail_in_second_chunk(changes: list[Change]) -> None:
        if len(source.requests) == 2:
            writes_in_chunk["n"] += 1
            if writes_in_chunk["n"] == 2:  # one page of chunk 2 done, then killed
                chunk_of_failure["window"] = source.requests[-1].window  # type: ignore[assignment]
                raise FatalError("killed", platform="memdest")

    dest.before_write = fail_in_second_chunk
    first = await run_sync(store, s, source, dest, opts)
    assert first.outcome == "failed"
    windows = [r.window for r in source.requests]
    assert len(windows) == 2 and windows[1] == chunk_of_failure["window"]
    dest.before_write = None
    second = await run_sync(store, s, source, dest, opts)
    assert second.outcome == "ok"
    resumed = source.requests[2]
    assert resumed.window == chunk_of_failure["window"], "resumes in the chunk it stopped in"
    assert resumed.position is not None, "and at the page it stopped at"
    all_windows = {r.window for r in source.requests}
    assert len(all_windows) == 3, "26 months with 1-year chunks is 3 chunks"
    assert len(dest.stored) == 39 and max(dest.creates.values()) == 1
    assert "backfill" not in (store.get_checkpoint("mem") or {})


async def test_window_reads_only_the_business_window(store: SqlStateStore) -> None:
    books = [
        booking(i, attendance=BASE + timedelta(days=d))
        for i, d in enumerate([-3, -1, 0, 15, 30, 31, 45])
    ]
    source = MemorySource(books)
    dest = MemoryDestination()
    await run_sync(store, spec(strategy="window"), source, dest, RunOptions(today=TODAY))
    sent = sorted(dest.stored)
    assert sent == [
        "booking:mem:R00001",
        "booking:mem:R00002",
        "booking:mem:R00003",
        "booking:mem:R00004",
    ]


async def test_cursor_never_goes_backwards_and_lookback_widens_query(
    store: SqlStateStore,
) -> None:
    t0 = datetime(2026, 11, 22, 10, tzinfo=UTC)
    books = [booking(i, updated=t0 + timedelta(minutes=i)) for i in range(10)]
    source = MemorySource(books)
    dest = MemoryDestination()
    s = spec(strategy="cursor", lookback=timedelta(minutes=5))
    await run_sync(store, s, source, dest)
    assert store.get_checkpoint("mem")["cursor"] == (t0 + timedelta(minutes=9)).isoformat()  # type: ignore[index]
    source.bookings = books[:3]  # a lookback re-read sees only older records
    await run_sync(store, s, source, dest)
    assert source.requests[-1].since == t0 + timedelta(minutes=4)
    assert store.get_checkpoint("mem")["cursor"] == (t0 + timedelta(minutes=9)).isoformat()  # type: ignore[index]


async def test_skip_list_and_consent_rule_filter_records(store: SqlStateStore) -> None:
    books = [booking(0), booking(1, email_opt_in=False), booking(2, email_opt_in=None), booking(3)]
    dest = MemoryDestination()
    s = spec(skip=frozenset({"R00003"}), require_consent="email")
    result = await run_sync(store, s, MemorySource(books), dest)
    assert sorted(dest.stored) == ["booking:mem:R00000"]
    assert result.counters.skipped_filter == 3


async def test_dry_run_prints_the_plan_and_writes_nothing(store: SqlStateStore) -> None:
    source = MemorySource([booking(i) for i in range(5)])
    dest = MemoryDestination()
    result = await run_sync(store, spec(), source, dest, RunOptions(dry_run=True))
    assert result.counters.created == 5
    assert dest.calls == 0
    assert store.count_ledger("mem") == 0 and store.list_runs("mem") == []
    assert result.plan[0]["action"] == "create"
    assert result.plan[0]["fields"]["booking"]["ref"] == "R00000"


async def test_a_failed_dry_run_reports_its_error_as_text(store: SqlStateStore) -> None:
    """Issue 20.4: a dry run handed the exception itself to the CLI, which crashed on it."""

    class Down(MemorySource):
        async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
            raise RetryableError("down for maintenance", platform="memsource", status=503)
            yield Page()  # pragma: no cover - makes this an async generator

    result = await run_sync(store, spec(), Down([]), MemoryDestination(), RunOptions(dry_run=True))
    assert result.outcome == "failed"
    assert isinstance(result.error, str) and "HTTP 503 down for maintenance" in result.error
    assert result.exit_code == 1


async def test_consent_withdrawn_after_sending_is_still_written(store: SqlStateStore) -> None:
    dest = MemoryDestination()
    s = spec(require_consent="email", policy={"contact": "always"})
    await run_sync(store, s, MemorySource([booking(0), booking(1, email_opt_in=False)]), dest)
    assert sorted(dest.stored) == ["booking:mem:R00000"], "no consent, never sent"
    withdrawn = await run_sync(
        store,
        s,
        MemorySource([booking(0, email_opt_in=False), booking(1, email_opt_in=False)]),
        dest,
    )
    assert withdrawn.counters.updated == 1 and withdrawn.counters.skipped_filter == 1
    assert dest.stored["booking:mem:R00000"].contact["allow_email"] is False
    assert "booking:mem:R00001" not in dest.stored


async def test_batches_span_source_pages_and_the_checkpoint_waits_for_whole_pages(
    store: SqlStateStore,
) -> None:
    """Pages of 3 become batches of 10; batch 1 ends inside page 4, so its commit moves the
    checkpoint to the end of page 3 only, and a crash after it loses nothing."""
    source = MemorySource([booking(i) for i in range(30)], page_size=3)
    dest = MemoryDestination()
    sizes: list[int] = []
    dest.before_write = lambda changes: sizes.append(len(changes))
    dest.fail_on_call[2] = RetryableError("connection reset", platform="memdest")
    first = await run_sync(store, spec(batch_size=10), source, dest)
    assert first.outcome == "failed"
    assert sizes == [10, 10], "one write per 10 records, not one per 3-record page"
    assert store.count_ledger("mem") == 10
    assert store.get_checkpoint("mem") == {"position": {"next": 9}}

    dest.fail_on_call.clear()
    sizes.clear()
    second = await run_sync(store, spec(batch_size=10), source, dest)
    assert second.outcome == "ok"
    assert source.requests[-1].position == {"next": 9}
    assert second.counters.unchanged == 1, "record 9 was acknowledged before the crash"
    assert sum(sizes) == 20
    assert len(dest.stored) == 30 and max(dest.creates.values()) == 1


class _TrickleSource(MemorySource):
    """Yields its second page only once the destination has written the first: an engine
    that waited for a full batch before writing would never finish."""

    def __init__(self, dest: MemoryDestination) -> None:
        super().__init__([booking(i) for i in range(6)], page_size=3)
        self.dest = dest

    async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
        n = 0
        async for page in super().read(request):
            if n:
                await self.dest.entered.wait()
            n += 1
            yield page


async def test_a_slow_source_never_holds_back_records_already_read(
    store: SqlStateStore,
) -> None:
    dest = MemoryDestination()
    sizes: list[int] = []
    dest.before_write = lambda changes: sizes.append(len(changes))
    result = await asyncio.wait_for(
        run_sync(store, spec(batch_size=100), _TrickleSource(dest), dest), 10
    )
    assert result.outcome == "ok"
    assert sizes == [3, 3]
    assert store.get_checkpoint("mem") == {"position": None}


class _CountingSource(MemorySource):
    """Counts the records it has handed over, to see how far the reader runs ahead."""

    def __init__(self, n: int, page_size: int) -> None:
        super().__init__([booking(i) for i in range(n)], page_size=page_size)
        self.handed = 0

    async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
        async for page in super().read(request):
            self.handed += len(page.records)
            yield page


@pytest.mark.parametrize(("read_ahead", "bound"), [(None, 150), (120, 250)])
async def test_read_ahead_is_bounded_in_records_not_pages(
    store: SqlStateStore, read_ahead: int | None, bound: int
) -> None:
    """Pages of 50 under batches of 10: while the first write hangs, the reader stops once
    the queue holds two batches' worth (or ``read_ahead``), whole pages rounding it up.
    Bounded in pages (8 of them), it would have read 500 of the 1,000 records."""
    source = _CountingSource(1000, page_size=50)
    dest = MemoryDestination()
    dest.gate = asyncio.Event()
    run = asyncio.create_task(
        run_sync(store, spec(batch_size=10), source, dest, RunOptions(read_ahead=read_ahead))
    )
    await asyncio.wait_for(dest.entered.wait(), 5)
    for _ in range(50):  # let the reader run as far as the queue allows
        await asyncio.sleep(0)
    # One page being cut into batches, the queue's pages, and one page waiting to go in.
    assert 50 < source.handed <= bound
    dest.gate.set()
    result = await asyncio.wait_for(run, 30)
    assert result.outcome == "ok"
    assert len(dest.stored) == 1000 and max(dest.creates.values()) == 1


class _PlanWatch(MemoryDestination):
    """Counts ``prepare`` calls (the plan) and can fail the plan of one record."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared = 0
        self.fail_prepare_of: str | None = None

    def prepare(self, obj: str, record: Record, options: ObjectOptions) -> Mapped:
        if record.key == self.fail_prepare_of:
            raise FatalError("the mapping configuration is broken", platform=self.platform)
        self.prepared += 1
        return super().prepare(obj, record, options)


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


async def test_the_next_batch_is_planned_while_one_is_written_and_commits_stay_in_order(
    store: SqlStateStore,
) -> None:
    """While the first batch's write hangs, the second batch is planned (not the third), no
    second write starts, and nothing is committed; released, every batch lands once."""
    dest = _PlanWatch()
    dest.gate = asyncio.Event()
    source = MemorySource([booking(i) for i in range(30)], page_size=10)
    run = asyncio.create_task(run_sync(store, spec(batch_size=10), source, dest))
    await asyncio.wait_for(dest.entered.wait(), 5)
    await _until(lambda: dest.prepared == 20)
    for _ in range(50):
        await asyncio.sleep(0)
    assert dest.prepared == 20, "one batch is planned ahead, no more"
    assert dest.calls == 1, "writes never overlap"
    assert store.count_ledger("mem") == 0
    dest.gate.set()
    result = await asyncio.wait_for(run, 10)
    assert result.outcome == "ok" and result.counters.created == 30
    assert dest.calls == 3 and max(dest.creates.values()) == 1
    assert store.get_checkpoint("mem") == {"position": None}


async def test_a_record_in_the_batch_being_written_is_planned_after_its_commit(
    store: SqlStateStore,
) -> None:
    """The source hands the same booking twice, in two batches: the second copy must be
    diffed against the ledger row the first one's commit writes, so it is an update (and,
    unchanged, nothing at all), never a second create."""
    dest = MemoryDestination()
    books = [booking(i) for i in range(10)] + [booking(3, party=7), booking(5)]
    source = MemorySource(books + [booking(i) for i in range(10, 18)], page_size=10)
    result = await run_sync(store, spec(batch_size=10), source, dest)
    assert result.outcome == "ok"
    assert max(dest.creates.values()) == 1
    assert result.counters.created == 18
    assert result.counters.updated == 1 and result.counters.unchanged == 1
    assert dest.stored["booking:mem:R00003"].booking["party_size"] == 7


async def test_an_error_planning_the_next_batch_still_commits_the_one_in_flight(
    store: SqlStateStore,
) -> None:
    dest = _PlanWatch()
    dest.fail_prepare_of = "booking:mem:R00014"
    dest.gate = asyncio.Event()
    source = MemorySource([booking(i) for i in range(30)], page_size=10)
    run = asyncio.create_task(run_sync(store, spec(batch_size=10), source, dest))
    await asyncio.wait_for(dest.entered.wait(), 5)
    for _ in range(50):
        await asyncio.sleep(0)
    dest.gate.set()
    result = await asyncio.wait_for(run, 10)
    assert result.outcome == "failed" and "mapping configuration" in (result.error or "")
    assert dest.calls == 1
    assert store.count_ledger("mem") == 10, "the batch written before the error is committed"
    assert store.get_checkpoint("mem") == {"position": {"next": 10}}


async def test_a_failed_write_is_the_error_even_when_the_next_plan_fails_too(
    store: SqlStateStore,
) -> None:
    dest = _PlanWatch()
    dest.fail_prepare_of = "booking:mem:R00014"
    dest.fail_on_call[1] = RetryableError("connection reset", platform="memdest")
    source = MemorySource([booking(i) for i in range(30)], page_size=10)
    result = await run_sync(store, spec(batch_size=10), source, dest)
    assert result.outcome == "failed" and "connection reset" in (result.error or "")
    assert dest.calls == 1 and store.count_ledger("mem") == 0
    assert store.get_checkpoint("mem") is None
