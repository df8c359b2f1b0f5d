"""What every conformance case stands on: one connector, its sandbox, an HttpContext that
routes the connection's URLs to that sandbox in process and records what it was asked to
sleep, and the sandbox's admin routes (``/_sandbox/*``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from ticketbridge.connectors.base import (
    CheckResult,
    ConnectionConfig,
    Connector,
    Destination,
    ReadRequest,
    Record,
    Source,
)
from ticketbridge.errors import AuthError
from ticketbridge.http.client import ApiClient
from ticketbridge.http.context import HttpContext
from ticketbridge.http.outcomes import Action
from ticketbridge.http.retry import RetryPolicy
from ticketbridge.project import expand_env
from ticketbridge.sandbox import SandboxApp

SANDBOX_URL = "http://sandbox.conformance"
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
SEED = 7
RECORDS = 60

# Admin answers are read as they are: a case asserts on the status itself.
_AS_IS = {status: Action.OK for status in range(400, 600)}

T = TypeVar("T", Source, Destination)


class NotApplicable(Exception):
    """This case does not apply to this connector (the reason says why): a skip, never a pass."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def need_source(connector: Connector) -> Callable[[Any, HttpContext], Source]:
    if connector.source is None:
        raise NotApplicable(f"{connector.platform} is not a source")
    return connector.source


def need_destination(connector: Connector) -> Callable[[Any, HttpContext], Destination]:
    if connector.destination is None:
        raise NotApplicable(f"{connector.platform} is not a destination")
    return connector.destination


def need_credentials(connector: Connector) -> dict[str, str]:
    if connector.sandbox is None or not connector.sandbox.env:
        raise NotApplicable(f"{connector.platform}'s sandbox declares no credentials (env)")
    return dict(connector.sandbox.env)


def wrong_credentials(connector: Connector) -> dict[str, str]:
    """The sandbox's credentials, each altered (same shape, wrong value)."""
    return {k: "wrong-" + v[::-1] for k, v in need_credentials(connector).items()}


class PacedTime:
    """The context's clock and sleep: real time, except that a wait of ``FAST_FORWARD_S`` or
    more (a Retry-After, a penalised budget) passes at once, the clock jumping by it.

    Short waits are real because sandboxes enforce rate limits on the real clock (a budget
    that paced on a virtual one would run into them); long ones are skipped so that the
    suite stays fast. Every wait asked for is recorded.
    """

    FAST_FORWARD_S = 1.0

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self._skipped = 0.0

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds >= self.FAST_FORWARD_S:
            self._skipped += seconds
            await asyncio.sleep(0)
        else:
            await asyncio.sleep(max(0.0, seconds))

    def monotonic(self) -> float:
        return time.monotonic() + self._skipped


@dataclass
class Harness:
    """One connector against a fresh sandbox of its own."""

    connector: Connector
    app: SandboxApp
    context: HttpContext
    clock: PacedTime

    @property
    def sleeps(self) -> list[float]:
        """Every wait the connection asked for (retries and rate budgets alike)."""
        return self.clock.sleeps

    @classmethod
    def create(cls, connector: Connector, records: int = RECORDS) -> Harness:
        if connector.sandbox is None:
            raise NotApplicable(f"{connector.platform} has no sandbox (registration fails)")
        app: SandboxApp = connector.sandbox.create(seed=SEED, records=records, today=NOW)
        clock = PacedTime()
        context = HttpContext(sleep=clock.sleep, monotonic=clock.monotonic)
        context.mount_app(SANDBOX_URL, app.app)
        return cls(connector, app, context, clock)

    @property
    def platform(self) -> str:
        return self.connector.platform

    def config(self, env: Mapping[str, str] | None = None) -> ConnectionConfig:
        """The connection settings ``init`` and the demo write, loaded like a project file."""
        return sandbox_config(self.connector, env)

    @asynccontextmanager
    async def source(self, env: Mapping[str, str] | None = None) -> AsyncIterator[Source]:
        async with _opened(need_source(self.connector)(self.config(env), self.context)) as s:
            yield s

    @asynccontextmanager
    async def destination(self, env: Mapping[str, str] | None = None) -> AsyncIterator[Destination]:
        made = need_destination(self.connector)(self.config(env), self.context)
        async with _opened(made) as d:
            yield d

    # -- admin routes ----------------------------------------------------------------------

    async def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """``(status, JSON body)`` of one call to the sandbox, admin or not, unretried."""
        client = ApiClient(
            platform=f"{self.platform} sandbox",
            base_url=SANDBOX_URL,
            context=self.context,
            retry=RetryPolicy(max_retries=0),
            table=_AS_IS,
        )
        try:
            response = await client.request(method, path, json_body=body)
        finally:
            await client.aclose()
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = response.text
        return response.status_code, payload

    async def _ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = await self.admin(method, path, body)
        assert status == 200, f"{self.platform}: {method} {path} answered {status}: {payload}"
        return payload

    async def stats(self) -> dict[str, Any]:
        found: dict[str, Any] = await self._ok("GET", "/_sandbox/stats")
        return found

    async def data(self) -> Any:
        return await self._ok("GET", "/_sandbox/data")

    async def faults(self, **settings: Any) -> dict[str, Any]:
        found: dict[str, Any] = await self._ok("POST", "/_sandbox/faults", settings)
        return found


def sandbox_config(connector: Connector, env: Mapping[str, str] | None = None) -> ConnectionConfig:
    if connector.sandbox is None:
        raise NotApplicable(f"{connector.platform} has no sandbox (registration fails)")
    raw = connector.sandbox.config(SANDBOX_URL)
    expanded = expand_env(raw, dict(env if env is not None else connector.sandbox.env))
    return connector.config.model_validate(expanded)


@asynccontextmanager
async def _opened(made: T) -> AsyncIterator[T]:
    try:
        yield made
    finally:
        await made.aclose()


def occurrences(data: Any, needle: str) -> int:
    """How often ``needle`` occurs in the JSON text of ``data`` (case-insensitively)."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True).casefold().count(needle.casefold())


async def read_pages(
    source: Source, stream: str, options: Any, **request: Any
) -> list[tuple[list[str], dict[str, Any] | None, list[Record]]]:
    """Every page of one read as ``(entry keys, position, records)``; failures' keys are
    entries too (prefixed ``failed:``), so nothing a page carries is lost from view."""
    pages = []
    async for page in source.read(ReadRequest(stream=stream, options=options, **request)):
        keys = [r.key for r in page.records] + ["failed:" + f.key for f in page.failures]
        pages.append((keys, page.position, list(page.records)))
    return pages


def assert_no_secret(text: str, secrets: Sequence[str]) -> None:
    leaked = [s for s in secrets if s and s in text]
    assert not leaked, f"a secret is shown: {text}"


async def assert_check_passes(
    platform: str, check: Callable[[], Awaitable[list[CheckResult]]]
) -> None:
    """``check()`` reports something, and every result is ok with the sandbox credentials."""
    results = await check()
    assert results, f"{platform}: check() reported nothing"
    failed = [r for r in results if not r.ok]
    assert not failed, f"{platform}: check() failed with sandbox credentials: {failed}"


async def assert_check_refuses(
    platform: str, check: Callable[[], Awaitable[list[CheckResult]]], secrets: Sequence[str]
) -> None:
    """``check()`` with wrong credentials reports a failure (or raises AuthError), and shows
    no secret either way."""
    try:
        results = await check()
    except AuthError as exc:
        assert_no_secret(str(exc), secrets)
        return
    assert any(not r.ok for r in results), f"{platform}: check() passed with wrong credentials"
    assert_no_secret(" ".join(f"{r.name}: {r.detail}" for r in results), secrets)


def assert_waited(harness: Harness, seconds: float, *, times: int) -> None:
    """The connection asked to wait at least ``seconds``, ``times`` times (one per 429)."""
    waits = [s for s in harness.sleeps if s >= seconds]
    longest = max(harness.sleeps, default=0.0)
    assert len(waits) >= times, (
        f"{harness.platform}: Retry-After {seconds}s not honoured {times} times: "
        f"{len(harness.sleeps)} waits, {len(waits)} long enough, the longest {longest:.3f}s"
    )
