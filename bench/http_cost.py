"""CPU per request of the HTTP clients in play: ``python -m bench.http_cost --requests 3000``.

Posts the same Airship ``POST /v1/contact`` body (one booking) to an Airship sandbox in its own
process with: ticketbridge's ``ApiClient`` (through ``AirshipCrmClient.upsert_contact``, 8 in
flight), a plain ``httpx.AsyncClient`` (8 in flight), and a ``requests.Session`` (one at a
time, as dlt's sink does). Reports this process's CPU seconds per 1,000 requests and,
beside it, the sandbox's (from the kernel's counters of its process): what one client's
requests cost the server it talks to; and how often the client went to sleep waiting (its
voluntary context switches), each of which the sandbox's answer must wake it from.
``--rounds 3`` repeats the clients interleaved. Run it twice, with and without ``sniffio``
importable, to see what the failed ``import sniffio`` in httpcore costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench.procs import Sandbox

TOKEN = "sandbox-airship-token"  # noqa: S105 - the sandbox's fake credential


def _body(i: int) -> dict[str, Any]:
    return {
        "email": f"bench.{i}@example.com",
        "first_name": "Bench",
        "last_name": f"N{i}",
        "source_name": "TicketCo",
        "full_contact_object": False,
        "units": [{"id": 1001, "groups": [{"name": "Booking", "folder_name": "TicketCo"}]}],
        "rules": [{"rule_name": "preserve_consent"}],
        "bookings": [
            {
                "booking_reference": f"B{i}",
                "party_size": 2,
                "stage_value": 1,
                "source_id": 1,
                "type_id": 13,
                "unit_id": 1001,
            }
        ],
    }


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _sleeps() -> int:
    """Times this process has gone to sleep waiting (voluntary context switches)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _concurrently(n: int, one: Callable[[int], Awaitable[Any]], width: int = 8) -> None:
    slots = asyncio.Semaphore(width)

    async def guarded(i: int) -> None:
        async with slots:
            await one(i)

    await asyncio.gather(*(guarded(i) for i in range(n)))


async def ticketbridge_client(url: str, n: int) -> None:
    from pydantic import SecretStr

    from ticketbridge import logs
    from ticketbridge.connectors.airship_crm.client import AirshipCrmClient
    from ticketbridge.connectors.airship_crm.config import AirshipCrmConfig
    from ticketbridge.http import HttpContext

    logs.configure("INFO")  # as the CLI does: the per-request debug line is filtered out
    cfg = AirshipCrmConfig(
        platform="airship_crm", base_url=f"{url}/v1", token=SecretStr(TOKEN), account_id=1
    )
    client = AirshipCrmClient(cfg, HttpContext())
    try:
        await _concurrently(n, lambda i: client.upsert_contact(_body(i)))
    finally:
        await client.aclose()


async def plain_httpx(url: str, n: int) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:

        async def one(i: int) -> None:
            response = await client.post("/v1/contact", json={"account_id": 1, **_body(i)})
            response.raise_for_status()
            response.json()

        await _concurrently(n, one)


async def plain_aiohttp(url: str, n: int) -> None:
    import aiohttp

    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(base_url=url, headers=headers) as session:

        async def one(i: int) -> None:
            async with session.post("/v1/contact", json={"account_id": 1, **_body(i)}) as r:
                r.raise_for_status()
                await r.json()

        await _concurrently(n, one)


def plain_requests(url: str, n: int) -> None:
    import requests

    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        for i in range(n):
            response = session.post(
                f"{url}/v1/contact", json={"account_id": 1, **_body(i)}, timeout=30
            )
            response.raise_for_status()
            response.json()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_cost")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--port", type=int, default=18700)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        import sniffio  # noqa: F401

        sniffio_state = "importable"
    except ImportError:
        sniffio_state = "missing"
    sandbox = Sandbox("airship_crm", args.port, 0, 42, Path(tempfile.mkdtemp()))
    try:
        sandbox.wait_ready()
        runs: list[tuple[str, Callable[[], Any]]] = [
            (
                "ticketbridge ApiClient",
                lambda: asyncio.run(ticketbridge_client(sandbox.url, args.requests)),
            ),
            (
                "plain httpx.AsyncClient",
                lambda: asyncio.run(plain_httpx(sandbox.url, args.requests)),
            ),
            (
                "plain aiohttp.ClientSession",
                lambda: asyncio.run(plain_aiohttp(sandbox.url, args.requests)),
            ),
            ("requests.Session", lambda: plain_requests(sandbox.url, args.requests)),
        ]
        print(f"sniffio {sniffio_state}; {args.requests} POST /v1/contact each")
        per_1k = 1000 / args.requests
        for _ in range(args.rounds):
            for name, run in runs:
                sandbox.reset()
                cpu0, server0, wall0 = _cpu(), _process_cpu(sandbox.proc.pid), time.monotonic()
                sleeps0 = _sleeps()
                run()
                cpu, wall = _cpu() - cpu0, time.monotonic() - wall0
                server = _process_cpu(sandbox.proc.pid) - server0
                sleeps = (_sleeps() - sleeps0) / args.requests
                print(
                    f"  {name:<24} {cpu * per_1k:6.3f} CPU s / 1k requests "
                    f"(the sandbox: {server * per_1k:5.3f}), {args.requests / wall:7.0f} "
                    f"requests/s, {sleeps:4.2f} sleeps per request"
                )
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
