"""Where ticketbridge's time goes in S1: ``python -m bench.profile --records 10000``.

Starts the sandboxes (own processes, loopback), runs one full load with ``ticketbridge run``
under py-spy (sampling from outside the process, 200 Hz, so the run is barely slowed), and
writes ``bench/results/<date>-profile-s1.txt``: the share of samples per area (HTTP client,
mapping, planning, state store, progress output, ...), then the top functions by inclusive and
by own time. py-spy: ``pip install -r bench/requirements.txt``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.contenders import Contender, Job
from bench.procs import Sandbox

HERE = Path(__file__).resolve().parent

# The first area (in this order) matching one of the innermost frames wins: a frame of httpx
# inside the Airship client counts as HTTP, not as the destination connector.
AREAS = [
    ("module imports (start-up)", r"<frozen importlib"),
    (
        "HTTP client (httpx / aiohttp / httpcore / sockets)",
        r"httpx/|httpcore/|anyio/|h11/|aiohttp/|multidict/|yarl/|asyncio/selector_events|ssl\.py",
    ),
    ("JSON encode / decode", r"json/|orjson"),
    ("pydantic validation / models", r"pydantic"),
    ("state store (SQLAlchemy / sqlite3)", r"sqlalchemy/|sqlite3"),
    ("e-mail / phone normalisation", r"email_validator/|phonenumbers/"),
    ("progress bar and logs (rich / structlog)", r"rich/|structlog/|ticketbridge/logs"),
    ("TicketCo mapping (ticketco/mapping.py, schemas.py)", r"connectors/ticketco/"),
    ("Airship mapping / destination code", r"connectors/airship_crm/"),
    ("engine: plan, hashing, records (engine/)", r"ticketbridge/engine/"),
    ("ticketbridge http layer (retry, budget, auth)", r"ticketbridge/http/"),
    ("asyncio event loop", r"asyncio/"),
]


def summarize(raw: str) -> str:
    """A text report from py-spy's collapsed stacks (``frame;frame;... count`` lines)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        if frames and "_worker (concurrent/futures" in frames[-1]:
            continue  # idle pool threads (SQLAlchemy / asyncio executors)
        total += n
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
        for name, pattern in AREAS:
            if any(re.search(pattern, f) for f in reversed(frames[-12:])):
                areas[name] += n
                break
        else:
            areas["other (interpreter, typer, engine glue)"] += n
    out = [
        f"samples: {total} (py-spy, 200 Hz, idle executor threads left out)",
        "",
        "share of samples by area (the first area below whose pattern matches one of the 12 "
        "innermost frames):",
    ]
    out += [f"  {n / total:6.1%}  {name}" for name, n in areas.most_common()]
    out += ["", "top 40 functions, inclusive:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(40)]
    out += ["", "top 40 functions, own time:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(40)]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--port-base", type=int, default=18500)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--stacks", type=Path, default=None, help="also keep py-spy's raw stacks here"
    )
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="the sync sets source_process: false (default: unset, i.e. auto, which reads "
        "TicketCo in a child process; both processes are sampled)",
    )
    args = parser.parse_args(argv)
    beside = Path(sys.executable).parent / "py-spy"
    spy = str(beside) if beside.exists() else shutil.which("py-spy") or "py-spy"
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    suffix = "-one-process" if args.one_process else ""
    out = args.out or HERE / "results" / f"{day}-profile-s1{suffix}.txt"
    with tempfile.TemporaryDirectory(prefix="ticketbridge-profile-") as tmp:
        work = Path(tmp)
        tc = Sandbox("ticketco", args.port_base, args.records, args.seed, work)
        air = Sandbox("airship_crm", args.port_base + 1, 0, args.seed, work)
        try:
            tc.wait_ready()
            air.wait_ready()
            job = Job(source_process=False if args.one_process else None)
            c = Contender("ticketbridge", work / "tb", job)
            c.fresh()
            cmd = c.command(tc.url, air.url, None)
            raw = work / "stacks.txt"
            started = datetime.now(UTC)
            follow = [] if args.one_process else ["--subprocesses"]
            subprocess.run(
                [spy, "record", "-r", "200", "-f", "raw", "-o", str(raw), *follow, "--", *cmd],
                env=c.env(),
                cwd=c.workdir,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wall = (datetime.now(UTC) - started).total_seconds()
            text = summarize(raw.read_text())
            if args.stacks:
                shutil.copyfile(raw, args.stacks)
        finally:
            tc.stop()
            air.stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    mode = (
        ", source_process: false"
        if args.one_process
        else ", source_process unset (auto: both processes sampled)"
    )
    out.write_text(
        f"ticketbridge S1 profile: {args.records:,} bookings{mode}, {wall:.1f} s wall "
        f"under py-spy; {' '.join(cmd[1:4])} ...\n\n" + text,
        encoding="utf-8",
    )
    print(out)
    print(text[:3000])


if __name__ == "__main__":
    main()
