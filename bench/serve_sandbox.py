"""Serve one platform sandbox under uvicorn, in this process, on a loopback port.

``python -m bench.serve_sandbox ticketco --port 18400 --records 100000 --seed 42``

The benchmark starts one such process per platform, so the sandboxes never share a core's
event loop with each other or with the contender.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import uvicorn

from ticketbridge.connectors import registry

LOOPBACK = "127.0.0.1"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_sandbox")
    parser.add_argument("platform", choices=["ticketco", "airship_crm", "airship_wallet"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--records", type=int, default=0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    connector = registry.get(args.platform)
    assert connector.sandbox is not None
    sandbox = connector.sandbox.create(
        seed=args.seed, records=args.records, today=datetime.now(UTC)
    )
    # Loopback only, always: the benchmark's traffic never leaves this machine.
    uvicorn.run(
        sandbox.app,
        host=LOOPBACK,
        port=args.port,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )


if __name__ == "__main__":
    main()
