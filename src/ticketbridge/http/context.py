"""What every API client of one process shares: transports, rate budgets, the clock.

Tests put an ``httpx.ASGITransport`` per base URL here (:meth:`HttpContext.mount_app`), so
connectors built from an ordinary project file talk to in-process sandboxes over real HTTP
semantics with no sockets, and code outside ``http/`` never needs httpx to do it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from ticketbridge.http.budget import RateBudget


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass
class HttpContext:
    transports: dict[str, httpx.AsyncBaseTransport] = field(default_factory=dict)
    budgets: dict[str, RateBudget] = field(default_factory=dict)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # The clock rate budgets measure with; tests pair it with ``sleep`` as one virtual time.
    monotonic: Callable[[], float] = time.monotonic
    # Retries of a request whose server is not there at all (connection refused, host not
    # found): a few in a run (a server restarting), none in ``check``, which should say so
    # at once.
    unreachable_retries: int = 2

    def mount(self, base_url: str, transport: httpx.AsyncBaseTransport) -> None:
        """Route every request to ``base_url``'s origin through ``transport``."""
        self.transports[_origin(base_url)] = transport

    def mount_app(self, base_url: str, app: Any) -> None:
        """Route every request to ``base_url``'s origin to the ASGI ``app`` (a sandbox), in
        process."""
        self.mount(base_url, httpx.ASGITransport(app=app))

    def transport_for(self, base_url: str) -> httpx.AsyncBaseTransport | None:
        return self.transports.get(_origin(base_url))

    def budget(
        self,
        account: str,
        *,
        rate_per_second: float | None,
        burst: int | None,
        max_calls: int | None,
    ) -> RateBudget:
        """The budget of one destination account, shared by every sync that uses it."""
        found = self.budgets.get(account)
        if found is None:
            found = RateBudget(
                rate_per_second=rate_per_second,
                burst=burst,
                max_calls=max_calls,
                sleep=self.sleep,
                monotonic=self.monotonic,
            )
            self.budgets[account] = found
        return found
