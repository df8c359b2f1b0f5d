"""A source whose reading and mapping run in a child process (``source_process: true``).

A sync's event loop does two kinds of work: the source's decode and mapping, and the
destination's requests. On a large load each needs about half of one core, and one Python
process can use one. The child reads pages and maps them; this process receives finished
pages and writes them. Everything the guarantees rest on stays here: the checkpoint, the
ledger, the lease and the dead-letter remapping, so a killed child costs a re-read and nothing
else. Pages cross a pipe, which bounds how far the child runs ahead (the pipe's buffer, then
the engine's read-ahead).

The child is forked, not spawned: a spawned interpreter spends a second importing the
connector before its first request, which a small nightly sync would feel. It runs its own
event loop on a fresh thread (the forked main thread still owns the parent's), builds its own
connector from the connection settings, and leaves with ``os._exit`` so nothing it inherited
(database connections, the parent's files) is closed or flushed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import multiprocessing
import os
import pickle
import signal
import struct
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import structlog
from pydantic import BaseModel

from ticketbridge import cpu_policy, errors, logs, model
from ticketbridge.connectors.base import (
    CheckResult,
    Page,
    ReadRequest,
    Record,
    Source,
    StreamOptions,
    StreamSpec,
)

log = structlog.get_logger("ticketbridge.engine.reader_process")

SourceFactory = Callable[[], Source]
# Seconds the sources built by a factory have waited on rate budgets; called in the child.
BudgetWaits = Callable[[], float]


def _no_waits() -> float:
    return 0.0


# Messages from the child: pickled (kind, calls, budget waits, body, log lines). kind "page":
# body is a Page; "end": nothing; "error": a description of the exception (see _describe). The
# calls and the seconds waited on rate budgets are the child's totals so far. The log lines
# are what the child logged since its last message: they join the run's log tail here, so a
# run's log shows its source's retries wherever the source ran.
_PAGE, _END, _ERROR = "page", "end", "error"
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_new = object.__new__
_set = object.__setattr__
_PLAIN: dict[type, bool] = {}


def _model(cls: type[BaseModel], values: dict[str, Any], fields_set: set[str]) -> BaseModel:
    """A model as :class:`_Pickler` sent it: what ``BaseModel.__setstate__`` sets, without
    validating again (the child's object was valid)."""
    model = _new(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", fields_set)
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


def _plain(cls: type) -> bool:
    """Whether ``cls`` pickles as pydantic does (nothing of its own), so that :func:`_model`
    makes the same object."""
    plain = _PLAIN.get(cls)
    if plain is None:
        plain = _PLAIN[cls] = all(
            getattr(cls, name) is getattr(BaseModel, name)
            for name in ("__getstate__", "__setstate__", "__reduce__", "__reduce_ex__")
        )
    return plain


def _reduce_model(obj: BaseModel) -> Any:
    if obj.__pydantic_extra__ is None and obj.__pydantic_private__ is None:
        return _model, (type(obj), obj.__dict__, obj.__pydantic_fields_set__)
    return obj.__reduce_ex__(_PROTOCOL)


# The models pages are made of (connectors emit canonical records only).
_CANONICAL: tuple[type[BaseModel], ...] = (
    *(model.Booking, model.Contact, model.Consent, model.Event, model.FieldIssue),
    *(model.Money, model.Person, model.Ticket, model.Venue),
)


class _Pickler(pickle.Pickler):
    """Pickles a canonical model as its class, field values and set fields, instead of the
    state dict pydantic's ``__getstate__`` builds in Python for every model: a fifth less of
    the child's pickling per page, and no more unpickling here.

    Through ``dispatch_table``, looked up by exact type, rather than ``reducer_override``,
    which pickle calls for every object that is not a builtin: for the datetimes, enums and
    decimals of a page too, about 15 Python calls per booking where 9 are models. Any other
    model, and a subclass, pickles as pydantic pickles it."""

    dispatch_table = {cls: _reduce_model for cls in _CANONICAL if _plain(cls)}


def _encode(message: tuple[str, int, float, Any, list[str]]) -> bytes:
    out = io.BytesIO()
    _Pickler(out, _PROTOCOL).dump(message)
    return out.getvalue()


class ProcessSource:
    """Wraps ``inner`` (used here for everything but ``read``) and ``factory``, which builds
    the same source afresh in the child."""

    def __init__(
        self, inner: Source, factory: SourceFactory, budget_waits: BudgetWaits = _no_waits
    ) -> None:
        self.inner = inner
        self.factory = factory
        self.budget_waits = budget_waits
        self.platform = inner.platform
        self._child_calls = 0
        self._child_waited = 0.0
        self._early: tuple[ReadRequest, BaseProcess, Connection] | None = None

    def streams(self) -> list[StreamSpec]:
        return self.inner.streams()

    def remap(self, stream: str, raw: dict[str, Any], options: StreamOptions) -> Record:
        return self.inner.remap(stream, raw, options)

    async def check(self) -> list[CheckResult]:
        return await self.inner.check()

    @property
    def api_calls(self) -> int:
        return self.inner.api_calls + self._child_calls

    @property
    def child_budget_wait_s(self) -> float:
        """Seconds the reader processes of this source waited on its rate budget."""
        return self._child_waited

    async def aclose(self) -> None:
        self._end_early()
        await self.inner.aclose()

    def prestart(self, request: ReadRequest) -> None:
        """Fork the reader for ``request`` now, before the run has its lease and checkpoint,
        so that its first source call does not wait for the state store to open. A later
        ``read`` of an equal request takes this child over; any other request, or none
        (another run held the lease), ends it unused: a few pages read for nothing, nothing
        written, since only this process writes, and only under the lease."""
        self._end_early()
        self._early = (request, *self._fork(request))

    def _fork(self, request: ReadRequest) -> tuple[BaseProcess, Connection]:
        ctx = multiprocessing.get_context("fork")
        receiver, sender = ctx.Pipe(duplex=False)
        child = ctx.Process(
            target=_child_main,
            args=((self.factory, self.budget_waits), request, sender, receiver),
            name=f"ticketbridge-reader-{self.platform}",
            daemon=True,
        )
        child.start()
        sender.close()  # ours is the reading end only: EOF then means the child is gone
        return child, receiver

    def _end_early(self) -> None:
        if self._early is not None:
            _, child, receiver = self._early
            self._early = None
            child.kill()
            child.join(5)
            receiver.close()

    async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
        if self._early is not None and self._early[0] == request:
            _, child, receiver = self._early
            self._early = None
            log.debug("reader.prestarted", platform=self.platform)
        else:
            self._end_early()
            child, receiver = self._fork(request)
        loop = asyncio.get_running_loop()
        base, base_waited = self._child_calls, self._child_waited
        messages: _Messages | None = None
        try:
            messages = await _Messages.open(receiver)
            while True:
                try:
                    message = await messages.next()
                except EOFError:
                    await loop.run_in_executor(None, child.join, 5)
                    raise errors.RetryableError(
                        f"the reader process ended without finishing (exit code "
                        f"{child.exitcode}); the next run resumes from the checkpoint",
                        platform=self.platform,
                    ) from None
                kind, calls, waited, body, lines = _unpickle(message)
                self._child_calls = base + calls
                self._child_waited = base_waited + waited
                logs.extend_tail(lines)
                if kind == _PAGE:
                    yield body
                elif kind == _END:
                    return
                else:
                    raise _rebuild(body, self.platform)
        finally:
            if messages is not None:
                messages.close()
            _thaw()
            if child.is_alive():
                child.kill()  # stopped early (a failed batch, a lost lease): stop reading
            await loop.run_in_executor(None, child.join, 5)
            receiver.close()


# What this process reads of the pipe ahead of its use, beyond the pipe's own buffer: a
# little, so that the pipe still bounds how far the child runs ahead.
_READ_AHEAD = 32 * 1024


class _Messages:
    """The child's messages as ``Connection.recv_bytes`` reads them (multiprocessing's framing:
    a 4-byte big-endian length, or -1 and an 8-byte length), read by this process's event
    loop from a duplicate of the pipe's descriptor.

    Why not ``run_in_executor(None, receiver.recv_bytes)``: a thread per page (the executor's
    hand-over, the wake-ups, the GIL passed back and forth, the loop's self-pipe) cost more of
    this process's time than unpickling the page did.
    """

    def __init__(self, reader: asyncio.StreamReader, transport: asyncio.ReadTransport) -> None:
        self._reader = reader
        self._transport = transport

    @classmethod
    async def open(cls, conn: Connection) -> _Messages:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_READ_AHEAD, loop=loop)
        # The transport closes its own descriptor; ``conn`` keeps (and closes) the original.
        pipe = os.fdopen(os.dup(conn.fileno()), "rb", buffering=0)
        try:
            transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), pipe
            )
        except BaseException:
            pipe.close()
            raise
        return cls(reader, transport)

    async def next(self) -> bytes:
        """The next message; EOFError once the child's end is closed (as ``recv_bytes``)."""
        try:
            (size,) = struct.unpack("!i", await self._reader.readexactly(4))
            if size == -1:
                (size,) = struct.unpack("!Q", await self._reader.readexactly(8))
            return await self._reader.readexactly(size)
        except asyncio.IncompleteReadError:
            raise EOFError from None

    def close(self) -> None:
        self._transport.close()


def _unpickle(message: bytes) -> tuple[str, int, float, Any, list[str]]:
    """A message from the child. Unpickling a page makes tens of thousands of objects that
    all live on; with the collector on, each few hundred of them start a collection that
    walks every young object again, which was two thirds of the time taken here. Nothing
    made here can form a cycle the collector would need to find while it is off.

    Afterwards every tracked object is frozen (``gc.freeze``, which moves them out of the
    generations at no cost per object): otherwise the page's objects, still young when the
    collector is back on, were walked by the next young collection and again by each older
    one, about 7 % of the main process's CPU at 30k bookings. The page is freed by reference
    counting as usual; a cycle made before the freeze waits for :func:`_thaw`, at the end of
    the read."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        # Our own forked child on a pipe only we hold: the bytes are trusted.
        kind, calls, waited, body, lines = pickle.loads(message)  # noqa: S301
    finally:
        if enabled:
            gc.freeze()
            gc.enable()
    return kind, calls, waited, body, lines


def _thaw() -> None:
    """Objects frozen while reading go back to the oldest generation, where the collector
    finds any cycle among them again (a long-lived ``serve`` must not keep them forever)."""
    gc.unfreeze()


_Builders = tuple[SourceFactory, BudgetWaits]


def _child_main(
    builders: _Builders, request: ReadRequest, conn: Connection, theirs: Connection
) -> None:
    # The reading end came with the fork. Held here, it would keep the pipe open after the
    # parent dies, and a full pipe would then block this process forever instead of ending
    # it with EPIPE.
    theirs.close()
    _lower_priority()
    # The parent's event loop may have taken signals over; its wakeup socket is shared after
    # the fork, so a signal here must not be reported to the parent's loop.
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    # The forked main thread still holds the parent's running event loop: a new thread has
    # none, so asyncio.run works there.
    with ThreadPoolExecutor(max_workers=1) as thread:
        code = thread.submit(_child_run, builders, request, conn).result()
    conn.close()
    os._exit(code)


# How much lower the reader's CPU priority is than the run's (``nice``). The reader works
# ahead of the writer, with pages to spare in the pipe; the writer holds 8 requests in flight,
# and each answer it is slow to take up leaves a slot idle. With the reader at the same
# priority, it took the core the writer (or, on one machine, the API) was waiting for: at 50k
# bookings on two cores, interleaved runs did 4-16 % more bookings a second with +10 (5 of
# 5 pairs; bench/README.md). The reader still gets every cycle nobody else wants.
READER_NICE = 10


def _lower_priority() -> None:
    try:
        os.nice(READER_NICE)
    except OSError:  # a sandbox that forbids it: run at the same priority, as before
        log.debug("reader.nice_refused")
    # Batch work wherever the sync runs: ``serve`` and the Temporal worker do not ask for it
    # themselves (they answer requests). They and ``run`` reject a bad value before they
    # start; should one get here anyway, it costs the speed-up, never the sync.
    with contextlib.suppress(ValueError):
        cpu_policy.run_as_batch()


def _child_run(builders: _Builders, request: ReadRequest, conn: Connection) -> int:
    try:
        asyncio.run(_child_read(builders, request, conn))
    except (BrokenPipeError, ConnectionResetError):
        return 1  # the parent is gone; nobody to tell
    return 0


async def _child_read(builders: _Builders, request: ReadRequest, conn: Connection) -> None:
    factory, budget_waits = builders
    with logs.capture_tail() as tail:

        def send(kind: str, body: Any) -> None:
            lines = list(tail)
            tail.clear()
            waited = budget_waits()
            conn.send_bytes(_encode((kind, source.api_calls, waited, body, lines)))

        source = factory()
        try:
            async for page in source.read(request):
                send(_PAGE, page)
            send(_END, None)
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception as exc:  # handed to the parent, which raises it in the run
            send(_ERROR, _describe(exc))
        finally:
            await source.aclose()


def _describe(exc: Exception) -> dict[str, Any]:
    """What the parent needs to raise the same error: connector errors take keyword
    arguments, which pickle does not carry, so they travel as their fields."""
    if isinstance(exc, errors.ConnectorError):
        return {
            "type": type(exc).__name__,
            "message": exc.message,
            "platform": exc.platform,
            "status": exc.status,
            "request_id": exc.request_id,
            "retry_after": getattr(exc, "retry_after", None),
        }
    return {"type": type(exc).__name__, "message": str(exc)}


def _rebuild(desc: dict[str, Any], platform: str) -> Exception:
    cls = getattr(errors, str(desc["type"]), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.ConnectorError)):
        return errors.FatalError(
            f"{desc['type']} in the reader process: {desc['message']}", platform=platform
        )
    kw: dict[str, Any] = {
        "platform": desc["platform"],
        "status": desc["status"],
        "request_id": desc["request_id"],
    }
    if issubclass(cls, errors.RateLimited):
        kw["retry_after"] = desc["retry_after"]
    try:
        return cls(desc["message"], **kw)
    except TypeError:  # a subclass with a constructor of its own
        return errors.ConnectorError(desc["message"], **kw)
