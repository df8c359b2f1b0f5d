"""The Ticketmaster sandbox as an API: auth, Apigee faults, rate headers, paging, data, admin."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from ticketbridge.connectors.ticketmaster import CONNECTOR, Paths, create_sandbox
from ticketbridge.connectors.ticketmaster.sandbox import (
    BASE,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
)
from ticketbridge.connectors.ticketmaster.sandbox_store import parse
from ticketbridge.sandbox import SandboxApp

from .support import TODAY, Harness

RATE_HEADERS = ("Rate-Limit", "Rate-Limit-Available", "Rate-Limit-Over", "Rate-Limit-Reset")


def errorcode(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"fault"} and body["fault"]["faultstring"]
    return str(body["fault"]["detail"]["errorcode"])


async def test_auth_checks_key_then_credentials_then_market(harness: Harness) -> None:
    no_key = await harness.raw.get(
        BASE + "/DK/customers", auth=(SANDBOX_USERNAME, SANDBOX_PASSWORD)
    )
    assert no_key.status_code == 401
    assert errorcode(no_key) == "steps.oauth.v2.FailedToResolveAPIKey"
    bad_key = await harness.raw.get(
        BASE + "/DK/customers", params={"apikey": "nope"}, auth=(SANDBOX_USERNAME, SANDBOX_PASSWORD)
    )
    assert (bad_key.status_code, errorcode(bad_key)) == (401, "oauth.v2.InvalidApiKey")
    assert bad_key.json()["fault"]["faultstring"] == "Invalid ApiKey"
    bad_password = await harness.get("/DK/customers", auth=(SANDBOX_USERNAME, "wrong"))
    assert (bad_password.status_code, errorcode(bad_password)) == (
        401,
        "basicauth.InvalidCredentials",
    )
    no_basic = await harness.get("/DK/customers", auth=None)
    assert no_basic.status_code == 401
    market = await harness.get("/SE/customers")
    assert (market.status_code, errorcode(market)) == (404, "clientdata.UnknownMarket")
    ok = await harness.get("/DK/customers")
    assert ok.status_code == 200
    for response in (no_key, bad_key, bad_password, market, ok):
        assert all(h in response.headers for h in RATE_HEADERS)


async def test_rate_headers_count_down_the_daily_quota(harness: Harness) -> None:
    first = await harness.get("/DK/customers", size=1)
    second = await harness.get("/DK/customers", size=1)
    assert first.headers["Rate-Limit"] == "5000"
    available = int(first.headers["Rate-Limit-Available"])
    assert int(second.headers["Rate-Limit-Available"]) == available - 1
    assert second.headers["Rate-Limit-Over"] == "0"
    assert int(second.headers["Rate-Limit-Reset"]) > 1_700_000_000_000  # epoch ms


async def test_quota_violation_past_the_daily_quota() -> None:
    h = Harness(create_sandbox(records=5, today=TODAY, spike_arrest_per_s=None, daily_quota=2))
    try:
        assert [(await h.get("/DK/customers")).status_code for _ in range(2)] == [200, 200]
        over = await h.get("/DK/customers")
        assert (over.status_code, errorcode(over)) == (429, "policies.ratelimit.QuotaViolation")
        assert over.headers["Rate-Limit-Available"] == "0"
        assert over.headers["Rate-Limit-Over"] == "1"
    finally:
        await h.aclose()


async def test_spike_arrest_above_five_per_second() -> None:
    h = Harness(create_sandbox(records=5, today=TODAY))  # the default: 5 per second
    try:
        statuses = [(await h.get("/DK/customers", size=1)) for _ in range(7)]
        assert [r.status_code for r in statuses[:5]] == [200] * 5
        arrested = statuses[5]
        assert arrested.status_code == 429
        assert errorcode(arrested) == "policies.ratelimit.SpikeArrestViolation"
        assert arrested.headers["Retry-After"] == "1"
        assert all(h in arrested.headers for h in RATE_HEADERS)
    finally:
        await h.aclose()


async def test_page_object_and_deep_paging_cap(harness: Harness) -> None:
    body = (await harness.get("/DK/customers", page=2, size=40)).json()
    assert body["page"] == {"size": 40, "totalElements": 300, "totalPages": 8, "number": 2}
    assert len(body["customers"]) == 40
    assert "next" in body["_links"] and SANDBOX_API_KEY not in str(body["_links"])
    last = (await harness.get("/DK/customers", page=7, size=40)).json()
    assert len(last["customers"]) == 20 and "next" not in last["_links"]
    assert (await harness.get("/DK/customers", page=9, size=111)).status_code == 200  # 999
    deep = await harness.get("/DK/customers", page=10, size=100)  # 1000: refused
    assert deep.status_code == 400 and "paging" in errorcode(deep).lower()
    assert (await harness.get("/DK/customers", size=201)).status_code == 400
    assert (await harness.get("/DK/customers", sort="updated_at,desc")).status_code == 400
    bad = await harness.get("/DK/customers", updated_since="last tuesday")
    assert bad.status_code == 400


async def test_lists_are_ascending_and_bounded_by_update_time(harness: Harness) -> None:
    since, until = TODAY - timedelta(days=200), TODAY - timedelta(days=100)
    body = (
        await harness.get(
            "/DK/customers",
            size=200,
            updated_since=since.isoformat().replace("+00:00", "Z"),
            updated_until=until.isoformat(),
        )
    ).json()
    stamps = [parse(c["updated_at"]) for c in body["customers"]]
    assert stamps == sorted(stamps) and all(since <= s < until for s in stamps)
    assert {str(c["id"]) for c in body["customers"]} == harness.store.ids("customers", since, until)


async def test_one_customer(harness: Harness) -> None:
    found = await harness.get("/DK/customers/2000001")
    assert found.status_code == 200 and found.json()["id"] == 2000001
    missing = await harness.get("/DK/customers/1")
    assert (missing.status_code, errorcode(missing)) == (404, "clientdata.CustomerNotFound")


def test_seeded_data_has_what_the_integration_must_handle() -> None:
    sb = create_sandbox(
        seed=3, records=1000, today=TODAY, spike_arrest_per_s=None, birth_date_format="%d/%m/%Y"
    )
    dump = sb.store.dump()
    customers = list(sb.store.customers.values())  # type: ignore[attr-defined]
    assert 0.55 < dump["consent"]["email"] / 1000 < 0.65
    only_sms = [
        c
        for c in customers
        if (c.get("marketing_consent") or {}).get("sms") is True
        and not c["marketing_consent"].get("email")
    ]
    assert only_sms and dump["consent"]["neither"] > 0 and dump["consent"]["never_asked"] > 0
    mobiles = [c["mobile"] for c in customers]
    assert any(isinstance(m, str) and m.startswith("+45 ") for m in mobiles)
    assert any(isinstance(m, str) and m.startswith("0045") for m in mobiles)
    assert any(isinstance(m, str) and re.fullmatch(r"\d{8}", m) for m in mobiles)
    assert any(isinstance(m, int) for m in mobiles) and None in mobiles
    emails = [c["email"] for c in customers if isinstance(c["email"], str)]
    assert any(e.count("@") != 1 or e.endswith("@") or " " in e for e in emails)
    assert any("cards" in c and isinstance(c["cards"]["Cardnumber"], int) for c in customers)
    assert all(
        re.fullmatch(r"\d\d/\d\d/\d{4}", c["birth_date"]) for c in customers if "birth_date" in c
    )
    years = {parse(c["updated_at"]) >= TODAY - timedelta(days=365) for c in customers}
    assert years == {True, False}  # a two-year backfill finds data in both years
    assert set(dump["orders_by_status"]) == {"COMPLETED", "REFUNDED", "CANCELLED"}
    orders = list(sb.store.orders.values())  # type: ignore[attr-defined]
    assert {len(o["tickets"]) for o in orders} >= {1, 2, 3}
    assert all(o["currency"] == "DKK" and o["tickets"][0]["barcode"] for o in orders)


async def test_same_seed_same_responses() -> None:
    async def pages(sb: SandboxApp) -> list[Any]:
        h = Harness(sb)
        try:
            return [
                (await h.get(path, page=n, size=50)).json()
                for path in ("/DK/customers", "/DK/orders")
                for n in range(3)
            ]
        finally:
            await h.aclose()

    def make(seed: int) -> SandboxApp:
        return create_sandbox(seed=seed, records=120, today=TODAY, spike_arrest_per_s=None)

    assert await pages(make(5)) == await pages(make(5))
    assert await pages(make(5)) != await pages(make(6))


async def test_mutate_bumps_what_it_touches_and_reset_restores(harness: Harness) -> None:
    before = harness.store.dump()
    newest = max(parse(c["updated_at"]) for c in harness.store.customers.values())
    result = await harness.admin(
        "mutate",
        {"share": 0.05, "consent_flip_share": 0.02, "new_customers": 3, "new_orders": 5, "seed": 1},
    )
    assert len(result["changed"]) == 15 and len(result["consent_flipped"]) == 6
    assert len(result["new_customers"]) == 3 and len(result["new_orders"]) == 5
    touched = {
        str(c) for c in result["changed"] + result["consent_flipped"] + result["new_customers"]
    }
    assert harness.store.ids("customers", newest + timedelta(seconds=1)) == touched
    assert harness.store.ids("orders", newest + timedelta(seconds=1)) == set(result["new_orders"])
    flipped = harness.store.customers[result["consent_flipped"][0]]
    assert flipped["marketing_consent"]["updated_at"] == result["updated_at"]
    await harness.admin("reset", {})
    assert harness.store.dump() == before
    again = await harness.admin(
        "mutate",
        {"share": 0.05, "consent_flip_share": 0.02, "new_customers": 3, "new_orders": 5, "seed": 1},
    )
    ids = ("changed", "consent_flipped", "new_customers", "new_orders")
    assert {k: again[k] for k in ids} == {k: result[k] for k in ids}  # deterministic


async def test_injected_faults_use_the_apigee_shape(harness: Harness) -> None:
    await harness.admin("faults", {"rate_5xx": 1.0})
    response = await harness.get("/DK/customers")
    assert response.status_code == 503
    assert errorcode(response) == "messaging.adaptors.http.flow.ServiceUnavailable"
    assert all(h in response.headers for h in RATE_HEADERS)
    await harness.admin("faults", {"rate_429": 1.0, "retry_after_s": 0})
    limited = await harness.get("/DK/customers")
    assert errorcode(limited) == "policies.ratelimit.SpikeArrestViolation"


async def test_paths_override_is_served() -> None:
    paths = Paths(
        customers="markets/{market}/members",
        customer="markets/{market}/members/{id}",
        customers_list="_embedded.members",
        updated_since="from",
    )
    h = Harness(create_sandbox(records=10, today=TODAY, spike_arrest_per_s=None, paths=paths))
    try:
        body = (await h.get("/markets/DK/members")).json()
        assert len(body["_embedded"]["members"]) == 10
        assert (await h.get("/DK/customers")).status_code == 404
    finally:
        await h.aclose()


def test_connector_registration() -> None:
    assert CONNECTOR.sandbox is not None
    assert CONNECTOR.platform == "ticketmaster" and CONNECTOR.sandbox.create is create_sandbox
    cfg = CONNECTOR.sandbox.config("http://127.0.0.1:8403")
    assert cfg["base_url"] == "http://127.0.0.1:8403" + BASE
    assert cfg["api_key"] == "${TM_API_KEY}" and cfg["market"] == "DK"
    assert CONNECTOR.sandbox.env["TM_API_KEY"] == SANDBOX_API_KEY
    assert CONNECTOR.sandbox.env["TM_PASSWORD"] == SANDBOX_PASSWORD
    assert cfg["username"] == SANDBOX_USERNAME and "TM_USERNAME" not in CONNECTOR.sandbox.env
    expanded = {
        k: v.replace("${TM_API_KEY}", SANDBOX_API_KEY).replace("${TM_PASSWORD}", SANDBOX_PASSWORD)
        for k, v in cfg.items()
    }
    config = CONNECTOR.config.model_validate(expanded)
    assert config.default_region == "DK"


@pytest.mark.parametrize("records", [0, 1])
async def test_tiny_markets(records: int) -> None:
    h = Harness(create_sandbox(records=records, today=TODAY, spike_arrest_per_s=None))
    try:
        body = (await h.get("/DK/customers")).json()
        assert body["page"]["totalElements"] == records
    finally:
        await h.aclose()
