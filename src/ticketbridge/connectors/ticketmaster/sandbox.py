"""Ticketmaster client-data sandbox: the [INFER] API of platforms.md 4.5 in Ticketmaster's
documented style (4.2), over :class:`TicketmasterStore`.

What it copies from Ticketmaster's gateway (Apigee) [DOC 4.2]: ``?apikey=`` auth with
``{"fault": {"faultstring", "detail": {"errorcode"}}}`` error bodies (401
``oauth.v2.InvalidApiKey``; 429 ``policies.ratelimit.SpikeArrestViolation`` above 5 requests
a second and ``policies.ratelimit.QuotaViolation`` past the daily quota of 5000); the
``Rate-Limit``, ``Rate-Limit-Available``, ``Rate-Limit-Over`` and ``Rate-Limit-Reset`` (epoch
ms) headers on every response; Discovery's ``page{size,totalElements,totalPages,number}`` with
a 0-based ``page`` and the deep-paging rule ``size * page < 1000`` (400 beyond it).

What it invents, since nothing is public [GAP -> INFER]: the paths and parameters (served
from :class:`Paths`, so an override is served too), HTTP Basic username/password on top of the
key, the market code as the first path segment (unknown market -> 404 fault), the error codes
of those three checks, and ``Retry-After`` on spike arrests (platforms.md 11.3).
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ticketbridge.connectors.ticketmaster.config import DEEP_PAGING_LIMIT, PLATFORM, Paths
from ticketbridge.connectors.ticketmaster.sandbox_store import TicketmasterStore
from ticketbridge.sandbox import SandboxApp, Stats

BASE = "/clientdata/v1"
# Fake credentials the sandbox issues (platforms.md: never reuse real ones).
SANDBOX_API_KEY = "sandbox-tm-key"
SANDBOX_USERNAME = "sandbox-tm-user"
SANDBOX_PASSWORD = "sandbox-tm-password"  # noqa: S105
DAILY_QUOTA = 5000  # [DOC 4.2] 5 000 calls a day per key
SPIKE_ARREST_PER_S = 5.0  # [DOC 4.2] 5 requests a second per key
MAX_SIZE = 200  # Discovery's largest page [INFER]
DEFAULT_SIZE = 20  # Discovery's default page size

Handler = Callable[[Request], Awaitable[Response]]


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def fault(status: int, faultstring: str, errorcode: str) -> Response:
    """An Apigee fault body, the shape every Ticketmaster gateway error has."""
    return _json(
        {"fault": {"faultstring": faultstring, "detail": {"errorcode": errorcode}}}, status
    )


def _put(body: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        body = body.setdefault(part, {})
    body[leaf] = value


class _Gateway:
    """The Apigee front: spike arrest, key check, daily quota, Basic auth, market, then the
    route. Counters live here (not in the store) so that ``reset`` clears data, not time."""

    def __init__(
        self, store: TicketmasterStore, paths: Paths, spike_per_s: float | None, quota: int
    ) -> None:
        self.store, self.paths = store, paths
        self.spike_per_s, self.quota = spike_per_s, quota
        self._tokens = float(spike_per_s or 0)
        self._last = time.monotonic()
        self._day = ""
        self.used = 0

    # -- quota and rate ------------------------------------------------------------------

    def _roll_day(self) -> datetime:
        now = datetime.now(UTC)
        if now.date().isoformat() != self._day:
            self._day, self.used = now.date().isoformat(), 0
        return now

    def headers(self) -> dict[str, str]:
        now = self._roll_day()
        reset = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        return {
            "Rate-Limit": str(self.quota),
            "Rate-Limit-Available": str(max(0, self.quota - self.used)),
            "Rate-Limit-Over": str(max(0, self.used - self.quota)),
            "Rate-Limit-Reset": str(int(reset.timestamp() * 1000)),
        }

    def _spike_wait(self) -> float:
        """0 if a request may pass now (and take its token), else seconds to wait.

        A token bucket of ``spike_per_s`` tokens refilled at that rate, like Apigee's spike
        arrest with effective counting [INFER]: a client whose own budget is the same bucket
        trips it only on timer jitter.
        """
        rate = self.spike_per_s
        if not rate:
            return 0.0
        now = time.monotonic()
        self._tokens = min(rate, self._tokens + (now - self._last) * rate)
        self._last = now
        if self._tokens >= 1.0 - 1e-9:  # float residue is not a violation
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) / rate

    def error_body(self, status: int, message: str) -> Response:
        """Faults injected through ``/_sandbox/faults``, in Apigee's shape with rate headers."""
        if status == 429:
            response = fault(
                429,
                f"Spike arrest violation. Allowed rate : "
                f"{self.spike_per_s or SPIKE_ARREST_PER_S:g}ps",
                "policies.ratelimit.SpikeArrestViolation",
            )
        elif status == 503:
            response = fault(
                503,
                "The Service is temporarily unavailable",
                "messaging.adaptors.http.flow.ServiceUnavailable",
            )
        elif status == 504:
            response = fault(504, "Gateway Timeout", "messaging.adaptors.http.flow.GatewayTimeout")
        else:
            response = fault(status, message, "sandbox.Fault")
        response.headers.update(self.headers())
        return response

    # -- the guard -----------------------------------------------------------------------

    def guarded(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            response = self._gate(request) or await handler(request)
            response.headers.update(self.headers())
            return response

        return endpoint

    def _gate(self, request: Request) -> Response | None:
        wait = self._spike_wait()
        if wait:
            response = fault(
                429,
                f"Spike arrest violation. Allowed rate : {self.spike_per_s:g}ps",
                "policies.ratelimit.SpikeArrestViolation",
            )
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return response
        key = request.query_params.get(self.paths.api_key)
        if not key:
            return fault(
                401,
                f"Failed to resolve API Key variable request.queryparam.{self.paths.api_key}",
                "steps.oauth.v2.FailedToResolveAPIKey",
            )
        if key != SANDBOX_API_KEY:
            return fault(401, "Invalid ApiKey", "oauth.v2.InvalidApiKey")
        self._roll_day()
        self.used += 1
        if self.used > self.quota:
            # Real quota faults name the key ("Identifier : <key>"); clients must redact it.
            return fault(
                429,
                f"Rate limit quota violation. Quota limit  exceeded. Identifier : {key}",
                "policies.ratelimit.QuotaViolation",
            )
        if not self._basic_ok(request.headers.get("authorization", "")):
            return fault(401, "Invalid username or password", "basicauth.InvalidCredentials")
        market = str(request.path_params.get("market", ""))
        if market.upper() != self.store.market:
            return fault(404, f"Unknown market {market!r}", "clientdata.UnknownMarket")
        return None

    def _basic_ok(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return False
        return given == f"{SANDBOX_USERNAME}:{SANDBOX_PASSWORD}".encode()


class _Api:
    def __init__(self, store: TicketmasterStore, paths: Paths) -> None:
        self.store, self.paths = store, paths

    def listing(self, kind: str, list_key: str) -> Handler:
        async def endpoint(request: Request) -> Response:
            q, p = request.query_params, self.paths
            try:
                page = int(q.get(p.page, "0"))
                size = int(q.get(p.size, str(DEFAULT_SIZE)))
                since = _stamp(q.get(p.updated_since))
                until = _stamp(q.get(p.updated_until))
            except ValueError as exc:
                return fault(400, f"Invalid query parameter: {exc}", "clientdata.InvalidParameter")
            if page < 0 or not 1 <= size <= MAX_SIZE:
                return fault(
                    400, f"page must be >= 0 and size 1..{MAX_SIZE}", "clientdata.InvalidParameter"
                )
            if size * page >= DEEP_PAGING_LIMIT:
                return fault(
                    400,
                    "Max paging depth exceeded. (page * size) must be less than "
                    f"{DEEP_PAGING_LIMIT}",
                    "clientdata.MaxPagingDepthExceeded",
                )
            sort = q.get(p.sort, p.sort_ascending)
            if sort != p.sort_ascending:
                return fault(
                    400,
                    f"Unsupported sort {sort!r} (supported: {p.sort_ascending})",
                    "clientdata.InvalidParameter",
                )
            items, total = self.store.page(kind, since, until, page, size)
            body: dict[str, Any] = {}
            _put(body, list_key, items)
            url = request.url.remove_query_params([p.api_key])
            links = {"self": {"href": str(url)}}
            if (page + 1) * size < total:
                links["next"] = {"href": str(url.include_query_params(**{p.page: page + 1}))}
            body["_links"] = links
            _put(
                body,
                p.page_object,
                {
                    "size": size,
                    "totalElements": total,
                    "totalPages": math.ceil(total / size),
                    "number": page,
                },
            )
            return _json(body)

        return endpoint

    async def customer(self, request: Request) -> Response:
        found = self.store.customer(str(request.path_params["id"]))
        if found is None:
            return fault(404, "Customer not found", "clientdata.CustomerNotFound")
        return _json(found)


def _stamp(value: str | None) -> datetime | None:
    if value is None or not value.strip():
        return None
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def create_sandbox(
    *,
    seed: int = 42,
    records: int = 200,
    today: datetime | None = None,
    market: str = "DK",
    birth_date_format: str = "%d-%m-%Y",
    spike_arrest_per_s: float | None = SPIKE_ARREST_PER_S,
    daily_quota: int = DAILY_QUOTA,
    paths: Paths | None = None,
) -> SandboxApp:
    """A Ticketmaster market with ``records`` customers (and ~1.15 orders each).

    ``spike_arrest_per_s=None`` turns the per-second limit off (fast tests); ``paths``
    serves another API shape, as a connection's ``paths:`` override would expect.
    """
    paths = paths or Paths()
    stats = Stats()
    store = TicketmasterStore(
        seed=seed, records=records, today=today, market=market, birth_date_format=birth_date_format
    )
    gateway = _Gateway(store, paths, spike_arrest_per_s, daily_quota)
    api = _Api(store, paths)
    g = gateway.guarded
    routes: list[BaseRoute] = [
        Route(
            BASE + paths.route("customers"),
            g(api.listing("customers", paths.customers_list)),
            methods=["GET"],
        ),
        Route(BASE + paths.route("customer"), g(api.customer), methods=["GET"]),
        Route(
            BASE + paths.route("orders"),
            g(api.listing("orders", paths.orders_list)),
            methods=["GET"],
        ),
    ]
    return SandboxApp(
        platform=PLATFORM,
        store=store,
        routes=routes,
        stats=stats,
        error_body=gateway.error_body,
        credentials={
            "api_key": SANDBOX_API_KEY,
            "username": SANDBOX_USERNAME,
            "password": SANDBOX_PASSWORD,
        },
    )


def sandbox_config(url: str) -> dict[str, Any]:
    """Connection settings for a sandbox served at ``url`` (its origin)."""
    return {
        "platform": PLATFORM,
        "base_url": url.rstrip("/") + BASE,
        "api_key": "${TM_API_KEY}",
        "market": "DK",
        "username": SANDBOX_USERNAME,  # not a secret: it stays readable in the project file
        "password": "${TM_PASSWORD}",
    }


# Only secrets go here: everything listed must be a SecretStr field of the config.
SANDBOX_ENV = {"TM_API_KEY": SANDBOX_API_KEY, "TM_PASSWORD": SANDBOX_PASSWORD}
