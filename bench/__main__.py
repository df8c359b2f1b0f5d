"""``python -m bench``: start the sandboxes, run the scenarios, write the results.

Full run (the default): S1 at 10k, 100k and 1M bookings, S2 and S3 (1%, 10%) and S5 at 10k,
S6 at 2k, three runs each, every contender. ``--quick``: 10k bookings, one run, ticketbridge,
the scenarios that check correctness (S1, S2, S3 at 1%, S5); exits 1 only when a correctness
check fails, never because of a timing.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

from bench import integrations, report
from bench.contenders import ALL, Contender, Job, available
from bench.integrations.runner import IntegrationBench
from bench.procs import Sandbox
from bench.scenarios import Bench, Row

HERE = Path(__file__).resolve().parent
SCENARIOS = ("S1", "S2", "S3", "S5", "S6")


HUGE = 100_000  # S1 sizes above this run after S6


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="10k, one run, correctness subset")
    p.add_argument(
        "--integration",
        default=integrations.CRM,
        help=f"comma list of {', '.join(integrations.NAMES)} (default {integrations.CRM})",
    )
    p.add_argument(
        "--contenders",
        default=None,
        help=f"comma list of {', '.join(ALL)} (default: all installed; --quick: ticketbridge)",
    )
    p.add_argument("--scenarios", default=None, help="comma list of S1,S2,S3,S5,S6")
    p.add_argument(
        "--records", default=None, help="S1 sizes, comma list (default 10000,100000,1000000)"
    )
    p.add_argument(
        "--small",
        type=int,
        default=None,
        help="size for S2, S3 and S5 (default: the smallest S1 size)",
    )
    p.add_argument("--s6-records", type=int, default=2000)
    p.add_argument("--runs", type=int, default=None, help="runs per scenario (default 3)")
    p.add_argument(
        "--large-runs",
        type=int,
        default=None,
        help="runs for S1 sizes above --small (default: --runs)",
    )
    p.add_argument("--s6-runs", type=int, default=None, help="default: --runs")
    p.add_argument(
        "--size-runs",
        default="1000000:1",
        help="S1 runs for particular sizes, e.g. 1000000:1 (a 1M run takes most "
        "of an hour per contender here)",
    )
    p.add_argument(
        "--huge-contenders",
        default=None,
        help=f"contenders for S1 sizes above {HUGE:,} (default: --contenders); "
        "a 1M load of every contender takes longer than the rest together",
    )
    p.add_argument("--shares", default="0.01,0.10", help="S3 mutation shares")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--port-base", type=int, default=18400)
    p.add_argument("--per-page", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--timeout", type=float, default=7200, help="per run, seconds")
    p.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="S1: Airship answers every request this much later (a WAN round trip)",
    )
    p.add_argument(
        "--rate-burst",
        type=int,
        default=None,
        help="S6: rate_burst of ticketbridge's Airship connection (default: unset)",
    )
    p.add_argument(
        "--read-page",
        type=int,
        default=None,
        help="ticketbridge's sync page_size: records its source hands the engine "
        "per page (default: the source's 500)",
    )
    reader = p.add_mutually_exclusive_group()
    reader.add_argument(
        "--source-process",
        dest="source_process",
        action="store_const",
        const=True,
        default=None,
        help="ticketbridge's sync sets source_process: true (default: unset, i.e. auto)",
    )
    reader.add_argument(
        "--one-process",
        dest="source_process",
        action="store_const",
        const=False,
        help="ticketbridge's sync sets source_process: false",
    )
    p.add_argument(
        "--tuned-source",
        action="store_true",
        help="ticketbridge's TicketCo connection sends per_page and sets short_page_is_last "
        "and item_grosses_grouped (default: the connection as `ticketbridge init` writes it)",
    )
    p.add_argument("--results-dir", type=Path, default=HERE / "results")
    p.add_argument("--readme", type=Path, default=HERE / "README.md")
    p.add_argument("--no-readme", action="store_true")
    args = p.parse_args(argv)
    q = args.quick
    args.integration = args.integration.split(",")
    for name in args.integration:
        if name not in integrations.NAMES:
            p.error(f"unknown integration {name!r}")
    args.contenders = (args.contenders or ("ticketbridge" if q else ",".join(ALL))).split(",")
    args.scenarios = (args.scenarios or ("S1,S2,S3,S5" if q else ",".join(SCENARIOS))).split(",")
    args.records = _ints(args.records or ("10000" if q else "10000,100000,1000000"))
    args.small = args.small or min(args.records)
    args.runs = args.runs or (1 if q else 3)
    args.large_runs = args.large_runs or args.runs
    args.s6_runs = args.s6_runs or args.runs
    args.size_runs = {
        int(float(n)): int(r)
        for n, _, r in (item.partition(":") for item in args.size_runs.split(",") if item)
    }
    args.shares = [float(s) for s in args.shares.split(",")] if not q else [0.01]
    args.huge_contenders = (
        args.huge_contenders.split(",") if args.huge_contenders else list(args.contenders)
    )
    for name in args.contenders + args.huge_contenders:
        if name not in ALL:
            p.error(f"unknown contender {name!r}")
    missing = [n for n in args.contenders if not available(n)]
    if missing and args.contenders != list(ALL):
        p.error(f"not installed: {', '.join(missing)} (pip install -r bench/requirements.txt)")
    args.contenders = [n for n in args.contenders if n not in missing]
    args.huge_contenders = [n for n in args.huge_contenders if n not in missing]
    return args


class Stack:
    """Both sandboxes for one data size, in their own processes."""

    def __init__(self, args: argparse.Namespace, records: int, log_dir: Path) -> None:
        port = args.port_base
        self.ticketco = Sandbox("ticketco", port, records, args.seed, log_dir)
        self.airship = Sandbox("airship_crm", port + 1, 0, args.seed, log_dir)

    def __enter__(self) -> Stack:
        self.ticketco.wait_ready()
        self.airship.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ticketco.stop()
        self.airship.stop()


def _size(
    args: argparse.Namespace,
    n: int,
    contenders: list[Contender],
    work: Path,
    rows: list[Row],
    rows_log: Path,
) -> list[Row]:
    """S1 at ``n`` bookings, and S2, S3, S5 when ``n`` is the small size; returns checks."""
    checks: list[Row] = []
    s1 = "S1" in args.scenarios and n in args.records
    small = n == args.small and bool({"S2", "S3", "S5"} & set(args.scenarios))
    if not (s1 or small):
        return checks
    print(f"== {n:,} bookings", flush=True)
    if n > HUGE:
        contenders = [c for c in contenders if c.name in args.huge_contenders]
    with Stack(args, n, work / "logs") as stack:
        bench = Bench(
            n,
            stack.ticketco,
            stack.airship,
            contenders,
            args.timeout,
            work / "logs",
            latency_ms=args.latency_ms,
            rows_log=rows_log,
        )
        if s1 or (small and {"S2", "S3"} & set(args.scenarios)):
            # S2 / S3 start from the state the last full load left.
            runs = args.runs if small else args.large_runs
            bench.s1(args.size_runs.get(n, runs))
        if small and {"S2", "S3"} & set(args.scenarios):
            checks += bench.s2_s3(
                args.runs if "S2" in args.scenarios else 0,
                args.runs,
                args.shares if "S3" in args.scenarios else [],
            )
        if small and "S5" in args.scenarios:
            checks += bench.s5(args.runs)
        rows += [r for r in bench.rows if s1 or r["scenario"] != "S1"]
    return checks


def _integration(
    args: argparse.Namespace,
    name: str,
    contenders: list[Contender],
    work: Path,
    rows: list[Row],
    rows_log: Path,
) -> list[Row]:
    """S1, S2, S3 and S5 of one integration other than TicketCo -> Airship CRM, at the small
    size (S1 always runs: the reruns start from its state and are judged by its result)."""
    it = integrations.get(name)

    def made(c: Contender) -> bool:
        return c.name == "ticketbridge" or it.command(c, "", "") is not None

    built = [c for c in contenders if made(c)]
    skipped = [c.name for c in contenders if not made(c)]
    if skipped:
        print(f"== {name}: no job built for {', '.join(skipped)}", flush=True)
    n = args.small
    print(f"== {name}: {n:,} {it.unit}", flush=True)
    logs = work / "logs"
    source = Sandbox(it.source, args.port_base, n, args.seed, logs)
    destination = Sandbox(it.destination, args.port_base + 1, 0, args.seed, logs)
    checks: list[Row] = []
    try:
        source.wait_ready()
        destination.wait_ready()
        bench = IntegrationBench(
            it, n, source, destination, built, args.timeout, logs, rows_log=rows_log
        )
        checks += bench.s1(args.runs)
        if {"S2", "S3"} & set(args.scenarios):
            checks += bench.s2_s3(
                args.runs if "S2" in args.scenarios else 0,
                args.runs if "S3" in args.scenarios else 0,
                args.shares,
            )
        if "S5" in args.scenarios:
            checks += bench.s5(args.runs)
        rows += bench.rows
    finally:
        source.stop()
        destination.stop()
    return checks


def _s6(
    args: argparse.Namespace,
    contenders: list[Contender],
    work: Path,
    rows: list[Row],
    rows_log: Path,
) -> list[Row]:
    print(f"== S6: {args.s6_records:,} bookings, 10 requests/s, 2% 5xx", flush=True)
    with Stack(args, args.s6_records, work / "logs") as stack:
        bench = Bench(
            args.s6_records,
            stack.ticketco,
            stack.airship,
            contenders,
            args.timeout,
            work / "logs",
            rows_log=rows_log,
        )
        checks = bench.s6(args.s6_runs, rate=10, rate_5xx=0.02)
        rows += bench.rows
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    env = report.environment(command)
    print(f"{command}\n{env['uptime']}", flush=True)
    rows: list[Row] = []
    checks: list[Row] = []
    job = Job(
        args.per_page,
        args.batch_size,
        args.concurrency,
        args.rate_burst,
        args.read_page,
        args.source_process,
        args.tuned_source,
    )
    # Every measured row as it comes (a stopped run keeps what it measured):
    # ``python -m bench.report FILE`` rebuilds the JSON files and the table from it.
    args.results_dir.mkdir(parents=True, exist_ok=True)
    rows_log = args.results_dir / f"{env['date'][:19].replace(':', '')}-rows.jsonl"
    print(f"rows: {rows_log}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ticketbridge-bench-") as tmp:
        work = Path(tmp)
        contenders = [Contender(n, work / n, job) for n in args.contenders]
        sizes = sorted(
            set(args.records)
            | ({args.small} if set(args.scenarios) & {"S2", "S3", "S5"} else set())
        )
        # S6 before the largest sizes: the long 1M loads come last, so that a run stopped
        # before its end has measured everything else.
        plan: list[int | None] = [n for n in sizes if n <= HUGE]
        plan += [None] if "S6" in args.scenarios else []
        plan += [n for n in sizes if n > HUGE]
        if integrations.CRM not in args.integration:
            plan = []
        for step in plan:
            if step is None:
                checks += _s6(args, contenders, work, rows, rows_log)
            else:
                checks += _size(args, step, contenders, work, rows, rows_log)
        for name in args.integration:
            if name != integrations.CRM:
                checks += _integration(args, name, contenders, work, rows, rows_log)
    for c in checks:
        print(f"  {'ok ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}")
    paths = report.write_json(args.results_dir, rows, checks, env)
    print("results: " + ", ".join(str(p) for p in paths))
    if not args.no_readme:
        section = "results" if args.integration == [integrations.CRM] else "integrations"
        report.update_readme(args.readme, rows, env, checks, section)
        print(f"table: {args.readme}")
    print(report.table(rows))
    failed = [c for c in checks if not c["ok"] and c["contender"] == "ticketbridge"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
