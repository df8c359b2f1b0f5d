"""The raw ceiling of TicketCo -> Airship Wallet: a hand-written script over aiohttp.

One reader walks the events, then each event's item grosses (page numbers until an empty page,
as ticketbridge reads them), and hands each event with its attendees
(``bench.integrations.wallet_body``) to ``concurrency`` writers. A writer creates the event
under its external id with its pass group, then sends its attendees 100 per adaptive-link
request. No state, no ledger, no validation: every run sends everything again. On a rerun an
event create answered 400 (it exists) becomes an update of the event by external id, and an
attendee answered 400 an update of its passes by external id (one per template). Retries 429 /
5xx.

``python -m bench.integrations.wallet_raw --ticketco URL --wallet URL`` (credentials from
TICKETCO_TOKEN and AIRSHIP_WALLET_SECRET).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from bench.integrations import wallet_body as body
from bench.raw_job import _Aiohttp, _send
from ticketbridge.connectors.airship_wallet.config import SANDBOX_PROJECT_KEY

DONE = None


def wallet_headers(secret: str) -> dict[str, str]:
    basic = base64.b64encode(f"{SANDBOX_PROJECT_KEY}:{secret}".encode()).decode("ascii")
    return {"Authorization": f"Basic {basic}", "Api-Revision": "1.2"}


async def run(args: argparse.Namespace) -> dict[str, int]:
    token = os.environ["TICKETCO_TOKEN"]
    headers = wallet_headers(os.environ["AIRSHIP_WALLET_SECRET"])
    api = f"{args.wallet}/v1"
    counts = {
        "events": 0,
        "tickets": 0,
        "event_creates": 0,
        "event_updates": 0,
        "link_requests": 0,
        "pass_updates": 0,
        "failed": 0,
    }
    client = _Aiohttp(args.concurrency)
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=args.concurrency * 2)

    async def pages(path: str, key: str, **params: Any) -> AsyncIterator[list[dict[str, Any]]]:
        page = 1
        while True:
            answer = await _send(
                client,
                "GET",
                f"{args.ticketco}/api/public/v1/{path}",
                args.retries,
                params={"token": token, "page": page, "per_page": args.per_page, **params},
            )
            if not answer.is_success:
                raise RuntimeError(f"GET {path}: HTTP {answer.status_code}")
            found = answer.json()[key]
            if not found:
                return
            yield found
            page += 1

    async def read() -> None:
        events = [ev async for chunk in pages("events", "events") for ev in chunk]
        for event in events:
            positions = body.Positions()
            found = []
            async for chunk in pages("item_grosses", "item_grosses", event_id=event["id"]):
                for item in chunk:
                    counts["tickets"] += 1
                    attendee = positions.attendee(event, item)
                    if attendee is not None:
                        found.append(attendee)
            if found:
                await queue.put({"event": event, "attendees": found})
        for _ in range(args.concurrency):
            await queue.put(DONE)

    async def call(method: str, path: str, payload: dict[str, Any]) -> Any:
        return await _send(
            client, method, f"{api}/{path}", args.retries, json=payload, headers=headers
        )

    async def send(event: dict[str, Any], attendees: list[dict[str, Any]]) -> None:
        try:
            fields = body.event_fields(event)
        except body.Unusable:
            return  # ticketbridge refuses every ticket of an event without a start
        counts["events"] += 1
        made = await call("POST", *body.event_create(event, fields))
        counts["event_creates"] += 1
        if made.status_code == 400:  # the external id exists: a rerun
            made = await call("PUT", *body.event_update(event, fields))
            counts["event_updates"] += 1
        if not made.is_success:
            counts["failed"] += 1
            return
        for batch in body.batches(attendees):
            answer = await call("POST", *body.links_request(event, batch))
            counts["link_requests"] += 1
            if not answer.is_success:
                counts["failed"] += 1
                continue
            for path, payload in body.pass_updates(batch, answer.json()):
                updated = await call("PUT", path, payload)
                counts["pass_updates" if updated.is_success else "failed"] += 1

    async def write() -> None:
        while (item := await queue.get()) is not DONE:
            await send(item["event"], item["attendees"])

    try:
        await asyncio.gather(read(), *(write() for _ in range(args.concurrency)))
    finally:
        await client.aclose()
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.integrations.wallet_raw")
    parser.add_argument("--ticketco", required=True, help="TicketCo sandbox origin")
    parser.add_argument("--wallet", required=True, help="Airship Wallet sandbox origin")
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--retries", type=int, default=10)
    args = parser.parse_args(argv)
    counts = asyncio.run(run(args))
    print(json.dumps(counts))
    raise SystemExit(1 if counts["failed"] else 0)


if __name__ == "__main__":
    main()
