"""Fixtures: an in-process ACME sandbox reached over real HTTP semantics (ASGI transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ticketbridge.connectors.acme import AcmeClient, AcmeConfig, create_sandbox
from ticketbridge.http import HttpContext
from ticketbridge.sandbox import SandboxApp

BASE = "http://acme.sandbox.test"
KEY = {"x-acme-api-key": "sandbox-acme-key"}
LOGIN = {
    "x-acme-user-name": "api_tiqets",
    "x-acme-password": "sandbox-acme-password",
    "x-acme-tenantId": "1234",
}


def config(**overrides: Any) -> AcmeConfig:
    settings: dict[str, Any] = {
        "platform": "acme",
        "base_url": BASE,
        "api_key": SecretStr("sandbox-acme-key"),
        "username": "api_tiqets",
        "password": SecretStr("sandbox-acme-password"),
        "tenant_id": "1234",
        **overrides,
    }
    return AcmeConfig(**settings)


@pytest.fixture
def sandbox() -> SandboxApp:
    return create_sandbox()


@pytest.fixture
async def http(sandbox: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=KEY) as client:
        yield client


@pytest.fixture
async def session(http: httpx.AsyncClient) -> dict[str, str]:
    """Headers of a logged-in staff call."""
    body = (await http.get("/v2/b2b/customer/session", headers=LOGIN)).json()
    return {"x-acme-session": body["session"]}


@pytest.fixture
async def client(sandbox: SandboxApp) -> AsyncIterator[AcmeClient]:
    sleeps: list[float] = []

    async def no_wait(seconds: float) -> None:
        sleeps.append(seconds)

    ctx = HttpContext(sleep=no_wait)
    ctx.mount(BASE, httpx.ASGITransport(app=sandbox.app))
    made = AcmeClient(config(), ctx)
    yield made
    await made.aclose()
