"""ApiClient: one async HTTP client per connection, with retries, budget and error translation.

Every request any connector makes goes through :meth:`ApiClient.request`, so retry, back-off,
rate budget, call counting, redaction and error translation happen in exactly one place.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping
from typing import Any

import httpx
import structlog

from ticketbridge.errors import RateLimited, RetryableError
from ticketbridge.http.budget import RateBudget
from ticketbridge.http.context import HttpContext
from ticketbridge.http.outcomes import DEFAULT_TABLE, Action, classify, to_error
from ticketbridge.http.retry import RetryPolicy

log = structlog.get_logger("ticketbridge.http")


class ApiClient:
    def __init__(
        self,
        *,
        platform: str,
        base_url: str,
        context: HttpContext,
        auth: httpx.Auth | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        table: Mapping[int, Action] | None = None,
        headers: Mapping[str, str] | None = None,
        request_id_header: str = "x-request-id",
        seed: int | None = None,
    ) -> None:
        self.platform = platform
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.budget = budget
        self.table = {**DEFAULT_TABLE, **(table or {})}
        self.request_id_header = request_id_header
        self._sleep = context.sleep
        self._rng = random.Random(seed)
        self.calls = 0
        self.statuses: Counter[int] = Counter()
        self.retries = 0
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            auth=auth,
            timeout=timeout_s,
            headers=dict(headers or {}),
            transport=context.transport_for(base_url),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        table: Mapping[int, Action] | None = None,
    ) -> httpx.Response:
        """Send with retries; return the response of the first attempt that is not an error.

        Raises the translated error once retries are used up, or at once for errors that a
        retry cannot fix (auth, rejected record, other 4xx).
        """
        rel = path.lstrip("/")
        outcomes = {**self.table, **table} if table else self.table
        attempt = 0
        while True:
            if self.budget is not None:
                await self.budget.acquire(self.platform)
            self.calls += 1
            try:
                response = await self._http.request(
                    method, rel, params=params, json=json_body, data=data, headers=headers
                )
            except httpx.TimeoutException:
                error: RetryableError = RetryableError(
                    f"{method} /{rel} timed out", platform=self.platform
                )
                self.statuses[0] += 1
            except httpx.TransportError as exc:
                error = RetryableError(
                    f"{method} /{rel} could not connect: {type(exc).__name__}",
                    platform=self.platform,
                )
                self.statuses[0] += 1
            else:
                self.statuses[response.status_code] += 1
                log.debug("http", platform=self.platform, method=method, path=rel,
                          status=response.status_code, attempt=attempt)
                action = classify(response.status_code, outcomes)
                if action is Action.OK:
                    return response
                translated = to_error(
                    action, response, platform=self.platform,
                    request_id_header=self.request_id_header,
                )
                if not isinstance(translated, RetryableError):
                    raise translated
                error = translated
                if isinstance(error, RateLimited) and self.budget is not None:
                    self.budget.penalise(error.retry_after or self.retry.min_delay_s)
            if attempt >= self.retry.max_retries:
                raise error
            retry_after = error.retry_after if isinstance(error, RateLimited) else None
            delay = self.retry.delay(attempt, retry_after, self._rng)
            log.info("http.retry", platform=self.platform, path=rel, status=error.status,
                     attempt=attempt + 1, delay_s=round(delay, 3))
            self.retries += 1
            attempt += 1
            await self._sleep(delay)

    async def request_json(self, method: str, path: str, **kw: Any) -> Any:
        """Like :meth:`request` and decode JSON; a malformed body is retried like a 5xx."""
        attempt = 0
        while True:
            response = await self.request(method, path, **kw)
            if not response.content:
                return None
            try:
                return response.json()
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                if attempt >= self.retry.max_retries:
                    raise RetryableError(
                        f"{method} {path}: malformed JSON body ({type(exc).__name__})",
                        platform=self.platform, status=response.status_code,
                    ) from None
                attempt += 1
                self.retries += 1
                await self._sleep(self.retry.delay(attempt, None, self._rng))

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self.request_json("GET", path, params=params)
