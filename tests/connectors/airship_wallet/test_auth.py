"""Basic and OAuth 2.0 client credentials against the sandbox; secrets never leak."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from ticketbridge.connectors.airship_wallet.client import AirshipWalletClient
from ticketbridge.errors import AuthError

from .support import BASE, CLIENT_SECRET, PROJECT, SECRET, FakeClock, Harness, make_ticket
from .test_destination import create

TOKEN = "POST /token"
PROJECT_GET = "GET /v1/project/{project_id}"


def client_of(dest: object) -> AirshipWalletClient:
    client = dest.client  # type: ignore[attr-defined]
    assert isinstance(client, AirshipWalletClient)
    return client


async def test_sandbox_answers_406_without_api_revision(harness: Harness) -> None:
    auth = httpx.BasicAuth("sandbox-wallet-key", SECRET)
    async with httpx.AsyncClient(transport=harness.transport, base_url=BASE, auth=auth) as http:
        missing = await http.get(f"/v1/project/{PROJECT}")
        wrong = await http.get(f"/v1/project/{PROJECT}", headers={"Api-Revision": "1.0"})
        right = await http.get(f"/v1/project/{PROJECT}", headers={"Api-Revision": "1.2"})
    assert missing.status_code == wrong.status_code == 406
    assert set(missing.json()) == {"code", "description", "details"}
    assert missing.json()["code"] == 406
    assert right.status_code == 200


async def test_every_request_carries_api_revision(harness: Harness) -> None:
    await create(harness.destination(), [make_ticket("T1")])
    assert "406" not in (await harness.stats())["statuses"]


async def test_basic_auth_works(harness: Harness) -> None:
    dest = harness.destination("basic")
    assert all(r.ok for r in await dest.check())
    await create(dest, [make_ticket("T1")])
    assert TOKEN not in await harness.requests()


@pytest.mark.parametrize("auth", ["basic", "oauth"])
async def test_wrong_credentials_raise_auth_error_without_the_secret(
    harness: Harness, auth: str
) -> None:
    wrong = "wrong-" + (SECRET if auth == "basic" else CLIENT_SECRET)
    field = "project_secret" if auth == "basic" else "client_secret"
    overrides: dict[str, Any] = {field: wrong}
    dest = harness.destination(auth, **overrides)
    with pytest.raises(AuthError) as caught:
        await client_of(dest).get_project()
    assert caught.value.platform == "airship_wallet" and caught.value.status == 401
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)
    assert wrong not in repr(dest.config) and wrong not in repr(client_of(dest).oauth)
    results = await dest.check()
    assert results[0].name == "credentials" and not results[0].ok
    assert all(wrong not in r.detail for r in results)


async def test_oauth_concurrent_requests_share_one_token(harness: Harness) -> None:
    # Latency on every request, so the 25 really overlap (in-process calls otherwise run
    # one after the other and would share a token even without the lock).
    await harness.admin("POST", "faults", {"latency_ms": 5, "slow_rate": 1.0})
    client = client_of(harness.destination("oauth"))
    await asyncio.gather(*(client.get_project() for _ in range(25)))
    requests = await harness.requests()
    assert requests[TOKEN] == 1 and requests[PROJECT_GET] == 25
    assert client.oauth is not None and client.oauth.fetches == 1


async def test_oauth_token_is_renewed_before_it_expires() -> None:
    clock = FakeClock()
    h = Harness(token_ttl_s=1.0, clock=clock)
    try:
        client = client_of(h.destination("oauth", clock=clock))
        await client.get_project()
        clock.advance(0.5)
        await client.get_project()
        assert (await h.requests())[TOKEN] == 1  # still valid: reused
        clock.advance(0.45)  # inside the renewal margin (a tenth of the lifetime)
        await client.get_project()
        stats = await h.stats()
        assert stats["requests"][TOKEN] == 2
        assert "401" not in stats["statuses"], "renewed before the sandbox refused it"
    finally:
        await h.aclose()


async def test_a_401_renews_the_token_once_and_retries(harness: Harness) -> None:
    client = client_of(harness.destination("oauth"))
    await client.get_project()
    await harness.admin("POST", "mutate", {"op": "revoke_tokens"})  # Wallet forgot the token
    assert (await client.get_project()).id == PROJECT
    stats = await harness.stats()
    assert stats["requests"][TOKEN] == 2 and stats["statuses"]["401"] == 1
    assert stats["requests"][PROJECT_GET] == 3  # the first, the refused one, its retry
    # Refused together, renewed once: every request refused with the old token shares it.
    await harness.admin("POST", "mutate", {"op": "revoke_tokens"})
    await asyncio.gather(*(client.get_project() for _ in range(5)))
    stats = await harness.stats()
    assert stats["requests"][TOKEN] == 3
    assert stats["requests"][PROJECT_GET] == 3 + 5 + stats["statuses"]["401"] - 1


async def test_a_second_401_is_an_auth_error() -> None:
    h = Harness(token_ttl_s=0.0)  # every token is expired as soon as it is issued
    try:
        client = client_of(h.destination("oauth"))
        with pytest.raises(AuthError):
            await client.get_project()
        stats = await h.stats()
        assert stats["requests"][TOKEN] == 2 and stats["statuses"]["401"] == 2
    finally:
        await h.aclose()


async def test_token_lifetime_is_an_admin_setting(harness: Harness) -> None:
    answer = await harness.admin("POST", "mutate", {"op": "token_ttl", "seconds": 5})
    assert answer["token_ttl_s"] == 5
    async with httpx.AsyncClient(transport=harness.transport, base_url=BASE) as http:
        token = await http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            auth=("sandbox-wallet-client", CLIENT_SECRET),
        )
    assert token.json()["expires_in"] == 5 and token.json()["token_type"] == "Bearer"


async def test_client_credentials_in_the_body_work_too(harness: Harness) -> None:
    client = client_of(harness.destination("oauth", oauth_client_auth="body"))
    assert (await client.get_project()).id == PROJECT


async def test_refreshing_bearer_fetches_once_for_concurrent_waiters() -> None:
    from pydantic import SecretStr

    from ticketbridge.http.auth import RefreshingBearer

    fetched: list[str] = []

    async def slow_fetch() -> tuple[SecretStr, float]:
        await asyncio.sleep(0.01)  # long enough for every waiter to queue on the lock
        fetched.append(f"tok{len(fetched)}")
        return SecretStr(fetched[-1]), 3600.0

    auth = RefreshingBearer(slow_fetch)
    tokens = await asyncio.gather(*(auth.token() for _ in range(20)))
    assert fetched == ["tok0"] and {t.get_secret_value() for t in tokens} == {"tok0"}
    renewed = await asyncio.gather(*(auth.renew(tokens[0]) for _ in range(20)))
    assert fetched == ["tok0", "tok1"] and {t.get_secret_value() for t in renewed} == {"tok1"}
    assert "tok1" not in repr(auth)
