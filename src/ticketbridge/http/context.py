"""What every API client of one process shares: transports, rate budgets, the clock.

Tests put an ``httpx.ASGITransport`` per base URL here, so connectors built from an ordinary
project file talk to in-process sandboxes over real HTTP semantics with no sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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
    # Retries of a request whose server is not there at all (connection refused, host not
    # found): a few in a run (a server restarting), none in ``check``, which should say so
    # at once.
    unreachable_retries: int = 2

    def mount(self, base_url: str, transport: httpx.AsyncBaseTransport) -> None:
        """Route every request to ``base_url``'s origin through ``transport``."""
        self.transports[_origin(base_url)] = transport

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
                rate_per_second=rate_per_second, burst=burst, max_calls=max_calls, sleep=self.sleep
            )
            self.budgets[account] = found
        return found
