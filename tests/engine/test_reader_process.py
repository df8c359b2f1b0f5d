"""``source_process: true``: the source reads in a forked child; the guarantees stay here."""

from __future__ import annotations

import gc
import multiprocessing
import os
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from tests.fakes import MemoryDestination, MemorySource, booking, spec
from ticketbridge import logs
from ticketbridge.connectors.base import Page, ReadRequest, Record, StreamOptions
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.reader_process import (
    READER_NICE,
    ProcessSource,
    _encode,
    _Messages,
    _unpickle,
)
from ticketbridge.engine.state.sql import SqlStateStore, open_store
from ticketbridge.errors import FatalError, RateLimited, RetryableError
from ticketbridge.http.budget import RateBudget
from ticketbridge.model import Money, Ticket

REQUEST = ReadRequest(stream="bookings", options=StreamOptions())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def in_child(source: MemorySource) -> ProcessSource:
    # The factory runs in the forked child: the copy it returns reads there, and the
    # parent's ``source`` sees none of its calls.
    return ProcessSource(source, lambda: source)


class _FailingSource(MemorySource):
    def __init__(self, exc: BaseException | None = None, exit_code: int | None = None) -> None:
        super().__init__([booking(i) for i in range(30)], page_size=10)
        self.exc, self.exit_code = exc, exit_code

    async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
        async for page in super().read(request):
            yield page
            if self.exit_code is not None:
                os._exit(self.exit_code)  # the reader dies as a killed process would
            if self.exc is not None:
                raise self.exc


async def test_the_child_hands_over_every_page_with_its_position_and_calls() -> None:
    source = MemorySource([booking(i) for i in range(25)], page_size=10)
    wrapped = in_child(source)
    pages = [p async for p in wrapped.read(REQUEST)]
    assert [p.position for p in pages] == [{"next": 10}, {"next": 20}, {"next": 25}]
    assert [r.data for p in pages for r in p.records] == source.bookings
    assert source.calls == 0, "the parent's copy read nothing"
    assert wrapped.api_calls == 3, "the child's calls are counted"
    assert not multiprocessing.active_children()


class _Extra(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str


class _Private(BaseModel):
    name: str
    _seen: int = PrivateAttr(default=0)


def _models(value: BaseModel) -> list[BaseModel]:
    """``value`` and every model inside it, depth first."""
    out = [value]
    for item in value.__dict__.values():
        for inner in item if isinstance(item, list) else [item]:
            if isinstance(inner, BaseModel):
                out.extend(_models(inner))
    return out


def test_pages_cross_with_every_model_as_the_child_made_it() -> None:
    made = booking(1, first_name="Ada")
    made.tickets.append(Ticket(number="T1", price=Money(minor=500, currency="GBP")))
    private = _Private(name="p")
    private._seen = 3
    page = Page(records=[Record(key="k", kind="booking", data=made)], position={"next": 1})
    message = (page, _Extra(name="x", colour="red"), private)
    kind, calls, _, (back, extra, private_back), lines = _unpickle(
        _encode(("page", 7, 0.0, message, []))
    )
    assert (kind, calls, lines) == ("page", 7, [])
    assert back == page
    for sent, got in zip(_models(made), _models(back.records[0].data), strict=True):
        assert type(got) is type(sent)
        assert got.model_fields_set == sent.model_fields_set
        assert got.model_dump() == sent.model_dump()
    assert back.records[0].data.model_dump(exclude_unset=True) == made.model_dump(
        exclude_unset=True
    )
    with pytest.raises(ValidationError):  # frozen models stay frozen
        back.records[0].data.value.minor = 1
    # Models with extras or private state travel as pydantic pickles them.
    assert extra.model_extra == {"colour": "red"}
    assert private_back._seen == 3


async def test_pages_are_kept_out_of_the_collector_while_read_and_given_back_after() -> None:
    """Young collections walking each unpickled page were 7 % of the main process's CPU;
    the page is frozen instead, and the read gives every frozen object back at its end."""
    source = MemorySource([booking(i) for i in range(60)], page_size=20)
    gc.unfreeze()
    frozen = []
    async for page in in_child(source).read(REQUEST):
        # Everything the page holds is out of the generations the collector walks.
        frozen.append(gc.get_freeze_count())
        assert all(not _young(r.data) for r in page.records)
    assert len(frozen) == 3 and all(n > 0 for n in frozen)
    assert gc.get_freeze_count() == 0, "the read thawed what it froze"


def _young(value: object) -> bool:
    return any(value is obj for obj in gc.get_objects(generation=0))


async def test_the_reader_runs_below_the_writers_cpu_priority_as_batch_work() -> None:
    """The reader has pages to spare; the writer's requests in flight wait on every moment
    it is kept from a core. The child's priority is lowered, never this process's; and it
    is batch work (cpu_policy.py) even where the process that forked it is not (``serve``)."""
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    our_policy = os.sched_getscheduler(0)
    seen: list[tuple[int, int]] = []
    source = MemorySource([booking(i) for i in range(20)], page_size=10)
    async for _ in in_child(source).read(REQUEST):
        for child in multiprocessing.active_children():
            for thread in os.listdir(f"/proc/{child.pid}/task"):
                tid = int(thread)  # the reader's loop runs on a thread of its own
                seen.append((os.getpriority(os.PRIO_PROCESS, tid), os.sched_getscheduler(tid)))
    assert seen and set(seen) == {(min(ours + READER_NICE, 19), os.SCHED_BATCH)}
    assert os.getpriority(os.PRIO_PROCESS, 0) == ours
    assert os.sched_getscheduler(0) == our_policy


async def test_messages_are_read_whole_in_order_until_the_pipe_closes() -> None:
    receiver, sender = multiprocessing.Pipe(duplex=False)
    messages = await _Messages.open(receiver)
    sent = [b"small", b"x" * 300_000, b""]
    try:

        def write() -> None:
            for body in sent:
                sender.send_bytes(body)  # a large one goes as two writes, read in many
            # The framing for bodies over 2 GiB (-1, then an 8-byte length), kept short here.
            os.write(sender.fileno(), struct.pack("!i", -1) + struct.pack("!Q", 3) + b"big")
            sender.close()

        writer = threading.Thread(target=write)
        writer.start()
        got = [await messages.next() for _ in range(4)]
        with pytest.raises(EOFError):
            await messages.next()
        writer.join()
    finally:
        messages.close()
        receiver.close()
    assert got == [*sent, b"big"]


async def test_a_large_page_crosses_whole() -> None:
    source = MemorySource([booking(i) for i in range(1500)], page_size=1500)
    pages = [p async for p in in_child(source).read(REQUEST)]
    assert [r.data for p in pages for r in p.records] == source.bookings


async def test_a_run_through_the_child_resumes_without_duplicate_or_loss(
    store: SqlStateStore,
) -> None:
    source = MemorySource([booking(i) for i in range(100)], page_size=10)
    dest = MemoryDestination()
    dest.fail_on_call[5] = RetryableError("connection reset", platform="memdest")
    first = await run_sync(store, spec(), in_child(source), dest)
    assert first.outcome == "failed"
    assert store.get_checkpoint("mem") == {"position": {"next": 40}}
    assert not multiprocessing.active_children(), "a failed run stops its reader"

    dest.fail_on_call.clear()
    again = await run_sync(store, spec(), in_child(source), dest)
    assert again.outcome == "ok"
    assert again.counters.read == 60, "the second run resumes at page 5"
    assert len(dest.stored) == 100 and max(dest.creates.values()) == 1


async def test_a_connector_error_in_the_child_is_raised_here_with_its_fields() -> None:
    exc = RateLimited("slow down", platform="memsource", status=429, retry_after=7.0)
    wrapped = in_child(_FailingSource(exc=exc))
    got = []
    with pytest.raises(RateLimited) as raised:
        async for page in wrapped.read(REQUEST):
            got.append(page)
    assert len(got) == 1
    assert raised.value.status == 429 and raised.value.retry_after == 7.0
    assert str(raised.value) == str(exc)


async def test_any_other_error_in_the_child_fails_the_read_naming_its_type() -> None:
    wrapped = in_child(_FailingSource(exc=ValueError("bad shape")))
    with pytest.raises(FatalError, match="ValueError in the reader process: bad shape"):
        async for _ in wrapped.read(REQUEST):
            pass


async def test_a_reader_that_dies_fails_the_run_retryably_and_loses_nothing(
    store: SqlStateStore,
) -> None:
    dest = MemoryDestination()
    result = await run_sync(store, spec(), in_child(_FailingSource(exit_code=3)), dest)
    assert result.outcome == "failed"
    assert result.error is not None and "exit code 3" in result.error
    # Page 1 arrived before the end of the pipe: written, or not yet when the error came.
    checkpoint = store.get_checkpoint("mem")
    done = 10 if checkpoint == {"position": {"next": 10}} else 0
    assert done or checkpoint in (None, {"position": None})

    source = MemorySource([booking(i) for i in range(30)], page_size=10)
    again = await run_sync(store, spec(), in_child(source), dest)
    assert again.outcome == "ok" and again.counters.read == 30 - done
    assert len(dest.stored) == 30 and max(dest.creates.values()) == 1


class _LoggingSource(MemorySource):
    async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
        async for page in super().read(request):
            structlog.get_logger("ticketbridge.test").warning("source.said", page=len(page.records))
            yield page


async def test_what_the_child_logs_joins_the_runs_log_tail() -> None:
    # The console shows a run's log tail (its source's retries among it): a reader in a child
    # process must not take those lines away with it.
    logs.configure("INFO")
    source = _LoggingSource([booking(i) for i in range(15)], page_size=10)
    with logs.capture_tail() as tail:
        pages = [p async for p in in_child(source).read(REQUEST)]
    assert len(pages) == 2
    said = [line for line in tail if "source.said" in line]
    assert len(said) == 2 and "page=10" in said[0] and "page=5" in said[1]


def _children() -> set[int | None]:
    return {p.pid for p in multiprocessing.active_children()}


async def test_a_prestarted_reader_is_taken_over_by_the_same_read() -> None:
    # The runtime starts the reader before the store is open; the run's read of the same
    # request must use that child (its first call already made), not fork a second one.
    source = MemorySource([booking(i) for i in range(25)], page_size=10)
    wrapped = in_child(source)
    wrapped.prestart(REQUEST)
    early = _children()
    assert len(early) == 1
    pages = []
    async for page in wrapped.read(REQUEST):
        assert _children() == early, "no second reader"
        pages.append(page)
    assert [r.data for p in pages for r in p.records] == source.bookings
    assert wrapped.api_calls == 3
    assert not multiprocessing.active_children()


async def test_a_prestarted_reader_for_another_request_is_ended_and_the_read_is_right() -> None:
    # The checkpoint moved between the early look and the run's own (another run finished in
    # between): the run reads from where the store says, and the early reader is gone.
    source = MemorySource([booking(i) for i in range(25)], page_size=10)
    wrapped = in_child(source)
    wrapped.prestart(REQUEST)
    early = _children()
    resumed = ReadRequest(stream="bookings", options=StreamOptions(), position={"next": 20})
    pages = []
    async for page in wrapped.read(resumed):
        assert not early & _children(), "the early reader was ended"
        pages.append(page)
    assert [r.data for p in pages for r in p.records] == source.bookings[20:]
    assert wrapped.api_calls == 1
    assert not multiprocessing.active_children()


async def test_a_prestarted_reader_never_read_ends_with_the_source() -> None:
    # Another run held the lease: the run is skipped and reads nothing.
    wrapped = in_child(MemorySource([booking(i) for i in range(25)], page_size=10))
    wrapped.prestart(REQUEST)
    assert multiprocessing.active_children()
    await wrapped.aclose()
    assert not multiprocessing.active_children()


class _Budgeted(MemorySource):
    """Takes a token of its rate budget before each page, as an API client does per call."""

    def __init__(self, budget: RateBudget) -> None:
        super().__init__([booking(i) for i in range(50)], page_size=10)
        self.budget = budget

    async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
        async for page in super().read(request):
            await self.budget.acquire()
            yield page


async def test_the_childs_rate_budget_waits_are_counted_here() -> None:
    built: list[RateBudget] = []

    def build() -> _Budgeted:
        built.append(RateBudget(rate_per_second=25))
        return _Budgeted(built[-1])

    def waited() -> float:
        return sum(b.waited_s for b in built)

    wrapped = ProcessSource(_Budgeted(RateBudget()), build, waited)
    pages = [p async for p in wrapped.read(REQUEST)]
    assert len(pages) == 5
    assert not built, "the budget was the child's"
    # Four of the five tokens came 1/25 s after the one before.
    assert 0.12 <= wrapped.child_budget_wait_s <= 0.5
    again = [p async for p in wrapped.read(REQUEST)]
    assert len(again) == 5
    assert 0.28 <= wrapped.child_budget_wait_s <= 1.0, "a second read adds its own"
