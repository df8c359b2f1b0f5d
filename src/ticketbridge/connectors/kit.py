"""The connector kit: the plumbing every source and destination shares.

A connector folder then holds only what is particular to its platform: the config, the typed
client, the payload schemas and mapping, the read or write logic, and the sandbox.

* :class:`SourceKit` / :class:`DestinationKit` own one platform client for the life of the
  source or destination (one run): they validate the connection config, count the client's
  calls (``api_calls``, which the engine turns into a run's source and destination calls),
  close it, list the streams or objects the class declares, and refuse a stream or object
  name it does not have, naming those it has.
* :class:`ClientKit` is the base of a platform's typed client: the ApiClients it owns, their
  call count and their closing.
* :func:`connection_client` builds an ``ApiClient`` with the connection's timeout, retries and
  the rate budget of its account.
* :func:`run_bounded` / :func:`gather_or_cancel` run a batch's requests concurrently and, on
  the first failure, cancel the rest instead of leaving them running after the run failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, cast

from pydantic import BaseModel

from ticketbridge.connectors.base import ConnectionConfig, ObjectSpec, StreamSpec
from ticketbridge.errors import ConfigError

if TYPE_CHECKING:
    from ticketbridge.http.auth import Auth
    from ticketbridge.http.client import ApiClient
    from ticketbridge.http.context import HttpContext

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741


class PlatformClient(Protocol):
    """What the kit needs of a connector's client (each wraps an ``http.ApiClient``)."""

    @property
    def calls(self) -> int: ...

    async def aclose(self) -> None: ...


def coerce_options(options: BaseModel | Mapping[str, Any] | None, model: type[M]) -> M:
    """The engine hands options (and configs) as the model it validated; tests and callers may
    pass a dict or a base options object. Always returns ``model``, validated."""
    if isinstance(options, model):
        return options
    data = options.model_dump() if isinstance(options, BaseModel) else dict(options or {})
    return model.model_validate(data)


def expect_name(platform: str, kind: str, name: str, known: Sequence[str]) -> None:
    """Refuse a stream/object name the connector does not have, naming the ones it has."""
    if name not in known:
        raise ConfigError(f"{platform} has no {kind} {name!r} ({kind}s: {', '.join(known)})")


def connection_client(
    cfg: ConnectionConfig,
    ctx: HttpContext,
    *,
    platform: str,
    account: str,
    auth: Auth | None,
    base_url: str | None = None,
    max_retries: int | None = None,
    timeout_s: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> ApiClient:
    """An ApiClient with the connection's timeout and retries, and the rate budget of
    ``account``: one bucket per account, shared by every sync that calls it (DESIGN 3.6)."""
    # Imported here: the kit is loaded with every connector package, but only an opened
    # connection needs the HTTP stack.
    from ticketbridge.http.client import ApiClient
    from ticketbridge.http.retry import RetryPolicy

    budget = ctx.budget(
        account,
        rate_per_second=cfg.rate_per_second,
        burst=cfg.rate_burst,
        max_calls=cfg.max_calls_per_run,
    )
    return ApiClient(
        platform=platform,
        base_url=base_url or cfg.base_url,
        context=ctx,
        auth=auth,
        timeout_s=cfg.timeout_s if timeout_s is None else timeout_s,
        retry=RetryPolicy(max_retries=cfg.max_retries if max_retries is None else max_retries),
        budget=budget,
        headers=headers,
        max_response_bytes=round(cfg.max_response_mb * 1_000_000),
    )


CfgT = TypeVar("CfgT", bound=ConnectionConfig)


def utc_now() -> datetime:
    return datetime.now(UTC)


class ClientKit:
    """Base of a platform client: owns the connection's ApiClients (one per host it calls),
    counts their calls, retries included, and closes them all."""

    def __init__(self) -> None:
        self._apis: list[ApiClient] = []

    def own(self, api: ApiClient) -> ApiClient:
        self._apis.append(api)
        return api

    @property
    def calls(self) -> int:
        return sum(api.calls for api in self._apis)

    async def aclose(self) -> None:
        for api in self._apis:
            await api.aclose()


class _ClientOwner(ABC, Generic[CfgT]):
    """Validates the connection config, owns ``client`` until :meth:`aclose`, and counts its
    calls (``api_calls``). A subclass names its config model and opens its client; one that
    keeps per-run state extends ``__init__`` and calls this one first."""

    platform: str
    config_model: ClassVar[type[ConnectionConfig]]

    def __init__(
        self,
        config: CfgT | Mapping[str, Any],
        context: HttpContext,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = cast(CfgT, coerce_options(config, self.config_model))
        self.client: PlatformClient = self.open_client(self.config, context)
        self.now = now or utc_now  # injectable for tests

    @abstractmethod
    def open_client(self, config: CfgT, context: HttpContext) -> PlatformClient:
        """The platform's client for this connection (called once, by ``__init__``)."""

    @property
    def api_calls(self) -> int:
        return self.client.calls

    async def aclose(self) -> None:
        await self.client.aclose()


class SourceKit(_ClientOwner[CfgT]):
    """Base of a source: declare ``platform``, ``config_model`` and ``STREAMS``, open the
    client; implement ``read``, ``remap`` and ``check``."""

    STREAMS: ClassVar[tuple[StreamSpec, ...]]

    def streams(self) -> list[StreamSpec]:
        return list(self.STREAMS)

    def stream_spec(self, name: str) -> StreamSpec:
        """The stream called ``name``; one this source lacks is a ConfigError naming those it
        has."""
        expect_name(self.platform, "stream", name, [s.name for s in self.STREAMS])
        return next(s for s in self.STREAMS if s.name == name)

    def stream_options(self, stream: str, options: object, model: type[M]) -> M:
        """``options`` of ``stream`` as ``model`` (the stream checked as by :meth:`stream_spec`)."""
        self.stream_spec(stream)
        return coerce_options(cast(BaseModel | Mapping[str, Any] | None, options), model)


class DestinationKit(_ClientOwner[CfgT]):
    """Base of a destination: declare ``platform``, ``config_model`` and ``OBJECTS``, open
    the client; implement ``prepare``, ``write`` and ``check``."""

    OBJECTS: ClassVar[tuple[ObjectSpec, ...]]

    def objects(self) -> list[ObjectSpec]:
        return list(self.OBJECTS)

    def object_spec(self, name: str) -> ObjectSpec:
        """The object called ``name``; one this destination lacks is a ConfigError naming
        those it has."""
        expect_name(self.platform, "object", name, [o.name for o in self.OBJECTS])
        return next(o for o in self.OBJECTS if o.name == name)

    def object_options(self, obj: str, options: object, model: type[M]) -> M:
        """``options`` of ``obj`` as ``model`` (the object checked as by :meth:`object_spec`)."""
        self.object_spec(obj)
        return coerce_options(cast(BaseModel | Mapping[str, Any] | None, options), model)


async def gather_or_cancel(coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """All results in order, or the first exception with every other task cancelled."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_bounded(items: Sequence[I], work: Callable[[I], Awaitable[T]], width: int) -> list[T]:
    """``work`` on every item, at most ``width`` at once, results in input order; or the first
    exception, with every other worker cancelled (not orphaned).

    ``width`` workers share one iterator, rather than one task per item behind a semaphore:
    the same concurrency without creating and scheduling a task per record.
    """
    results: list[T | None] = [None] * len(items)
    pending = iter(enumerate(items))

    async def worker() -> None:
        for i, item in pending:
            results[i] = await work(item)

    await gather_or_cancel([worker() for _ in range(max(1, min(width, len(items))))])
    return cast(list[T], results)


async def one_ahead(
    items: Sequence[I], fetch: Callable[[I], Awaitable[T]]
) -> AsyncGenerator[tuple[I, T], None]:
    """``(item, await fetch(item))`` for every item in order, with the next item's fetch
    already running while the caller works on this one: a source maps one page of an API's
    answers while the API prepares the next, instead of the two taking turns. At most two
    fetches are ever under way. An error of a fetch is raised when its item is reached;
    closing the iterator early cancels the fetch ahead. Close it (``contextlib.aclosing``)
    where the caller may stop early."""
    ahead: asyncio.Future[T] | None = None
    try:
        for n, item in enumerate(items):
            current = ahead if ahead is not None else asyncio.ensure_future(fetch(item))
            ahead = None
            result = await current
            if n + 1 < len(items):
                ahead = asyncio.ensure_future(fetch(items[n + 1]))
            yield item, result
    finally:
        if ahead is not None:
            ahead.cancel()
            with contextlib.suppress(BaseException):
                await ahead
