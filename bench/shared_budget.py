"""``python -m bench.shared_budget``: the rate budget shared through PostgreSQL, measured.

P processes (as P workers would be) each call ``acquire()`` on a budget for one account as fast
as it lets them, for ``--seconds``; every grant's time is recorded (``time.monotonic``, which is
one clock for all processes of this host). For each rate and process count:

* the aggregate rate granted, and the most grants in any one-second window (sliding, so at
  least as strict as the fixed windows API gateways count);
* the database round trips per grant (a refused take costs one more), and how late a grant was
  against the ideal spacing (the median gap minus ``1 / rate``);
* the same with each process on its own per-process budget (``http.RateBudget``), which is
  what workers without the shared budget would do.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.procs import REPO
from ticketbridge.http.budget import RateBudget
from ticketbridge.temporal.budget import SharedBucket, SharedRateBudget


def _caller(url: str, account: str, rate: float, seconds: float, shared: bool, out: Any) -> None:
    async def main() -> tuple[list[float], int]:
        engine = create_engine(url, pool_size=2)
        budget: RateBudget
        if shared:
            budget = SharedRateBudget(SharedBucket(engine), account, rate_per_second=rate)
        else:
            budget = RateBudget(rate_per_second=rate)
        grants: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await budget.acquire()
            grants.append(time.monotonic())
        engine.dispose()
        return grants, getattr(budget, "queries", 0)

    out.put(asyncio.run(main()))


def measure(url: str, rate: float, processes: int, seconds: float, shared: bool) -> dict[str, Any]:
    account = f"bench:{uuid.uuid4().hex[:8]}"
    queue: Any = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_caller, args=(url, account, rate, seconds, shared, queue))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join()
    times = sorted(t for grants, _ in results for t in grants)
    # Leave out the first and last second: processes start and stop at slightly different times.
    lo, hi = times[0] + 1.0, times[-1] - 1.0
    steady = [t for t in times if lo <= t <= hi]
    gaps = [b - a for a, b in itertools.pairwise(steady)]
    j = 0
    most = 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0:
            j += 1
        most = max(most, i - j + 1)
    grants = len(times)
    queries = sum(q for _, q in results)
    return {
        "budget": "shared (PostgreSQL)" if shared else "per process",
        "rate_per_second": rate,
        "processes": processes,
        "granted_per_s": round(len(steady) / (hi - lo), 2) if hi > lo else None,
        "most_in_1s": most,
        "queries_per_grant": round(queries / grants, 2) if shared else 0,
        "median_gap_ms": round(statistics.median(gaps) * 1000, 1) if gaps else None,
        "min_gap_ms": round(min(gaps) * 1000, 1) if gaps else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.shared_budget", description=__doc__)
    p.add_argument("--rates", default="10,50")
    p.add_argument("--processes", default="2,4")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument(
        "--database-url",
        default=os.environ.get("TICKETBRIDGE_TEST_POSTGRES_URL")
        or os.environ.get("TICKETBRIDGE_DATABASE_URL"),
    )
    args = p.parse_args(argv)
    if not args.database_url or not args.database_url.startswith("postgresql"):
        p.error("--database-url must be a postgresql+psycopg:// URL")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.database_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = (
        make_url(args.database_url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    SharedBucket(create_engine(url)).ensure_table()
    rows = []
    try:
        for rate in (float(r) for r in args.rates.split(",")):
            for n in (int(x) for x in args.processes.split(",")):
                for shared in (True, False):
                    row = measure(url, rate, n, args.seconds, shared)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    out = (
        REPO
        / "bench"
        / "results"
        / (datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S") + "-shared-budget.json")
    )
    env = {
        "command": "python -m bench.shared_budget " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_before": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    out.write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
