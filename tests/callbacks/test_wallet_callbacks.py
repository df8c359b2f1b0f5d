"""Wallet pass callbacks (issue 15.9): the endpoint ticketbridge serves, registration with the
project, and install status per ticket, over real HTTP (ASGI transports) and a real store.

The Wallet sandbox delivers its simulated installs to our endpoint mounted at ``HOOKS``, with
the headers it was registered with, exactly as it POSTs to a URL over the network.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.connectors.airship_wallet.support import (
    ANDROID,
    BASE,
    HOOKS,
    IOS,
    PROJECT,
    Harness,
    make_ticket,
)
from tests.connectors.airship_wallet.test_destination import create
from ticketbridge import callbacks
from ticketbridge.connectors.airship_wallet import (
    AirshipWalletConfig,
    WalletCallbacks,
    create_sandbox,
)
from ticketbridge.engine.state import LedgerRow, SqlStateStore, open_store
from ticketbridge.errors import AuthError, ConfigError
from ticketbridge.http import HttpContext
from ticketbridge.links import link_rows
from ticketbridge.sandbox import free_port

CB_SECRET = "cb-secret-0123456789abcdef"
HEADER = "X-Ticketbridge-Callback-Secret"
SYNC = "ticketco-tickets-to-wallet"


def wallet_config(**callback: Any) -> AirshipWalletConfig:
    return AirshipWalletConfig(
        platform="airship_wallet",
        base_url=BASE + "/v1",
        project_id=PROJECT,
        project_key="sandbox-wallet-key",
        project_secret=SecretStr("sandbox-wallet-secret"),
        ios_template_id=IOS,
        android_template_id=ANDROID,
        callbacks=WalletCallbacks(
            **{"url": HOOKS + "/wallet", "secret": SecretStr(CB_SECRET), **callback}
        ),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.close()


class Venue:
    """Our callback endpoint (``create_app``) mounted at HOOKS, and a Wallet sandbox that
    delivers its callbacks there."""

    def __init__(self, store: SqlStateStore, **callback: Any) -> None:
        self.store = store
        self.config = wallet_config(**callback)
        self.app = callbacks.create_app("wallet", self.config, store)
        hooks = HttpContext()
        hooks.mount(HOOKS, httpx.ASGITransport(app=self.app))
        self.harness = Harness(sandbox=create_sandbox(callback_context=hooks))

    async def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url=HOOKS) as http:
            content = orjson.dumps(body) if body is not None else kw.pop("content", b"")
            return await http.request(
                kw.pop("method", "POST"), path, content=content, headers=headers or {}
            )


@pytest.fixture
async def venue(store: SqlStateStore) -> AsyncIterator[Venue]:
    v = Venue(store)
    yield v
    await v.harness.aclose()


def event(external_id: str = "T1", template: int = IOS, **extra: Any) -> dict[str, Any]:
    return {
        "passId": 7,
        "templateId": template,
        "serialNumber": "abc",
        "createdAt": "2026-12-01T10:00:00Z",
        "updatedAt": "2026-12-01T10:05:00Z",
        "externalId": external_id,
        "platform": "ios",
        **extra,
    }


GOOD = {HEADER: CB_SECRET}


# --- refused without the secret ---------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {HEADER: "wrong-secret-0123456789"},
        {HEADER: CB_SECRET[:-1]},
        {HEADER: CB_SECRET + "x"},
        {"Authorization": CB_SECRET},  # the right value in another header
    ],
)
async def test_a_callback_without_the_secret_is_refused_401_and_records_nothing(
    venue: Venue, headers: dict[str, str]
) -> None:
    for path in ("/wallet/pass/install", "/wallet/pass/uninstall", "/no/such/path"):
        answer = await venue.post(path, event(), headers)
        assert answer.status_code == 401, path
        assert CB_SECRET not in answer.text
        assert "wrong-secret" not in answer.text
    assert venue.store.get_pass_installs(str(PROJECT), ["T1"]) == {}


async def test_with_the_secret_install_then_uninstall_is_recorded(venue: Venue) -> None:
    # Header names are case-insensitive.
    answer = await venue.post("/wallet/pass/install", event(), {HEADER.lower(): CB_SECRET})
    assert answer.status_code == 200 and answer.json() == {"ok": True, "recorded": True}
    [got] = venue.store.get_pass_installs(str(PROJECT), ["T1"])["T1"]
    assert (got.status, got.template_id, got.pass_id, got.platform) == (
        "installed",
        str(IOS),
        "7",
        "ios",
    )
    later = event(updatedAt="2026-12-01T11:00:00Z")
    assert (await venue.post("/wallet/pass/uninstall", later, GOOD)).status_code == 200
    [got] = venue.store.get_pass_installs(str(PROJECT), ["T1"])["T1"]
    assert got.status == "uninstalled"
    # A late, older install (delivered out of order) does not undo the uninstall.
    late = await venue.post("/wallet/pass/install", event(), GOOD)
    assert late.status_code == 200 and late.json()["recorded"] is False
    assert venue.store.get_pass_installs(str(PROJECT), ["T1"])["T1"][0].status == "uninstalled"


async def test_with_the_secret_bad_requests_get_their_own_answers(venue: Venue) -> None:
    assert (await venue.post("/wallet/pass/elsewhere", event(), GOOD)).status_code == 404
    assert (await venue.post("/wallet/pass/install", method="GET", headers=GOOD)).status_code == 405
    not_json = await venue.post("/wallet/pass/install", headers=GOOD, content=b"{not json")
    assert not_json.status_code == 400 and "not a pass event" in not_json.json()["error"]
    no_pass = await venue.post("/wallet/pass/install", {"platform": "ios"}, GOOD)
    assert no_pass.status_code == 400 and "names no pass" in no_pass.json()["error"]
    huge = await venue.post("/wallet/pass/install", event(serialNumber="x" * 70_000), GOOD)
    assert huge.status_code == 413
    personalize = await venue.post("/wallet/pass/7/personalize", event(name="Jane"), GOOD)
    assert personalize.status_code == 200
    assert venue.store.get_pass_installs(str(PROJECT), ["T1"]) == {}, "none recorded"


async def test_a_pass_without_external_id_is_kept_under_its_pass_id(venue: Venue) -> None:
    answer = await venue.post("/pass/install", event(externalId=None, passId="p-9"), GOOD)
    assert answer.status_code == 200, "the base URL's path may be stripped by a proxy"
    assert venue.store.get_pass_installs(str(PROJECT), ["pass:p-9"])["pass:p-9"][0].pass_id == (
        "p-9"
    )


# --- registration and the whole loop with the sandbox ---------------------------------------


def _ledger(store: SqlStateStore, tickets: list[str]) -> None:
    """What a run of the sync leaves in the ledger for those tickets."""
    lease = store.acquire_lease(SYNC, "test", 60)
    assert lease is not None
    run_id = store.start_run(SYNC, "run", lease)
    rows = [
        LedgerRow(f"ticket:test:{n}", {"pass": "h"}, {"link_external": n, "url": f"u/{n}"})
        for n in tickets
    ]
    store.commit_batch(lease, run_id, ledger=rows)
    store.release_lease(lease)


def statuses(store: SqlStateStore) -> dict[str, str]:
    return {r["ticket"]: r["install_status"] for r in link_rows(store, SYNC, str(PROJECT))}


async def test_registered_with_the_sandbox_whose_installs_reach_links(venue: Venue) -> None:
    h = venue.harness
    await create(h.destination(), [make_ticket("T1"), make_ticket("T2"), make_ticket("T3")])
    _ledger(venue.store, ["T1", "T2", "T3"])
    assert set(statuses(venue.store).values()) == {""}, "nothing reported yet"

    assert await callbacks.register("wallet", venue.config, h.ctx) == "POST"
    registered = (await h.data())["callback"]
    assert registered == {"baseUrl": HOOKS + "/wallet", "headers": {HEADER: CB_SECRET}}

    await h.admin("POST", "mutate", {"op": "install", "external_ids": ["T1", "T2"]})
    sent = await h.store.drain_callbacks()
    assert [s["status"] for s in sent] == [200] * 4, "the sandbox used the registered header"
    await h.admin("POST", "mutate", {"op": "uninstall", "external_ids": ["T2"]})
    await h.store.drain_callbacks()
    assert statuses(venue.store) == {
        "T1": "installed (android, ios)",
        "T2": "uninstalled (android, ios)",
        "T3": "",
    }

    # Registered with another secret, the sandbox's callbacks are refused and change nothing.
    other = wallet_config(secret=SecretStr("another-secret-0123456789"))
    await callbacks.register("wallet", other, h.ctx)
    await h.admin("POST", "mutate", {"op": "install", "external_ids": ["T3"]})
    assert [s["status"] for s in await h.store.drain_callbacks()][-2:] == [401, 401]
    assert statuses(venue.store)["T3"] == ""


async def test_links_show_a_pass_installed_on_one_platform_only(
    venue: Venue, store: SqlStateStore
) -> None:
    _ledger(store, ["T1"])
    await venue.post("/wallet/pass/install", event("T1", ANDROID, platform="android"), GOOD)
    await venue.post(
        "/wallet/pass/uninstall", event("T1", IOS, updatedAt="2026-12-02T00:00:00Z"), GOOD
    )
    assert statuses(store) == {"T1": "installed (android), uninstalled (ios)"}
    rows = list(link_rows(store, SYNC, "99999"))
    assert rows[0]["install_status"] == "", "another project's passes are not this sync's"


async def test_register_replaces_with_put_when_the_project_refuses_a_second_post() -> None:
    seen: list[tuple[str, Any]] = []

    async def settings(request: Request) -> JSONResponse:
        seen.append((request.method, orjson.loads(await request.body())))
        if request.method == "POST":
            return JSONResponse(
                {"code": 400, "description": "Bad Request", "details": "exists"}, 400
            )
        return JSONResponse({"ok": True})

    async def refuse(request: Request) -> JSONResponse:
        return JSONResponse({"code": 401, "description": "Unauthorized"}, 401)

    for app, expect in (
        (Starlette(routes=[Route("/v1/{p:path}", settings, methods=["POST", "PUT"])]), "PUT"),
        (Starlette(routes=[Route("/v1/{p:path}", refuse, methods=["POST", "PUT"])]), None),
    ):
        ctx = HttpContext()
        ctx.mount(BASE, httpx.ASGITransport(app=app))
        if expect is None:
            with pytest.raises(AuthError) as caught:
                await callbacks.register("wallet", wallet_config(), ctx)
            assert CB_SECRET not in str(caught.value)
        else:
            assert await callbacks.register("wallet", wallet_config(), ctx) == expect
    assert [m for m, _ in seen] == ["POST", "PUT"]
    assert seen[1][1] == {"baseUrl": HOOKS + "/wallet", "headers": {HEADER: CB_SECRET}}


# --- settings ---------------------------------------------------------------------------------


def test_callback_settings_are_validated_and_the_secret_is_redacted() -> None:
    for bad, needle in (
        ({"secret": SecretStr("short")}, "at least 16"),
        ({"header": "X Secret"}, "not an HTTP header name"),
        ({"url": "ftp://venue.example/w"}, "not an http"),
        ({"url": "https://venue.example/w?token=1"}, "no query"),
    ):
        with pytest.raises(ValidationError, match=needle):
            wallet_config(**bad)
    cfg = wallet_config(url=None, port=8499)
    assert cfg.callbacks is not None and cfg.callbacks.base_url == "http://127.0.0.1:8499"
    assert CB_SECRET in cfg.secrets(), "known to the log redaction"
    assert CB_SECRET not in repr(cfg)


def test_serving_is_refused_for_an_empty_secret_a_shared_port_or_a_port_in_use() -> None:
    empty = wallet_config(secret=SecretStr(""))  # loaded without secrets (read-only commands)
    with pytest.raises(ConfigError, match="secret is empty"):
        callbacks.check_servable({"wallet": empty}, set())
    port = free_port()
    one = wallet_config(port=port)
    with pytest.raises(ConfigError, match="already served"):
        callbacks.check_servable({"wallet": one}, {("127.0.0.1", port)})
    with pytest.raises(ConfigError, match="already served"):
        callbacks.check_servable({"a": one, "b": wallet_config(port=port)}, set())

    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        with pytest.raises(ConfigError, match="in use"):
            callbacks.check_servable({"wallet": one}, set())
    callbacks.check_servable({"wallet": one}, set())
