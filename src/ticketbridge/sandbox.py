"""Sandbox framework: runs platform simulators in-process or under uvicorn, with admin routes.

Every platform sandbox is a Starlette app plus an in-memory store. This module wraps it with
what all sandboxes share (DESIGN section 6):

* ``GET  /_sandbox/stats``  requests per route and status, writes per record key;
* ``POST /_sandbox/mutate`` change or cancel a share of the records (platform-specific);
* ``GET|POST /_sandbox/faults`` read or set latency, 429 / 5xx / timeout / malformed rates, a
  real request-rate limit, and a deterministic "the next N requests fail" fault;
* ``POST /_sandbox/reset``  back to the seeded state;
* ``GET  /_sandbox/data``   read back what the sandbox holds (for tests and the demo).

Admin routes are never subject to faults and are not counted in the stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    import uvicorn

ADMIN_PREFIX = "/_sandbox"


class Faults(BaseModel):
    """Fault injection settings. Rates are shares of requests in ``[0, 1]``."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = 0.0
    slow_rate: float = 0.0  # share of requests delayed by latency_ms (1.0 = all)
    rate_429: float = 0.0
    retry_after_s: float = 1.0
    rate_5xx: float = 0.0
    timeout_rate: float = 0.0
    timeout_s: float = 60.0  # how long a "timeout" request hangs before answering 504
    malformed_rate: float = 0.0
    rate_limit_per_s: float | None = None  # a real limit: above it, 429 with Retry-After
    only_methods: list[str] | None = None  # e.g. ["POST"] to fault writes only
    seed: int = 0
    # Deterministic, unlike the rates: the next ``fail_next`` requests (of ``only_methods``,
    # if set) answer ``fail_status`` (a 429 with Retry-After ``retry_after_s``). Counts down;
    # GET /_sandbox/faults shows how many are left.
    fail_next: int = Field(default=0, ge=0)
    fail_status: int = Field(default=429, ge=400, le=599)


class Stats:
    """What a sandbox saw. Tests assert on these numbers, not on the client's own counters."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.writes: dict[str, Counter[str]] = defaultdict(Counter)
        self.faults: Counter[str] = Counter()

    def record_write(self, key: str, kind: str) -> None:
        """Count a write (``create``/``update``/…) to one record key of the platform."""
        self.writes[key][kind] += 1

    def as_dict(self) -> dict[str, Any]:
        total_writes: Counter[str] = Counter()
        for per_key in self.writes.values():
            total_writes.update(per_key)
        return {
            "requests": dict(self.requests),
            "statuses": {k: v for k, v in sorted(self.statuses.items())},
            "total_requests": sum(self.requests.values()),
            "writes": {k: dict(v) for k, v in self.writes.items()},
            "write_totals": dict(total_writes),
            "faults": dict(self.faults),
        }


class SandboxStore(Protocol):
    """The in-memory state a platform sandbox keeps."""

    def reset(self) -> None: ...

    def mutate(self, params: dict[str, Any]) -> dict[str, Any]: ...

    def dump(self) -> dict[str, Any]: ...


ErrorBody = Callable[[int, str], Response]


class JsonResponse(JSONResponse):
    """Starlette's JSONResponse rendered by orjson: the same compact JSON for a fraction of the
    CPU, which the benchmarks' clients share a machine with."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def default_error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


@dataclass
class SandboxApp:
    """A platform sandbox ready to serve: ``app`` is the ASGI app with admin routes."""

    platform: str
    store: SandboxStore
    routes: list[BaseRoute]
    error_body: ErrorBody = default_error
    stats: Stats = field(default_factory=Stats)
    faults: Faults = field(default_factory=Faults)
    credentials: dict[str, str] = field(default_factory=dict)
    app: ASGIApp = field(init=False)

    def __post_init__(self) -> None:
        admin = [
            Route(f"{ADMIN_PREFIX}/stats", self._stats, methods=["GET"]),
            Route(f"{ADMIN_PREFIX}/mutate", self._mutate, methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/faults", self._faults, methods=["GET", "POST"]),
            Route(f"{ADMIN_PREFIX}/reset", self._reset, methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/data", self._data, methods=["GET"]),
        ]
        inner = Starlette(routes=admin + self.routes)
        self.app = _FaultsAndStats(inner, self)

    async def _stats(self, request: Request) -> Response:
        return JSONResponse(self.stats.as_dict())

    async def _mutate(self, request: Request) -> Response:
        params = await request.json() if await request.body() else {}
        return JSONResponse(self.store.mutate(params))

    async def _faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.faults = Faults.model_validate(await request.json())
            except ValidationError as exc:
                problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
                return JSONResponse(
                    {"error": "invalid faults", "problems": problems}, status_code=422
                )
            self.app.rng = random.Random(self.faults.seed)  # type: ignore[attr-defined]
        return JSONResponse(self.faults.model_dump())

    async def _reset(self, request: Request) -> Response:
        self.store.reset()
        self.stats.reset()
        self.faults = Faults()
        return JSONResponse({"reset": True})

    async def _data(self, request: Request) -> Response:
        return JSONResponse(self.store.dump())


class _FaultsAndStats:
    """ASGI middleware: count requests per route template, then maybe inject a fault."""

    def __init__(self, app: Starlette, sandbox: SandboxApp) -> None:
        self.inner = app
        self.sandbox = sandbox
        self.rng = random.Random(sandbox.faults.seed)
        self._window_start = time.monotonic()
        self._window_count = 0

    def _template(self, scope: Scope) -> str:
        for route in self.inner.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return f"{scope['method']} {getattr(route, 'path', '?')}"
        return f"{scope['method']} (no route)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.inner(scope, receive, send)
            return
        sb = self.sandbox
        sb.stats.requests[self._template(scope)] += 1
        status_box: dict[str, int] = {}

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
                sb.stats.statuses[str(message["status"])] += 1
            await send(message)

        fault = self._pick_fault(scope["method"])
        if fault is not None:
            sb.stats.faults[fault] += 1
            await self._inject(fault, scope, receive, counting_send)
            return
        faults = sb.faults
        if faults.latency_ms and self.rng.random() < faults.slow_rate:
            await asyncio.sleep(faults.latency_ms / 1000)
        await self.inner(scope, receive, counting_send)  # type: ignore[arg-type]

    def _over_rate(self) -> bool:
        limit = self.sandbox.faults.rate_limit_per_s
        if not limit:
            return False
        now = time.monotonic()
        # One-second fixed windows, as most API gateways count.
        if now - self._window_start >= 1.0:
            self._window_start = now
            self._window_count = 0
        self._window_count += 1
        return self._window_count > limit

    def _pick_fault(self, method: str) -> str | None:
        f = self.sandbox.faults
        if self._over_rate():
            return "rate_limit"
        if f.only_methods is not None and method not in f.only_methods:
            return None
        if f.fail_next > 0:
            f.fail_next -= 1
            return "fail_next"
        roll = self.rng.random()
        for name, rate in (
            ("429", f.rate_429),
            ("5xx", f.rate_5xx),
            ("timeout", f.timeout_rate),
            ("malformed", f.malformed_rate),
        ):
            if roll < rate:
                return name
            roll -= rate
        return None

    async def _inject(self, fault: str, scope: Scope, receive: Receive, send: Any) -> None:
        sb = self.sandbox
        if fault == "fail_next" and sb.faults.fail_status != 429:
            code = sb.faults.fail_status
            response = sb.error_body(code, "Service Unavailable" if code >= 500 else "Refused")
        elif fault in ("429", "rate_limit", "fail_next"):
            retry = sb.faults.retry_after_s
            if fault == "rate_limit":
                retry = max(0.0, 1.0 - (time.monotonic() - self._window_start))
            response = sb.error_body(429, "Too Many Attempts.")
            response.headers["Retry-After"] = str(max(0, round(retry)))
        elif fault == "5xx":
            response = sb.error_body(503, "Service Unavailable")
        elif fault == "timeout":
            await asyncio.sleep(sb.faults.timeout_s)
            response = sb.error_body(504, "Gateway Timeout")
        else:
            # The real handler runs (so a write may happen) but its body is cut short: the
            # nastiest kind of malformed answer, as it tests idempotent retries.
            chunks: list[bytes] = []
            status: dict[str, int] = {}

            async def capture(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))

            await self.inner(scope, receive, capture)  # type: ignore[arg-type]
            body = b"".join(chunks)
            response = Response(
                body[: max(1, len(body) // 2)] or b"{",
                status_code=status.get("code", 200),
                media_type="application/json",
            )
        await response(scope, receive, send)


# ---------------------------------------------------------------------------------------
# Serving under uvicorn on loopback


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class RunningSandbox:
    platform: str
    url: str
    sandbox: SandboxApp
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_in_thread(sandbox: SandboxApp, host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
    """Serve one sandbox under uvicorn in a daemon thread; returns once it accepts requests."""
    server, thread, url = serve_asgi(sandbox.app, sandbox.platform, host, port)
    return RunningSandbox(sandbox.platform, url, sandbox, server, thread)


def serve_asgi(
    app: ASGIApp, name: str, host: str = "127.0.0.1", port: int = 0, lifespan: str = "off"
) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Serve any ASGI app on loopback in a daemon thread (the demo's Supplier API too)."""
    # uvicorn is imported where it serves: every connector package imports this module for
    # its sandbox app, and a ``ticketbridge run`` against a real API serves nothing.
    import uvicorn

    if not host.startswith("127.") and host not in ("localhost", "::1"):
        raise ValueError("sandboxes only listen on loopback addresses")
    port = port or free_port(host)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan=lifespan,  # type: ignore[arg-type]
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"serve-{name}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start on {host}:{port}")
        time.sleep(0.02)
    return server, thread, f"http://{host}:{port}"


@contextlib.contextmanager
def serving(sandboxes: list[SandboxApp], host: str = "127.0.0.1") -> Iterator[list[RunningSandbox]]:
    running: list[RunningSandbox] = []
    try:
        for sb in sandboxes:
            running.append(serve_in_thread(sb, host))
        yield running
    finally:
        for r in running:
            r.stop()


class PortInUse(RuntimeError):
    """A sandbox's port is taken (``sandbox serve`` exits 2 on it, not uvicorn's 3)."""


def check_port_free(host: str, port: int, name: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((host, port))
        except OSError as exc:
            raise PortInUse(
                f"{name}: port {port} on {host} is in use ({exc.strerror}); is "
                "`ticketbridge sandbox serve` running already? Choose other ports with "
                "--port-base"
            ) from None


async def serve_forever(sandboxes: list[tuple[SandboxApp, int]], host: str = "127.0.0.1") -> None:
    """Serve several sandboxes in this event loop until cancelled (``sandbox serve``).

    Raises PortInUse before serving any if one of the ports is taken."""
    import uvicorn

    for sb, port in sandboxes:
        check_port_free(host, port, sb.platform)
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                sb.app, host=host, port=port, log_level="warning", lifespan="off", access_log=False
            )
        )
        for sb, port in sandboxes
    ]
    await asyncio.gather(*(s.serve() for s in servers))
