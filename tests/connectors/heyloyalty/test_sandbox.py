"""The sandbox on its own: auth as platforms.md 5.2, lists, members, filters, paging, errors,
tracking import, admin routes."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx

from ticketbridge.connectors.heyloyalty import create_sandbox

from .support import API_KEY, BASE, SECRET, Harness

LIST = "/loyalty/v1/lists/4711"


def stamp(delta: timedelta = timedelta(0)) -> str:
    return format_datetime(datetime.now(UTC) + delta, usegmt=True)


async def test_signature_as_the_official_client_makes_it(harness: Harness) -> None:
    ok = await harness.signed("GET", "/loyalty/v1/lists")
    assert ok.status_code == 200
    assert [lst["id"] for lst in ok.json()] == [4711, 4712]


async def test_wrong_secret_missing_header_and_stale_timestamp_are_401(harness: Harness) -> None:
    wrong = await harness.signed("GET", "/loyalty/v1/lists", secret="nope")
    assert wrong.status_code == 401 and wrong.json() == {"error": "Invalid signature", "code": 401}
    stale = await harness.signed("GET", "/loyalty/v1/lists", stamp=stamp(-timedelta(minutes=20)))
    assert stale.status_code == 401 and "timestamp" in stale.json()["error"]
    future = await harness.signed("GET", "/loyalty/v1/lists", stamp=stamp(timedelta(minutes=16)))
    assert future.status_code == 401
    recent = await harness.signed("GET", "/loyalty/v1/lists", stamp=stamp(-timedelta(minutes=5)))
    assert recent.status_code == 200
    async with httpx.AsyncClient(transport=harness.transport, base_url=BASE) as http:
        bare = await http.get("/loyalty/v1/lists", auth=(API_KEY, "x"))
    assert bare.status_code == 401 and "X-Request-Timestamp" in bare.json()["error"]


async def test_skew_is_configurable_and_raw_digest_is_accepted() -> None:
    strict = Harness(create_sandbox(max_skew_s=60))
    old = await strict.signed("GET", "/loyalty/v1/lists", stamp=stamp(-timedelta(minutes=2)))
    assert old.status_code == 401
    when = stamp()
    raw = base64.b64encode(hmac.new(SECRET.encode(), when.encode(), hashlib.sha256).digest())
    async with httpx.AsyncClient(transport=strict.transport, base_url=BASE) as http:
        answer = await http.get(
            "/loyalty/v1/lists", auth=(API_KEY, raw.decode()), headers={"X-Request-Timestamp": when}
        )
    assert answer.status_code == 200


async def test_list_has_fixed_and_custom_fields(harness: Harness) -> None:
    body = (await harness.signed("GET", LIST)).json()
    kinds = {f["name"]: f["type"] for f in body["fields"]}
    assert kinds["email"] == kinds["mobile"] == kinds["birthdate"] == "fixed"
    assert kinds["reference"] == "fixed" and kinds["Cardnumber"] == "custom"
    assert "ticketmaster_id" not in kinds  # a standard list: only what the guide adds
    missing = await harness.signed("GET", "/loyalty/v1/lists/999")
    assert missing.status_code == 404 and missing.json() == {"error": "List not found", "code": 404}


async def test_member_crud_and_patch_reactivates(harness: Harness) -> None:
    made = await harness.signed(
        "POST",
        LIST + "/members",
        json={
            "email": "a@example.dk",
            "firstname": "A",
            "mobile": "+45 20 00 00 01",
            "skipOptIn": 1,
        },
    )
    assert made.status_code == 201
    member_id = made.json()["id"]
    got = (await harness.signed("GET", f"{LIST}/members/{member_id}")).json()
    assert got["mobile"] == "20000001" and got["status"]["status"] == "active"
    await harness.admin("POST", "mutate", {"unsubscribe": ["a@example.dk"]})
    patched = await harness.signed("PATCH", f"{LIST}/members/{member_id}", json={"lastname": "B"})
    assert patched.status_code == 204
    got = (await harness.signed("GET", f"{LIST}/members/{member_id}")).json()
    assert got["status"]["status"] == "active" and got["firstname"] == "A"
    put = await harness.signed("PUT", f"{LIST}/members/{member_id}", json={"email": "a@example.dk"})
    assert put.status_code == 204
    assert (await harness.signed("GET", f"{LIST}/members/{member_id}")).json()["firstname"] is None
    assert (await harness.signed("DELETE", f"{LIST}/members/{member_id}")).status_code == 204
    assert (await harness.signed("GET", f"{LIST}/members/{member_id}")).status_code == 404
    writes = (await harness.stats())["writes"][f"member:{member_id}"]
    assert writes == {"create": 1, "update": 2, "delete": 1}


async def test_upsert_accepts_form_fields_like_the_php_client(harness: Harness) -> None:
    form = {
        "unique_field": "mobile",
        "member[mobile]": "+4512345678",
        "member[firstname]": "Form",
        "skipOptIn": "1",
        "search_temporary": "1",
    }
    first = (await harness.signed("POST", LIST + "/members/upsert", data=form)).json()
    assert first["type"] == "create"
    second = (
        await harness.signed(
            "POST",
            LIST + "/members/upsert",
            json={"unique_field": "mobile", "member": {"mobile": "12345678", "lastname": "Json"}},
        )
    ).json()
    assert second == {"type": "update", "member_id": first["member_id"]}


async def test_validation_errors_are_422_with_field_messages(harness: Harness) -> None:
    bad = await harness.signed(
        "POST",
        LIST + "/members/upsert",
        json={
            "unique_field": "email",
            "member": {"email": "x@example.dk", "Shoe": 42, "birthdate": "2/3/1985"},
        },
    )
    assert bad.status_code == 422
    errors = bad.json()["errors"]
    assert set(errors) == {"Shoe", "birthdate"} and "does not exist" in errors["Shoe"][0]
    assert "Shoe" in bad.json()["error"]
    missing = await harness.signed(
        "POST",
        LIST + "/members/upsert",
        json={"unique_field": "email", "member": {"firstname": "x"}},
    )
    assert missing.status_code == 422 and "member.email" in missing.json()["errors"]


async def members(h: Harness, query: dict[str, Any]) -> httpx.Response:
    return await h.signed("GET", LIST + "/members", params=query)


async def test_filters_paging_and_perpage_limit() -> None:
    h = Harness(create_sandbox(records=120))
    default = (await members(h, {})).json()
    assert len(default["members"]) == 50 and default["count"] == 120
    page3 = (await members(h, {"page": 3, "perpage": 50})).json()
    assert len(page3["members"]) == 20
    assert (await members(h, {"perpage": 5000})).status_code == 200
    too_many = await members(h, {"perpage": 5001})
    assert too_many.status_code == 400 and "5000" in too_many.json()["error"]

    one = (await members(h, {"filter[mobile][eq][]": "+45 20 00 00 07"})).json()
    assert [m["mobile"] for m in one["members"]] == ["20000007"]
    emails = [m["email"] for m in default["members"][:2]]
    either = (
        await members(h, {"filter[email][eq][]": [e.upper() for e in emails], "logic": "or"})
    ).json()
    assert sorted(m["email"] for m in either["members"]) == sorted(emails)
    both = (await members(h, {"filter[email][eq][]": emails})).json()
    assert both["members"] == []  # "and": no member has two emails
    rest = (await members(h, {"filter[email][neq][]": emails[0], "perpage": 5000})).json()
    assert rest["count"] == 119
    ids = (await members(h, {"filter[reference][in][]": ["100003", "100004"]})).json()
    assert sorted(m["reference"] for m in ids["members"]) == ["100003", "100004"]
    low = (await members(h, {"filter[reference][lt][]": "100002"})).json()
    high = (await members(h, {"filter[reference][gt][]": "100117"})).json()
    assert low["count"] == 2 and high["count"] == 2
    php = (await members(h, {"filter[reference][eq][0]": "100005"})).json()
    assert php["count"] == 1
    unknown = await members(h, {"filter[nope][eq][]": "x"})
    assert unknown.status_code == 400
    await h.aclose()


async def test_429_with_retry_after_in_the_platform_error_shape(harness: Harness) -> None:
    await harness.admin("POST", "faults", {"rate_429": 1.0, "retry_after_s": 7})
    answer = await harness.signed("GET", "/loyalty/v1/lists")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
    assert answer.json()["code"] == 429


async def test_tracking_import_json_and_multipart_csv(harness: Harness) -> None:
    row = {
        "email": "a@example.dk",
        "order_id": "O1",
        "product_id": "P1",
        "created_at": "2024-05-01T09:30:00Z",
        "product_price": "100.00",
        "event_type": "purchasedBasket",
    }
    path = "/tracking/api/transaction/import/sandbox-tracking"
    ok = await harness.signed("POST", path, json={"date_format": "iso8601", "rows": [row]})
    assert ok.status_code == 200 and ok.json() == {"imported": 1, "orders": 1}
    csv_text = (
        "email,ignored,product_id,created_at,order_id\nb@example.dk,x,P2,2024-05-02 10:00:00,O2\n"
    )
    form = {
        "delimiter": ",",
        "skip_header_line": "true",
        "date_format": "Y-m-d H:i:s",
        "fields_selected[]": ["email", "", "product_id", "created_at", "order_id"],
    }
    multipart = await harness.signed(
        "POST", path, data=form, files={"file": ("orders.csv", csv_text, "text/csv")}
    )
    assert multipart.status_code == 200, multipart.text
    tracked = (await harness.data())["tracking"]
    assert [t["order_id"] for t in tracked] == ["O1", "O2"] and "ignored" not in tracked[1]
    again = await harness.signed("POST", path, json={"date_format": "iso8601", "rows": [row]})
    assert again.status_code == 200  # the import dedupes nothing
    writes = (await harness.stats())["writes"]
    assert writes["tracking:O1"] == {"create": 2} and writes["tracking:O2"] == {"create": 1}
    unknown = await harness.signed(
        "POST", "/tracking/api/transaction/import/nope", json={"rows": [row]}
    )
    assert unknown.status_code == 404
    unsigned = await harness.signed("POST", path, secret="nope", json={"rows": [row]})
    assert unsigned.status_code == 401


async def test_seeded_data_is_deterministic_and_reset_restores_it() -> None:
    today = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)  # timestamps must not tick between dumps
    a, b = create_sandbox(records=15, today=today), create_sandbox(records=15, today=today)
    assert a.store.dump() == b.store.dump()
    statuses = {m["status"]["status"] for m in a.store.dump()["members"]}
    assert statuses <= {"active", "unsubscribed"}
    h = Harness(a)
    seeded = await h.data()
    await h.signed("POST", LIST + "/members", json={"email": "new@example.dk"})
    assert (await h.data())["counts"]["members"] == 16
    await h.admin("POST", "reset")
    assert await h.data() == seeded and (await h.stats())["writes"] == {}
    missing = await h.admin("POST", "mutate", {"unsubscribe": ["nobody@example.dk"]})
    assert missing == {"unsubscribed": [], "not_found": ["nobody@example.dk"]}


def test_upsert_finds_members_by_their_current_email_and_mobile() -> None:
    # The store finds members through an index: a changed e-mail, a deleted member and two
    # members sharing an address must give the answers a scan over every member gives.
    from ticketbridge.connectors.heyloyalty.sandbox_store import HeyloyaltyStore
    from ticketbridge.sandbox import Stats

    store = HeyloyaltyStore(stats=Stats(), records=50, double_optin=False)
    lst = store.get_list(4711)
    flags = {"automations": False, "webhooks": False}
    seeded = next(iter(lst.members.values()))
    assert store.find(lst, "email", seeded.values["email"].upper()) is seeded
    first, created = store.upsert(
        lst, {"unique_field": "email", "member": {"email": "a@example.com", "mobile": "29999999"}}
    )
    assert created
    store.update(lst, first, {"email": "b@example.com"}, replace=False, flags=flags)
    assert store.find(lst, "email", "a@example.com") is None
    assert store.find(lst, "email", " B@example.com") is first
    assert store.find(lst, "mobile", "+4529999999") is first
    second = store.create(lst, {"email": "b@example.com"}, skip_optin=True, flags=flags)
    assert store.find(lst, "email", "b@example.com") is first, "the first added wins"
    store.delete(lst, first, obscure=False)
    assert store.find(lst, "email", "b@example.com") is second
    again, created = store.upsert(
        lst, {"unique_field": "email", "member": {"email": "b@example.com", "firstname": "Bo"}}
    )
    assert again is second and not created and second.values["firstname"] == "Bo"
