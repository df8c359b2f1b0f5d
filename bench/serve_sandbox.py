"""Serve one platform sandbox under uvicorn, in this process, on a loopback port.

``python -m bench.serve_sandbox ticketco --port 18400 --records 100000 --seed 42``

The benchmark starts one such process per platform, so the sandboxes never share a core's
event loop with each other or with the contender. ``--count N`` serves N independent sandboxes
of the platform (seeds ``seed``, ``seed + 1``, …) under ``/v0``, ``/v1``, …: N venues' accounts
(bench/temporal_scale.py), in one process. ``--stamp-first`` records the wall-clock time of the
first platform request (admin routes aside) and serves it at ``GET /_bench/first-request``;
``DELETE`` on it forgets it (bench/startup.py: when did a run make its first source call).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from functools import partial

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ticketbridge.connectors import registry

LOOPBACK = "127.0.0.1"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_sandbox")
    parser.add_argument(
        "platform",
        choices=["ticketco", "airship_crm", "airship_wallet", "ticketmaster", "heyloyalty"],
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--records", type=int, default=0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--stamp-first", action="store_true")
    args = parser.parse_args(argv)
    connector = registry.get(args.platform)
    assert connector.sandbox is not None
    create = connector.sandbox.create
    if args.platform == "ticketmaster":
        # Its gateway allows 5 calls a second and 5,000 a day: a benchmark measures the tools,
        # not that budget, so both are off (every contender reads the same sandbox).
        from ticketbridge.connectors.ticketmaster import create_sandbox

        create = partial(create_sandbox, spike_arrest_per_s=None, daily_quota=10**9)
    apps = [
        create(seed=args.seed + i, records=args.records, today=datetime.now(UTC))
        for i in range(args.count)
    ]
    app: ASGIApp = apps[0].app if args.count == 1 else Prefixed([a.app for a in apps])
    if args.stamp_first:
        app = FirstRequest(app)
    # Loopback only, always: the benchmark's traffic never leaves this machine.
    uvicorn.run(
        app,
        host=LOOPBACK,
        port=args.port,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )


class FirstRequest:
    """ASGI: note ``time.time()`` when the first platform request arrives (before the app
    handles it); ``/_bench/first-request`` reads (GET) or forgets (DELETE) it. Wall-clock time,
    so another process on this machine can subtract its own ``time.time()``."""

    PATH = "/_bench/first-request"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.first: float | None = None
        self.path: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.PATH:
            if Request(scope).method == "DELETE":
                self.first = self.path = None
            response = JSONResponse({"at": self.first, "path": self.path})
            await response(scope, receive, send)
            return
        if self.first is None and scope["type"] == "http" and "/_sandbox/" not in scope["path"]:
            self.first, self.path = time.time(), scope["path"]
        await self.app(scope, receive, send)


class Prefixed:
    """ASGI: ``/v<i>/rest`` goes to ``apps[i]`` as ``/rest`` (its admin routes too)."""

    def __init__(self, apps: list[ASGIApp]) -> None:
        self.apps = apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        head, _, rest = scope["path"].lstrip("/").partition("/")
        if not head.startswith("v") or not head[1:].isdigit() or int(head[1:]) >= len(self.apps):
            response = JSONResponse({"error": "no such sandbox"}, status_code=404)
            await response(scope, receive, send)
            return
        path = "/" + rest
        inner = {**scope, "path": path, "raw_path": path.encode()}
        await self.apps[int(head[1:])](inner, receive, send)


if __name__ == "__main__":
    main()
