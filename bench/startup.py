"""Start-up cost of ``ticketbridge run``: ``python -m bench.startup``.

Serves a TicketCo sandbox of ``--records`` bookings (seed 42) and an empty Airship CRM sandbox
on loopback, loads everything once with the benchmark's project (bench/contenders.py, every
performance option at its default), then times ``--runs`` reruns on the unchanged source:

* ``to_first_s``: from just before the ``exec`` of ``python -m ticketbridge run …`` to the
  moment the TicketCo sandbox receives its first request (the sandbox notes ``time.time()``
  as the request arrives: ``serve_sandbox --stamp-first``), i.e. what the process spends before
  its first source call;
* ``total_s``: the whole rerun, to exit;
* ``python_s``: ``python -c pass`` the same way, the interpreter's own floor.

One more rerun under ``python -X importtime`` gives the modules by cumulative import time.
Medians go to stdout; every run to ``bench/results/<date>-startup.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.contenders import Contender, Job
from bench.procs import Sandbox
from bench.report import environment

HERE = Path(__file__).resolve().parent


def importtime(stderr: str) -> tuple[list[dict[str, Any]], float]:
    """``-X importtime`` lines -> modules by cumulative time (µs -> s), and the total (the sum
    of every module's own time)."""
    rows: list[dict[str, Any]] = []
    total_us = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        total_us += int(own)
        rows.append(
            {
                "module": name.strip(),
                "depth": (len(name) - len(name.lstrip()) - 1) // 2,
                "cumulative_s": int(cumulative) / 1e6,
                "self_s": int(own) / 1e6,
            }
        )
    rows.sort(key=lambda r: -r["cumulative_s"])
    return rows, total_us / 1e6


def _stamp(ticketco: Sandbox, method: str) -> dict[str, Any]:
    response = ticketco.http.request(method, "/_bench/first-request")
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def timed(cmd: list[str], contender: Contender, ticketco: Sandbox | None) -> dict[str, Any]:
    if ticketco is not None:
        _stamp(ticketco, "DELETE")
    start = time.time()
    done = subprocess.run(
        cmd,
        env=contender.env(),
        cwd=contender.workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    end = time.time()
    row: dict[str, Any] = {"exit_code": done.returncode, "total_s": round(end - start, 4)}
    if ticketco is not None:
        first = _stamp(ticketco, "GET")
        row["to_first_s"] = round(first["at"] - start, 4) if first["at"] else None
        row["first_path"] = first["path"]
        found = Contender.report(done.stdout)
        row["counts"] = {
            k: found.get(k) for k in ("read", "created", "updated", "unchanged", "rejected")
        }
        row["calls"] = {k: found.get(k) for k in ("source_calls", "destination_calls")}
    row["stderr_tail"] = done.stderr[-2000:] if done.returncode else ""
    row["_stderr"] = done.stderr
    return row


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 4) if values else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    p.add_argument("--records", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--top", type=int, default=15, help="importtime entries to print")
    p.add_argument("--port-base", type=int, default=8700)
    p.add_argument(
        "--label",
        default="",
        help="a name for this measurement (e.g. 'before'): <date>-startup-<label>.json",
    )
    p.add_argument("--no-write", action="store_true", help="print only; write no results file")
    args = p.parse_args(argv)
    command = "python -m bench.startup " + shlex.join(argv if argv is not None else sys.argv[1:])
    work = Path(tempfile.mkdtemp(prefix="tb-startup-"))
    ticketco = Sandbox(
        "ticketco", args.port_base, args.records, 42, work / "logs", stamp_first=True
    )
    airship = Sandbox("airship_crm", args.port_base + 1, 0, 42, work / "logs")
    try:
        ticketco.wait_ready()
        airship.wait_ready()
        contender = Contender("ticketbridge", work / "ticketbridge", Job())
        contender.fresh()
        cmd = contender.command(ticketco.url, airship.url, None)
        fill = timed(cmd, contender, ticketco)
        if fill["exit_code"] != 0:
            print(fill["stderr_tail"], file=sys.stderr)
            return 1
        print(f"fill: {fill['total_s']:.2f} s, {fill['counts']}", flush=True)
        runs, floor = [], []
        for i in range(args.runs):
            floor.append(timed([sys.executable, "-c", "pass"], contender, None))
            row = timed(cmd, contender, ticketco)
            runs.append(row)
            print(
                f"rerun {i + 1}: first source call at {row['to_first_s']} s, "
                f"exit {row['exit_code']} at {row['total_s']} s; {row['counts']}",
                flush=True,
            )
        traced = timed([cmd[0], "-X", "importtime", *cmd[1:]], contender, ticketco)
        modules, import_total = importtime(traced["_stderr"])
        for row in (fill, *runs, traced, *floor):
            row.pop("_stderr")
        summary = {
            "to_first_s_median": _median(runs, "to_first_s"),
            "total_s_median": _median(runs, "total_s"),
            "python_s_median": _median(floor, "total_s"),
            "import_total_s": round(import_total, 4),
            "import_modules": len(modules),
        }
        print(json.dumps(summary, indent=2))
        print(f"importtime, top {args.top} by cumulative time (s):")
        for m in modules[: args.top]:
            print(f"  {m['cumulative_s']:7.3f}  {m['self_s']:7.3f}  {m['module']}")
        if args.no_write:
            return 0 if all(r["exit_code"] == 0 for r in runs) else 1
        suffix = f"-{args.label}" if args.label else ""
        out = HERE / "results" / f"{datetime.now(UTC):%Y-%m-%d}-startup{suffix}.json"
        env = environment(command)
        env["label"] = args.label
        env["records"] = args.records
        out.write_text(
            json.dumps(
                {
                    "environment": env,
                    "summary": summary,
                    "fill": fill,
                    "runs": runs,
                    "python_floor": floor,
                    "importtime_run": traced,
                    "importtime_top": modules[:40],
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {out}")
        return 0 if all(r["exit_code"] == 0 for r in runs) else 1
    finally:
        ticketco.stop()
        airship.stop()


if __name__ == "__main__":
    sys.exit(main())
