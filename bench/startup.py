"""Start-up cost of ``ticketbridge run``: ``python -m bench.startup``.

Serves a TicketCo sandbox of ``--records`` bookings (seed 42) and an empty Airship CRM sandbox
on loopback, loads everything once with the benchmark's project (bench/contenders.py, every
performance option at its default), then times ``--runs`` reruns on the unchanged source:

* ``to_first_s``: from just before the ``exec`` of ``python -m ticketbridge run …`` to the
  moment the TicketCo sandbox receives its first request (the sandbox notes ``time.time()``
  as the request arrives: ``serve_sandbox --stamp-first``), i.e. what the process spends before
  its first source call;
* ``cpu_to_first_s``: the CPU time (user + system, from ``/proc``) the process and its
  children (the forked reader of ``source_process``) had used when that request arrived. The
  sandbox holds each rerun's requests 1 s (latency fault) until the bench has read it, then
  lets them through, so the figure is not smeared by the work that follows (except what the
  run's process does meanwhile, beside its reader); on a busy machine it varies far less
  than wall time;
* ``total_s``: the whole rerun, to exit (including that one held second);
* ``python_s``: ``python -c pass`` the same way, the interpreter's own floor.

One more rerun under ``python -X importtime`` gives the modules by cumulative import time.
``--baseline /other/venv/bin/python`` times another install (e.g. the main branch's) the same
way, its reruns interleaved with these, so a busy machine slows both alike.
Medians go to stdout; every run to ``bench/results/<date>-startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
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
from bench.procs import Sandbox, _tree
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


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its living descendants: with ``source_process``
    the first request comes from the forked reader, whose own time since the fork counts too."""
    total = 0
    for each in _tree(pid):
        try:
            with open(f"/proc/{each}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


HOLD_MS = 1000.0


def by_package(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``importtime`` rows summed by top-level package (ticketbridge by subpackage), largest
    first: what a stretch of the run spent importing what."""
    found: dict[str, dict[str, Any]] = {}
    for r in rows:
        parts = r["module"].split(".")
        key = ".".join(parts[:3]) if parts[0] == "ticketbridge" else parts[0]
        entry = found.setdefault(key, {"package": key, "self_s": 0.0, "modules": 0})
        entry["self_s"] += r["self_s"]
        entry["modules"] += 1
    for entry in found.values():
        entry["self_s"] = round(entry["self_s"], 4)
    return sorted(found.values(), key=lambda e: -e["self_s"])


def timed(
    cmd: list[str],
    contender: Contender,
    ticketco: Sandbox | None,
    probe: bool = False,
    stderr_to: Path | None = None,
) -> dict[str, Any]:
    """Run ``cmd`` once; with ``probe``, hold its TicketCo requests until its CPU time at the
    first one is read. With ``stderr_to`` its stderr goes to that file, whose size at the first
    request is kept (``_stderr_before``): under ``-X importtime``, the imports done before."""
    if ticketco is not None:
        _stamp(ticketco, "DELETE")
        if probe:
            ticketco.faults({"latency_ms": HOLD_MS, "slow_rate": 1.0})
    row: dict[str, Any] = {}
    start = time.time()
    err_file = open(stderr_to, "w+", encoding="utf-8") if stderr_to else None  # noqa: SIM115
    proc = subprocess.Popen(
        cmd,
        env=contender.env(),
        cwd=contender.workdir,
        stdout=subprocess.PIPE,
        stderr=err_file or subprocess.PIPE,
        text=True,
    )
    if ticketco is not None and probe:
        try:
            while proc.poll() is None and time.time() - start < 60:
                if _stamp(ticketco, "GET")["at"]:
                    row["cpu_to_first_s"] = round(_cpu_s(proc.pid), 3)
                    if stderr_to is not None:
                        text = stderr_to.read_text(encoding="utf-8", errors="replace")
                        row["_stderr_before"] = text[: text.rfind("\n") + 1]  # whole lines
                    break
                time.sleep(0.01)
        finally:
            ticketco.faults({})
    stdout, stderr = proc.communicate()
    if err_file is not None:
        err_file.seek(0)
        stderr = err_file.read()
        err_file.close()
    end = time.time()
    row.update({"exit_code": proc.returncode, "total_s": round(end - start, 4)})
    if ticketco is not None:
        first = _stamp(ticketco, "GET")
        row["to_first_s"] = round(first["at"] - start, 4) if first["at"] else None
        row["first_path"] = first["path"]
        found = Contender.report(stdout)
        row["counts"] = {
            k: found.get(k) for k in ("read", "created", "updated", "unchanged", "rejected")
        }
        row["calls"] = {k: found.get(k) for k in ("source_calls", "destination_calls")}
    row["stderr_tail"] = stderr[-2000:] if proc.returncode else ""
    row["_stderr"] = stderr
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
    p.add_argument("--baseline", default=None, help="another interpreter to time, interleaved")
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
        runs, floor, base_runs = [], [], []
        base_cmd = [args.baseline, *cmd[1:]] if args.baseline else None
        for i in range(args.runs):
            floor.append(timed([sys.executable, "-c", "pass"], contender, None))
            row = timed(cmd, contender, ticketco)
            row["cpu_to_first_s"] = timed(cmd, contender, ticketco, probe=True)["cpu_to_first_s"]
            runs.append(row)
            print(
                f"rerun {i + 1}: first source call at {row['to_first_s']} s "
                f"(CPU {row['cpu_to_first_s']} s), "
                f"exit {row['exit_code']} at {row['total_s']} s; {row['counts']}",
                flush=True,
            )
            if base_cmd:
                base = timed(base_cmd, contender, ticketco)
                held = timed(base_cmd, contender, ticketco, probe=True)
                base["cpu_to_first_s"] = held["cpu_to_first_s"]
                base_runs.append(base)
                print(
                    f"  baseline: first source call at {base['to_first_s']} s "
                    f"(CPU {base['cpu_to_first_s']} s), "
                    f"exit {base['exit_code']} at {base['total_s']} s; {base['counts']}",
                    flush=True,
                )
        # Held like a CPU probe, so the imports before the first request can be told apart.
        traced = timed(
            [cmd[0], "-X", "importtime", *cmd[1:]],
            contender,
            ticketco,
            probe=True,
            stderr_to=work / "importtime.txt",
        )
        modules, import_total = importtime(traced["_stderr"])
        before, before_total = importtime(traced.pop("_stderr_before", ""))
        base_modules: list[dict[str, Any]] = []
        base_traced: dict[str, Any] = {}
        if base_cmd:
            base_traced = timed([base_cmd[0], "-X", "importtime", *cmd[1:]], contender, ticketco)
            base_modules, base_total = importtime(base_traced.pop("_stderr"))
        for row in (fill, *runs, traced, *floor, *base_runs):
            row.pop("_stderr")
        summary: dict[str, Any] = {
            "to_first_s_median": _median(runs, "to_first_s"),
            "cpu_to_first_s_median": _median(runs, "cpu_to_first_s"),
            "total_s_median": _median(runs, "total_s"),
            "python_s_median": _median(floor, "total_s"),
            "import_total_s": round(import_total, 4),
            "import_modules": len(modules),
            "import_before_first_s": round(before_total, 4),
            "import_modules_before_first": len(before),
        }
        if base_cmd:
            summary["baseline"] = {
                "python": args.baseline,
                "to_first_s_median": _median(base_runs, "to_first_s"),
                "cpu_to_first_s_median": _median(base_runs, "cpu_to_first_s"),
                "total_s_median": _median(base_runs, "total_s"),
                "import_total_s": round(base_total, 4),
                "import_modules": len(base_modules),
            }
        print(json.dumps(summary, indent=2))
        print(f"importtime, top {args.top} by cumulative time (s):")
        for m in modules[: args.top]:
            print(f"  {m['cumulative_s']:7.3f}  {m['self_s']:7.3f}  {m['module']}")
        packages = by_package(before)
        print(f"imported before the first request, by package, top {args.top} (self s, modules):")
        for pkg in packages[: args.top]:
            print(f"  {pkg['self_s']:7.3f}  {pkg['modules']:4d}  {pkg['package']}")
        if args.no_write:
            return 0 if all(r["exit_code"] == 0 for r in runs + base_runs) else 1
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
                    "importtime_before_first_by_package": packages[:40],
                    "baseline_runs": base_runs,
                    "baseline_importtime_run": base_traced,
                    "baseline_importtime_top": base_modules[:40],
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {out}")
        return 0 if all(r["exit_code"] == 0 for r in runs + base_runs) else 1
    finally:
        ticketco.stop()
        airship.stop()


if __name__ == "__main__":
    sys.exit(main())
