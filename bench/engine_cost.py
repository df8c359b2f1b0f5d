"""CPU of two engine steps a large load repeats per batch and per page:
``python -m bench.engine_cost --rounds 3``.

* **commit**: ``commit_batch`` of 60 batches of 500 ledger rows (the hashes and destination ids
  of a TicketCo booking in Airship CRM) with a checkpoint each, on a fresh SQLite state file;
  CPU milliseconds per batch.
* **pages**: the TicketCo sandbox's 5,000 bookings (seed 42) read and mapped in process, then
  every page pickled as the reader process sends it and unpickled as the run receives it; CPU
  seconds per 1,000 bookings each way.

Run it on two commits (``git worktree add``) to compare them: rounds on one machine vary by a
tenth, so interleave the two.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pydantic import SecretStr

from ticketbridge import logs
from ticketbridge.connectors.base import Page, ReadRequest
from ticketbridge.connectors.ticketco import BookingsOptions, TicketcoConfig, TicketcoSource
from ticketbridge.connectors.ticketco.sandbox import SANDBOX_TOKEN, create_sandbox
from ticketbridge.engine.reader_process import _encode, _unpickle
from ticketbridge.engine.state.base import LedgerRow
from ticketbridge.engine.state.sql import open_store
from ticketbridge.http import HttpContext

BATCHES, ROWS = 60, 500
TODAY = datetime(2026, 11, 22, 6, tzinfo=UTC)
ORIGIN = "http://ticketco.engine-cost.test"  # in-process: the sandbox app is mounted here


def commit_ms() -> float:
    """CPU milliseconds per ``commit_batch`` of ``ROWS`` ledger rows and a checkpoint."""
    folder = Path(tempfile.mkdtemp())
    store = open_store(f"sqlite:///{folder / 'state.db'}")
    try:
        lease = store.acquire_lease("bench", "engine_cost", 3600)
        assert lease is not None, "a fresh state file has no lease"
        run = store.start_run("bench", "run", lease)
        batches = [
            [
                LedgerRow(
                    key=f"booking:ticketco:{b * ROWS + i}",
                    hashes={"contact": f"{i:032x}", "booking": f"{b:032x}"},
                    dest_ids={"contact": str(b * ROWS + i)},
                )
                for i in range(ROWS)
            ]
            for b in range(BATCHES)
        ]
        start = time.process_time()
        for b, rows in enumerate(batches):
            store.commit_batch(lease, run, ledger=rows, checkpoint={"page": b})
        return (time.process_time() - start) / BATCHES * 1000
    finally:
        store.close()


async def _pages(records: int) -> list[Page]:
    """The sandbox's bookings as the TicketCo source pages them, over in-process HTTP."""
    sandbox = create_sandbox(seed=42, records=records, today=TODAY)
    context = HttpContext()
    context.mount(ORIGIN, httpx.ASGITransport(app=sandbox.app))
    config = TicketcoConfig(
        platform="ticketco", base_url=f"{ORIGIN}/api/public/v1", token=SecretStr(SANDBOX_TOKEN)
    )
    source = TicketcoSource(config, context, now=lambda: TODAY)
    try:
        request = ReadRequest(stream="bookings", options=BookingsOptions(venues=[]))
        return [page async for page in source.read(request)]
    finally:
        await source.aclose()


def pickle_s(pages: list[Page]) -> tuple[float, float]:
    """CPU seconds per 1,000 bookings to pickle the pages and to unpickle them."""
    count = sum(len(p.records) for p in pages)
    start = time.process_time()
    sent = [_encode(("page", 0, 0.0, page, [])) for page in pages]
    encoded = time.process_time()
    for message in sent:
        _unpickle(message)
    decoded = time.process_time()
    return (encoded - start) / count * 1000, (decoded - encoded) / count * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_cost")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=5000)
    args = parser.parse_args(argv)
    logs.configure("WARNING")
    pages = asyncio.run(_pages(args.records))
    print(f"{BATCHES} commits of {ROWS} ledger rows; {args.records} TicketCo bookings' pages")
    for n in range(args.rounds):
        ms = commit_ms()
        encode, decode = pickle_s(pages)
        print(
            f"  round {n + 1}: commit {ms:5.2f} ms CPU per batch; pages: pickle {encode:.4f} s, "
            f"unpickle {decode:.4f} s of CPU per 1k bookings"
        )


if __name__ == "__main__":
    main()
