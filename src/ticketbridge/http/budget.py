"""Token-bucket rate budget, shared by all syncs that call one account.

Planning for the limit (waiting before a call) is cheaper than discovering it (a 429 and a
back-off), and for APIs with daily quotas it is the only way to finish a run at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ticketbridge.errors import BudgetExhausted


class RateBudget:
    """``rate_per_second`` tokens refill continuously up to ``burst``; ``max_calls`` caps a run.

    ``None`` for the rate means unlimited. ``reset_run()`` starts a new per-run call cap.
    """

    def __init__(
        self,
        *,
        rate_per_second: float | None = None,
        burst: int | None = None,
        max_calls: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_second is not None and rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.rate = rate_per_second
        # No bursts unless asked for: most gateways count fixed one-second windows, and a full
        # bucket of `rate` tokens plus the refill let up to 2 x rate calls into one window
        # (56 answered 429 in the S6 benchmark; none with a burst of 1).
        self.capacity = float(burst if burst is not None else 1)
        self.max_calls = max_calls
        self._tokens = self.capacity
        self._sleep = sleep
        self._now = monotonic
        self._last = monotonic()
        self._lock = asyncio.Lock()
        self.calls = 0
        self.waited_s = 0.0

    def reset_run(self) -> None:
        self.calls = 0

    async def acquire(self, platform: str = "destination") -> None:
        """Wait for a token. Raises BudgetExhausted once the per-run cap is reached."""
        if self.max_calls is not None and self.calls >= self.max_calls:
            raise BudgetExhausted(
                f"call budget of {self.max_calls} per run used up", platform=platform
            )
        self.calls += 1
        if self.rate is None:
            return
        async with self._lock:
            while True:
                now = self._now()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                # The epsilon stops float residue (0.9999…) from asking for sleeps so short
                # that the clock cannot advance past them.
                if self._tokens >= 1.0 - 1e-9:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return
                wait = (1.0 - self._tokens) / self.rate
                self.waited_s += wait
                await self._sleep(wait)

    def penalise(self, seconds: float) -> None:
        """A 429 arrived: drain the bucket so that every caller of this account waits too."""
        if self.rate is None:
            return
        self._tokens = min(self._tokens, 1.0 - seconds * self.rate)
        self._last = self._now()
