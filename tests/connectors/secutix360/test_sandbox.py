"""The S-360 sandbox on its own: the envelope on every answer, auth, tickets, contacts,
deterministic refusals, and the admin routes."""

from __future__ import annotations

from typing import Any

import httpx

from .support import BASE, LOGIN, PASSWORD, Harness

RPC = BASE + "/tnci/backend-apis"


async def call(h: Harness, path: str, body: Any, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=h.transport) as http:
        return await http.post(f"{RPC}/{path}", json=body, headers=headers)


async def token(h: Harness) -> str:
    answer = await call(
        h, "authenticationService/v1/getToken", {"login": LOGIN, "password": PASSWORD}
    )
    assert answer.status_code == 200 and answer.json()["statusCode"] == "success"
    return str(answer.json()["token"])


def envelope(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert {"requestId", "statusCode", "statusDetail"} <= set(body), body
    return dict(body)


async def test_every_answer_is_an_envelope_errors_and_faults_included(harness: Harness) -> None:
    bad = await call(harness, "authenticationService/v1/getToken", {"login": LOGIN})
    assert bad.status_code == 401 and envelope(bad)["statusCode"] == "AUTHENTICATION_FAILED"
    anonymous = await call(harness, "contactInformationPublicService/v2_24/searchContact", {})
    assert anonymous.status_code == 401 and envelope(anonymous)["statusCode"]
    tok = await token(harness)
    unknown = await call(harness, "externalAccessControlService/v1_6/noSuchMethod", {}, tok)
    assert unknown.status_code == 404 and envelope(unknown)["statusCode"] == "UNKNOWN_METHOD"
    invalid = await call(harness, "contactInformationPublicService/v2_24/searchContact", {}, tok)
    assert invalid.status_code == 200 and envelope(invalid)["statusCode"] == "INVALID_PARAMETER"
    await harness.admin("POST", "faults", {"fail_next": 2, "fail_status": 503})
    down = await call(harness, "externalAccessControlService/v1_6/getAccessControlCatalog", {}, tok)
    assert down.status_code == 503 and envelope(down)["statusCode"] == "TECHNICAL_ERROR"
    await harness.admin("POST", "faults", {"fail_next": 1, "retry_after_s": 5})
    slow = await call(harness, "externalAccessControlService/v1_6/getAccessControlCatalog", {}, tok)
    assert slow.status_code == 429 and slow.headers["retry-after"] == "5"
    assert envelope(slow)["statusCode"] == "TOO_MANY_REQUESTS"


async def test_status_contacts_and_read_back(harness: Harness) -> None:
    tok = await token(harness)
    made = await call(
        harness,
        "contactInformationPublicService/v2_24/createCulturalContacts",
        {"culturalContacts": [{"identifier": "x", "email": "Zoe@Example.org", "lastName": "Z"}]},
        tok,
    )
    number = envelope(made)["identifierContactMap"]["x"]
    found = await call(
        harness,
        "contactInformationPublicService/v2_24/searchContact",
        {"criteria": {"email": "zoe@example.ORG"}},
        tok,
    )
    assert [c["contactNumber"] for c in envelope(found)["contacts"]] == [number]
    data = await call(
        harness,
        "contactInformationPublicService/v2_24/getContactData",
        {"contactNumber": number},
        tok,
    )
    assert envelope(data)["individualContact"]["lastName"] == "Z"

    body = {
        "ticketId": "S360-000042",
        "externalStatus": "DELETED",
        "externalStatusMode": "history",
        "beneficiaryContactNumber": number,
    }
    path = "externalAccessControlService/v1_6/updateExternalTicketStatus"
    assert envelope(await call(harness, path, body, tok))["statusCode"] == "success"
    wrong = {**body, "externalStatus": "DOWNLOADED"}  # a lifecycle status, not a history one
    assert envelope(await call(harness, path, wrong, tok))["statusCode"] == "INVALID_PARAMETER"
    nobody = {"ticketId": "S360-000042", "ownerContactNumber": 999}
    assert envelope(await call(harness, path, nobody, tok))["statusCode"] == "CONTACT_NOT_FOUND"
    row = await harness.ticket("S360-000042")
    assert row["external_status"] == "DELETED" and row["holder_contact_number"] == number
    stats = await harness.stats()
    assert stats["writes"]["ticket:S360-000042"] == {"create": 1}
    assert stats["writes"][f"contact:{number}"] == {"create": 1}


async def test_a_refused_share_is_the_same_every_time_and_reset_clears_it() -> None:
    h = Harness(records=200)
    try:
        await h.mutate(op="refuse", share=0.1, code="INVALID_PARAMETER")
        tok = await token(h)
        path = "externalAccessControlService/v1_6/updateExternalTicketStatus"

        async def refused() -> set[str]:
            out = set()
            for i in range(1, 201):
                tid = f"S360-{i:06d}"
                body = {
                    "ticketId": tid,
                    "externalStatus": "INJECTED",
                    "externalStatusMode": "lifecycle",
                }
                if envelope(await call(h, path, body, tok))["statusCode"] != "success":
                    out.add(tid)
            return out

        first = await refused()
        assert 10 <= len(first) <= 30, len(first)
        assert await refused() == first
        seeded = [t for t in (await h.data())["tickets"] if t["external_status"] is None]
        assert len(seeded) == len(first)  # refused tickets were left as seeded
        await h.admin("POST", "reset")
        data = await h.data()
        assert data["refusal"] is None and len(data["tickets"]) == 200
        assert all(t["external_status"] is None for t in data["tickets"])
    finally:
        await h.aclose()
