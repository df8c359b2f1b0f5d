"""ApiClient against a real ASGI app: retries, Retry-After, budgets, error translation."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ticketbridge.errors import AuthError, BudgetExhausted, FatalError, RateLimited, RecordRejected
from ticketbridge.http import ApiClient, HttpContext, RateBudget, RetryPolicy
from ticketbridge.http.auth import QueryToken, TimestampHmacBasic, bearer, hmac_hex_b64
from ticketbridge.http.outcomes import Action
from ticketbridge.http.paginate import laravel, next_link, opaque_key, page_until_empty
from ticketbridge.http.retry import parse_retry_after

BASE = "http://api.test/v1"


class Script:
    """Answers requests with a scripted sequence of (status, body, headers)."""

    def __init__(self, answers: list[tuple[int, Any, dict[str, str]]]) -> None:
        self.answers = answers
        self.seen: list[Request] = []

    async def __call__(self, request: Request) -> Response:
        self.seen.append(request)
        status, body, headers = self.answers[min(len(self.seen), len(self.answers)) - 1]
        if isinstance(body, bytes):
            return Response(
                body, status_code=status, headers=headers, media_type="application/json"
            )
        return JSONResponse(body, status_code=status, headers=headers)


def make(
    handler: Callable[[Request], Awaitable[Response]], **kw: Any
) -> tuple[ApiClient, list[float]]:
    async def endpoint(request: Request) -> Response:  # a plain function, not an ASGI app
        return await handler(request)

    app = Starlette(routes=[Route("/v1/{path:path}", endpoint, methods=["GET", "POST"])])
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    ctx = HttpContext(sleep=sleep)
    ctx.mount(BASE, httpx.ASGITransport(app=app))
    return ApiClient(platform="testapi", base_url=BASE, context=ctx, seed=1, **kw), slept


async def test_5xx_then_success_is_retried_with_backoff() -> None:
    script = Script([(503, {"message": "down"}, {}), (502, {}, {}), (200, {"ok": 1}, {})])
    client, slept = make(script)
    assert await client.get_json("things") == {"ok": 1}
    assert len(script.seen) == 3 and client.calls == 3
    assert len(slept) == 2 and all(s > 0 for s in slept)


async def test_retry_after_is_honoured_and_zero_still_backs_off() -> None:
    script = Script(
        [(429, {}, {"Retry-After": "7"}), (429, {}, {"Retry-After": "0"}), (200, [], {})]
    )
    client, slept = make(script, retry=RetryPolicy(min_delay_s=0.25))
    await client.get_json("x")
    assert slept == [7.0, 0.25]


async def test_rate_limited_after_retries_raises_with_retry_after() -> None:
    client, _ = make(
        Script([(429, {"errors": [{"message": "Too Many Attempts."}]}, {"Retry-After": "3"})]),
        retry=RetryPolicy(max_retries=2),
    )
    with pytest.raises(RateLimited) as info:
        await client.get_json("x")
    assert info.value.retry_after == 3 and "Too Many Attempts" in str(info.value)


async def test_errors_are_translated_by_status() -> None:
    client, _ = make(Script([(401, {"errors": [{"message": "Unauthorized"}]}, {})]))
    with pytest.raises(AuthError, match="testapi: HTTP 401 Unauthorized"):
        await client.get_json("x")
    client, _ = make(Script([(422, {"errors": [{"message": "is invalid", "field": "email"}]}, {})]))
    with pytest.raises(RecordRejected, match="email: is invalid"):
        await client.request_json("POST", "x", json_body={})
    client, _ = make(Script([(404, {"fault": {"faultstring": "nope"}}, {})]))
    with pytest.raises(FatalError, match="nope"):
        await client.get_json("x")


async def test_malformed_json_body_is_retried() -> None:
    script = Script([(200, b'{"broken', {}), (200, {"fine": True}, {})])
    client, _ = make(script)
    assert await client.get_json("x") == {"fine": True}


async def test_status_and_json_together_a_malformed_body_retried() -> None:
    """A caller that lets a 404 through as an answer (``table``) gets the status with the
    decoded body, and a body cut short is retried as in ``request_json``, never raised as a
    JSON error."""
    script = Script([(200, b'{"broken', {}), (200, {"fine": True}, {}), (404, {"no": 1}, {})])
    client, _ = make(script)
    assert await client.request_status_json("GET", "x") == (200, {"fine": True})
    table = {404: Action.OK}
    assert await client.request_status_json("GET", "y", table=table) == (404, {"no": 1})


async def test_query_token_never_appears_in_errors() -> None:
    client, _ = make(
        Script([(500, {"message": "boom"}, {})]),
        retry=RetryPolicy(max_retries=0),
        auth=QueryToken("token", SecretStr("s3cr3t-token")),
    )
    with pytest.raises(Exception) as info:
        await client.get_json("x")
    assert "s3cr3t" not in str(info.value)


async def test_budget_caps_calls_per_run() -> None:
    budget = RateBudget(max_calls=2)
    client, _ = make(Script([(200, {}, {})]), budget=budget)
    await client.get_json("a")
    await client.get_json("b")
    with pytest.raises(BudgetExhausted):
        await client.get_json("c")


async def test_token_bucket_waits_instead_of_exceeding_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    budget = RateBudget(rate_per_second=10, burst=2, sleep=sleep, monotonic=lambda: now[0])
    for _ in range(12):
        await budget.acquire()
    # 2 from the burst, then 10 more at 10/s: one second of waiting in total.
    assert sum(slept) == pytest.approx(1.0)


def test_budget_is_shared_per_account() -> None:
    ctx = HttpContext()
    a = ctx.budget("airship:1", rate_per_second=5, burst=5, max_calls=None)
    b = ctx.budget("airship:1", rate_per_second=99, burst=1, max_calls=None)
    assert a is b


def test_retry_after_as_http_date() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 22 Nov 2026 12:00:30 GMT", now) == 30
    assert parse_retry_after("soon") is None


async def test_auth_schemes_put_the_secret_where_the_platform_expects_it() -> None:
    script = Script([(200, {}, {})])
    client, _ = make(script, auth=bearer(SecretStr("tok")))
    await client.get_json("x")
    assert script.seen[-1].headers["authorization"] == "Bearer tok"
    client, _ = make(script, auth=QueryToken("token", SecretStr("abc")))
    await client.get_json("x", {"page": 2})
    assert script.seen[-1].query_params["token"] == "abc"
    assert script.seen[-1].query_params["page"] == "2"
    stamp = "Fri, 24 May 2013 13:16:26 GMT"
    client, _ = make(script, auth=TimestampHmacBasic("key", SecretStr("sec"), now=lambda: stamp))
    await client.get_json("x")
    seen = script.seen[-1]
    assert seen.headers["x-request-timestamp"] == stamp
    user, _, password = base64.b64decode(seen.headers["authorization"][6:]).decode().partition(":")
    assert user == "key" and password == hmac_hex_b64("sec", stamp)
    # base64 of the 64-character *hex* digest, as Heyloyalty's official client sends it
    assert len(base64.b64decode(password)) == 64


async def test_page_until_empty_and_opaque_key_and_laravel() -> None:
    async def pages(request: Request) -> Response:
        p = int(request.query_params.get("page", "1"))
        kind = request.path_params["path"]
        if kind == "linked":
            nxt = f"{BASE}/linked?page={p + 1}" if p < 3 else None
            return JSONResponse(
                {
                    "_embedded": {"items": [{"id": p}]},
                    "_links": {"next": {"href": nxt}} if nxt else {},
                }
            )
        if kind == "events":
            return JSONResponse({"events": [{"id": p}] if p <= 3 else []})
        if kind == "units":
            return JSONResponse(
                {
                    "data": [{"id": p}],
                    "current_page": p,
                    "last_page": 2,
                    "next_page_url": "x" if p < 2 else None,
                }
            )
        key = request.query_params.get("paginationKey")
        nxt = {None: "k1", "k1": "k2", "k2": "k2"}[key]
        items = [] if key == "k2" else [{"id": key}]
        return JSONResponse({"tickets": items, "nextPageKey": nxt})

    client, _ = make(pages)
    got = [items async for items, _ in page_until_empty(client, "events", key="events")]
    assert got == [[{"id": 1}], [{"id": 2}], [{"id": 3}]]
    got2 = [items async for items, _ in laravel(client, "units")]
    assert got2 == [[{"id": 1}], [{"id": 2}]]
    linked = [
        items
        async for items, _ in next_link(
            client,
            "linked",
            key="_embedded.items",
            link=lambda b: (b.get("_links", {}).get("next") or {}).get("href"),
        )
    ]
    assert linked == [[{"id": 1}], [{"id": 2}], [{"id": 3}]]
    keys = [pos async for _, pos in opaque_key(client, "diff", key="tickets")]
    assert keys == ["k1", "k2", "k2"], "an empty page keeps the stable key for the next poll"


async def test_default_budget_never_lets_more_than_rate_calls_into_one_second() -> None:
    now = [0.0]
    stamps: list[float] = []

    async def sleep(s: float) -> None:
        now[0] += s

    budget = RateBudget(rate_per_second=10, sleep=sleep, monotonic=lambda: now[0])
    for _ in range(40):
        await budget.acquire()
        stamps.append(now[0])
    worst = max(sum(1 for t in stamps if start <= t < start + 1.0 - 1e-9) for start in stamps)
    assert worst <= 10, "fixed one-second windows must never see more than the rate"
