"""The raw ceiling: fetch every TicketCo page, post every Airship request, nothing else.

``--client httpx`` (the contender ``raw``) uses a stock ``httpx.AsyncClient``; ``--client
aiohttp`` (``raw-aiohttp``) the HTTP engine ticketbridge itself runs on, so that the ceiling
of the stack ticketbridge uses is measured too.

No state, no ledger, no checkpoint, no retry budget: one reader walks the events and their item
gross pages in order (as ticketbridge does), bookings go through a small queue to
``--concurrency`` writers, each posting the same ``POST /v1/contact`` body ticketbridge sends.
The only concession to a faulty destination is a plain retry on 429 / 5xx (after
``Retry-After``, else 0.5 s), so that the rate-limit scenario can finish at all.

Prints one JSON line: bookings read, posted, unusable (no identifier), failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.airship_body import bodies, unit_ids

DONE = None


async def _send(
    client: _Httpx | _Aiohttp, method: str, url: str, retries: int, **kw: Any
) -> _Answer:
    for attempt in range(retries + 1):
        response = await client.request(method, url, **kw)
        if response.status_code != 429 and response.status_code < 500:
            return response
        if attempt == retries:
            return response
        try:
            wait = float(response.headers.get("retry-after", "0.5"))
        except ValueError:
            wait = 0.5
        await asyncio.sleep(max(wait, 0.05))
    raise AssertionError("unreachable")


class _Answer:
    """What the job reads of a response, whichever client got it."""

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status_code, self.headers, self.body = status, headers, body

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        return json.loads(self.body)


class _Httpx:
    def __init__(self, concurrency: int) -> None:
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=concurrency + 2), timeout=60
        )

    async def request(self, method: str, url: str, **kw: Any) -> _Answer:
        r = await self.client.request(method, url, **kw)
        return _Answer(r.status_code, r.headers, r.content)

    async def aclose(self) -> None:
        await self.client.aclose()


class _Aiohttp:
    def __init__(self, concurrency: int) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency + 2),
            timeout=aiohttp.ClientTimeout(total=60),
        )

    async def request(self, method: str, url: str, **kw: Any) -> _Answer:
        async with self.session.request(method, url, **kw) as r:
            return _Answer(r.status, r.headers, await r.read())

    async def aclose(self) -> None:
        await self.session.close()


async def run(args: argparse.Namespace) -> dict[str, int]:
    token = os.environ["TICKETCO_TOKEN"]
    airship_auth = {"Authorization": f"Bearer {os.environ['AIRSHIP_TOKEN']}"}
    counts = {"read": 0, "posted": 0, "unusable": 0, "failed": 0}
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=args.concurrency * 4)
    now = datetime.now(UTC)
    client = (_Aiohttp if args.client == "aiohttp" else _Httpx)(args.concurrency)
    try:
        units_page = await _send(
            client,
            "GET",
            f"{args.airship}/v1/account/units",
            args.retries,
            params={"account_id": 1},
            headers=airship_auth,
        )
        units = unit_ids(units_page.json())

        async def pages(path: str, key: str, **params: Any) -> Any:
            page = 1
            while True:
                response = await _send(
                    client,
                    "GET",
                    f"{args.ticketco}/api/public/v1/{path}",
                    args.retries,
                    params={"token": token, "page": page, "per_page": args.per_page, **params},
                )
                if not response.is_success:
                    raise RuntimeError(f"GET {path}: HTTP {response.status_code}")
                found = response.json()[key]
                if not found:
                    return
                yield found
                page += 1

        async def read() -> None:
            events = [ev async for chunk in pages("events", "events") for ev in chunk]
            for event in events:
                items = [
                    i
                    async for chunk in pages("item_grosses", "item_grosses", event_id=event["id"])
                    for i in chunk
                ]
                for _ref, body in bodies(event, items, units, now):
                    counts["read"] += 1
                    if body is None:
                        counts["unusable"] += 1
                    else:
                        await queue.put(body)
            for _ in range(args.concurrency):
                await queue.put(DONE)

        async def write() -> None:
            while (body := await queue.get()) is not DONE:
                response = await _send(
                    client,
                    "POST",
                    f"{args.airship}/v1/contact",
                    args.retries,
                    json=body,
                    headers=airship_auth,
                )
                counts["posted" if response.is_success else "failed"] += 1

        await asyncio.gather(read(), *(write() for _ in range(args.concurrency)))
    finally:
        await client.aclose()
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_job")
    parser.add_argument("--ticketco", required=True, help="TicketCo sandbox origin")
    parser.add_argument("--airship", required=True, help="Airship CRM sandbox origin")
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--retries", type=int, default=10)
    parser.add_argument("--client", choices=["httpx", "aiohttp"], default="httpx")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
