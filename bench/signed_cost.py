"""CPU per request of a request signed on the time (Heyloyalty's scheme), by the two paths
``ApiClient`` has: ``python -m bench.signed_cost --requests 3000 --rounds 3``.

The same client, auth and JSON body, posted 8 at a time to a small app under uvicorn on
loopback, once straight to aiohttp (the path taken since 2bfd3ba) and once through an httpx
request and the auth flow (the path such requests took before). Reports the CPU of the
client's thread per request (the server runs in a thread of its own), rounds interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ticketbridge import logs
from ticketbridge.http import ApiClient, HttpContext
from ticketbridge.http.auth import TimestampHmacBasic
from ticketbridge.sandbox import serve_asgi


async def _member(request: Request) -> Response:
    await request.body()
    return JSONResponse({"id": 1, "status": "active"})


APP = Starlette(routes=[Route("/v1/members", _member, methods=["POST"])])


async def _post_all(url: str, n: int, direct: bool) -> None:
    api = ApiClient(
        platform="heyloyalty",
        base_url=f"{url}/v1",
        context=HttpContext(),
        auth=TimestampHmacBasic("key", SecretStr("secret")),
    )
    if not direct:
        api._direct = None  # the httpx request and the auth flow, as before 2bfd3ba
    slots = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        async with slots:
            body = {"email": f"m{i}@example.dk", "firstname": "M", "status": "active"}
            await api.request_json("POST", "members", json_body=body)

    try:
        await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        await api.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.signed_cost")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    logs.configure("INFO")  # as the CLI does: the per-request debug line is filtered out
    server, thread, url = serve_asgi(APP, "signed-cost")
    try:
        for _ in range(args.rounds):
            for name, direct in (("httpx request + auth flow", False), ("direct", True)):
                cpu0 = time.thread_time()
                asyncio.run(_post_all(url, args.requests, direct))
                per = (time.thread_time() - cpu0) / args.requests * 1000
                print(f"  {name:<26} {per:.3f} ms CPU per request")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    main()
