"""The sandbox framework: stats, faults and admin routes, on a toy platform over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ticketbridge.sandbox import SandboxApp, serving


class Store:
    def __init__(self) -> None:
        self.items: dict[str, int] = {}

    def reset(self) -> None:
        self.items.clear()

    def mutate(self, params: dict[str, Any]) -> dict[str, Any]:
        self.items.update(params)
        return {"changed": sorted(params)}

    def dump(self) -> dict[str, Any]:
        return {"items": self.items}


def toy() -> SandboxApp:
    store = Store()
    sandbox: SandboxApp

    async def put(request: Request) -> Response:
        key = request.path_params["key"]
        sandbox.stats.record_write(f"item:{key}", "update" if key in store.items else "create")
        store.items[key] = int((await request.json())["n"])
        return JSONResponse({"ok": True, "key": key})

    async def get(request: Request) -> Response:
        return JSONResponse({"items": store.items})

    sandbox = SandboxApp(
        "toy",
        store,
        [Route("/items/{key}", put, methods=["PUT"]), Route("/items", get, methods=["GET"])],
    )
    return sandbox


@pytest.fixture
def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=toy().app), base_url="http://toy")


async def test_stats_count_requests_per_route_statuses_and_writes(
    client: httpx.AsyncClient,
) -> None:
    await client.put("/items/a", json={"n": 1})
    await client.put("/items/a", json={"n": 2})
    await client.get("/items")
    stats = (await client.get("/_sandbox/stats")).json()
    assert stats["requests"] == {"PUT /items/{key}": 2, "GET /items": 1}
    assert stats["statuses"] == {"200": 3}
    assert stats["writes"] == {"item:a": {"create": 1, "update": 1}}
    assert stats["write_totals"] == {"create": 1, "update": 1}


async def test_faults_inject_429_with_retry_after_and_5xx_then_reset_clears(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/_sandbox/faults", json={"rate_429": 1.0, "retry_after_s": 3})
    r = await client.get("/items")
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    await client.post("/_sandbox/faults", json={"rate_5xx": 1.0})
    assert (await client.get("/items")).status_code == 503
    await client.post("/_sandbox/faults", json={"rate_5xx": 1.0, "only_methods": ["PUT"]})
    assert (await client.get("/items")).status_code == 200
    assert (await client.put("/items/x", json={"n": 1})).status_code == 503
    await client.post("/_sandbox/reset")
    assert (await client.get("/_sandbox/stats")).json()["total_requests"] == 0
    assert (await client.put("/items/x", json={"n": 1})).status_code == 200


async def test_malformed_body_still_applies_the_write(client: httpx.AsyncClient) -> None:
    await client.post("/_sandbox/faults", json={"malformed_rate": 1.0})
    r = await client.put("/items/k", json={"n": 5})
    with pytest.raises(ValueError):
        r.json()
    assert (await client.get("/_sandbox/data")).json() == {"items": {"k": 5}}


async def test_unknown_fault_setting_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.post("/_sandbox/faults", json={"rate_4O4": 1.0})
    assert r.status_code == 422
    assert "rate_4O4" in r.json()["problems"][0]


def test_rate_limit_under_uvicorn_answers_429_above_the_rate() -> None:
    sandbox = toy()
    with serving([sandbox]) as (running,), httpx.Client(base_url=running.url) as c:
        c.post("/_sandbox/faults", json={"rate_limit_per_s": 5})
        codes = [c.get("/items").status_code for _ in range(12)]
    assert codes.count(200) <= 6 and 429 in codes
    assert running.url.startswith("http://127.0.0.1:")
