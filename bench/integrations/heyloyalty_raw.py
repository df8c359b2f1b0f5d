"""The raw ceiling of Ticketmaster -> Heyloyalty: a hand-written script over aiohttp.

One reader walks the customers, then the orders (ascending ``updated_at``, each query starting
at the last stamp seen: Ticketmaster refuses pages past ``page * size >= 1000``), and
``concurrency`` writers send the calls ticketbridge sends for a first load
(``bench.integrations.heyloyalty_body``): an upsert per consenting customer with a usable
e-mail, a status PATCH after a create for the channels not consented to, then the purchases
of those customers' completed orders, 200 orders per tracking import. No state, no ledger, no
look-up, no validation: every run sends everything again. Retries 429 / 5xx.

``python -m bench.integrations.heyloyalty_raw --ticketmaster URL --heyloyalty URL``
(credentials from TM_API_KEY, TM_PASSWORD, HEYLOYALTY_API_SECRET).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

from bench.integrations import heyloyalty_body as body
from bench.raw_job import _Aiohttp, _send
from ticketbridge.connectors.heyloyalty.config import (
    SANDBOX_API_KEY,
    SANDBOX_LIST_ID,
    SANDBOX_TRACKING_ID,
)
from ticketbridge.connectors.ticketmaster.sandbox import SANDBOX_USERNAME
from ticketbridge.http.auth import hmac_hex_b64

TRACKING_BATCH = 200
DONE = None


def _signed(secret: str) -> dict[str, str]:
    """Heyloyalty's Basic auth: api key : base64(hex HMAC-SHA256 of the timestamp header)."""
    stamp = formatdate(usegmt=True)
    raw = f"{SANDBOX_API_KEY}:{hmac_hex_b64(secret, stamp)}".encode()
    return {
        "X-Request-Timestamp": stamp,
        "Authorization": "Basic " + base64.b64encode(raw).decode("ascii"),
    }


async def run(args: argparse.Namespace) -> dict[str, int]:
    key, password = os.environ["TM_API_KEY"], os.environ["TM_PASSWORD"]
    secret = os.environ["HEYLOYALTY_API_SECRET"]
    tm_auth = base64.b64encode(f"{SANDBOX_USERNAME}:{password}".encode()).decode("ascii")
    counts = {"customers": 0, "orders": 0, "upserts": 0, "patches": 0, "imports": 0, "failed": 0}
    client = _Aiohttp(args.concurrency)
    api = f"{args.heyloyalty}/loyalty/v1/lists/{SANDBOX_LIST_ID}"
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=args.concurrency * 4)

    async def scan(kind: str) -> AsyncIterator[list[dict[str, Any]]]:
        since: str | None = None
        seen: set[str] = set()
        page = 0
        while True:
            params: dict[str, Any] = {
                "apikey": key,
                "page": page,
                "size": args.per_page,
                "sort": "updated_at,asc",
            }
            if since:
                params["updated_since"] = since
            answer = await _send(
                client,
                "GET",
                f"{args.ticketmaster}/clientdata/v1/DK/{kind}",
                args.retries,
                params=params,
                headers={"Authorization": f"Basic {tm_auth}"},
            )
            if not answer.is_success:
                raise RuntimeError(f"GET {kind}: HTTP {answer.status_code}")
            listed = answer.json()
            found, paging = listed[kind], listed["page"]
            fresh = [r for r in found if str(r["id"]) not in seen]
            if fresh:
                yield fresh
            # The last page of what is left from ``since`` (a group sharing one stamp may fill
            # the deep-paging limit exactly: asking for the page after it is refused).
            if len(found) < args.per_page or paging["number"] + 1 >= paging["totalPages"]:
                return
            last = found[-1]["updated_at"]
            if last != since:  # the next query starts at the last stamp (inclusive)
                since, page = last, 0
                seen = {str(r["id"]) for r in found if r["updated_at"] == last}
            else:  # a page of one stamp: page through it
                seen |= {str(r["id"]) for r in found}
                page += 1

    async def read() -> None:
        customers: dict[str, dict[str, Any]] = {}
        async for chunk in scan("customers"):
            for c in chunk:
                counts["customers"] += 1
                customers[str(c["id"])] = c
                fields = body.member(c) if body.consented(c) else None
                if fields is not None:
                    await queue.put({"member": fields, "customer": c})
        await queue.join()  # members first: the purchases then find their member
        pending: list[dict[str, Any]] = []
        async for chunk in scan("orders"):
            for o in chunk:
                counts["orders"] += 1
                customer = customers.get(str(o.get("customer_id")))
                if customer is None or not body.consented(customer):
                    continue
                rows = body.tracking_rows(o, customer)
                if rows is not None:
                    pending.append({"rows": rows})
            while len(pending) >= TRACKING_BATCH:
                batch, pending = pending[:TRACKING_BATCH], pending[TRACKING_BATCH:]
                await queue.put({"rows": [r for p in batch for r in p["rows"]]})
        if pending:
            await queue.put({"rows": [r for p in pending for r in p["rows"]]})
        for _ in range(args.concurrency):
            await queue.put(DONE)

    async def write() -> None:
        while (item := await queue.get()) is not DONE:
            try:
                if "member" in item:
                    await upsert(item["member"], item["customer"])
                else:
                    await tracking(item["rows"])
            finally:
                queue.task_done()
        queue.task_done()

    async def upsert(fields: dict[str, Any], customer: dict[str, Any]) -> None:
        answer = await _send(
            client,
            "POST",
            f"{api}/members/upsert",
            args.retries,
            json=body.upsert_body(fields),
            headers=_signed(secret),
        )
        counts["upserts"] += 1
        if not answer.is_success:
            counts["failed"] += 1
            return
        result = answer.json()
        status = body.status_after_create(customer, fields)
        if result.get("type") == "create" and status:
            patched = await _send(
                client,
                "PATCH",
                f"{api}/members/{result['member_id']}",
                args.retries,
                json={"status": status},
                headers=_signed(secret),
            )
            counts["patches" if patched.is_success else "failed"] += 1

    async def tracking(rows: list[dict[str, Any]]) -> None:
        answer = await _send(
            client,
            "POST",
            f"{args.heyloyalty}/tracking/api/transaction/import/{SANDBOX_TRACKING_ID}",
            args.retries,
            json={"date_format": "iso8601", "skip_header_line": False, "rows": rows},
            headers=_signed(secret),
        )
        counts["imports" if answer.is_success else "failed"] += 1

    try:
        await asyncio.gather(read(), *(write() for _ in range(args.concurrency)))
    finally:
        await client.aclose()
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.integrations.heyloyalty_raw")
    parser.add_argument("--ticketmaster", required=True, help="Ticketmaster sandbox origin")
    parser.add_argument("--heyloyalty", required=True, help="Heyloyalty sandbox origin")
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--retries", type=int, default=10)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
