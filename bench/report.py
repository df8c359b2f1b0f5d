"""Results: one JSON file per scenario, and the markdown table in ``bench/README.md``."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"
CRM = "ticketco-airship"  # rows without an ``integration`` are TicketCo -> Airship CRM
Row = dict[str, Any]


def environment(command: str) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in (
        "ticketbridge",
        "dlt",
        "httpx",
        "httpcore",
        "aiohttp",
        "requests",
        "uvicorn",
        "httptools",
        "starlette",
        "orjson",
        "pydantic",
    ):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    repo = Path(__file__).resolve().parent.parent
    commit = subprocess.run(
        ["git", "-C", str(repo), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "command": command,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit or None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load": os.getloadavg(),
        "uptime": uptime.strip(),
        "versions": versions,
    }


def counted(row: Row) -> Row:
    """The row with its written refs as a count: the refs served the checks, files keep how
    many there were (a row read back from a rows log already holds the count)."""
    written = row["booking_keys_written"]
    return {**row, "booking_keys_written": written if isinstance(written, int) else len(written)}


def write_json(
    results_dir: Path, rows: list[Row], checks: list[Row], env: dict[str, Any]
) -> list[Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    by_scenario: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        by_scenario[(row.get("integration", CRM), row["scenario"].split("-")[0])].append(row)
    paths = []
    for (integration, scenario), found in by_scenario.items():
        name = scenario.lower() if integration == CRM else f"{integration}-{scenario.lower()}"
        path = results_dir / f"{day}-{name}.json"
        found = [counted(r) for r in found]
        mine = [
            c
            for c in checks
            if c["check"].startswith(scenario) and c.get("integration", CRM) == integration
        ]
        path.write_text(
            json.dumps({"environment": env, "rows": found, "checks": mine}, indent=1, default=str)
            + "\n",
            encoding="utf-8",
        )
        paths.append(path)
    return paths


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def table(rows: list[Row]) -> str:
    """Medians per scenario, size and contender (runs in brackets)."""
    groups: dict[tuple[str, str, int, str], list[Row]] = defaultdict(list)
    for row in rows:
        it = row.get("integration", CRM)
        groups[(it, row["scenario"], row["records"], row["contender"])].append(row)
    several = len({k[0] for k in groups}) > 1 or any(k[0] != CRM for k in groups)
    head = (
        ("| integration | scenario | records " if several else "| scenario | bookings ")
        + "| contender | runs | wall s | records/s | source calls "
        "| destination calls | destination writes | CPU s / 1k | peak RSS MB "
        "| tree PSS MB | notes |"
    )
    lines = [head, "|" + "---|" * (14 if several else 13)]
    order = {
        "S1": 0,
        "S2": 1,
        "S3-1%": 2,
        "S3-10%": 3,
        "S3-event": 4,
        "S5-crash": 5,
        "S5-rerun": 6,
        "S6": 7,
    }
    names = {"ticketbridge": 0, "dlt-defaults": 1, "dlt-tuned": 2, "raw": 3, "raw-aiohttp": 4}
    integrations = {CRM: 0, "ticketmaster-heyloyalty": 1, "ticketco-wallet": 2}
    for key in sorted(
        groups,
        key=lambda k: (integrations.get(k[0], 9), order.get(k[1], 9), k[2], names.get(k[3], 9)),
    ):
        found = groups[key]
        last = found[-1]
        unit = f" {last['unit']}" if several and last.get("unit") else ""
        lines.append(
            ("| " + key[0] + " " if several else "")
            + f"| {key[1]} | {key[2]:,}{unit} | {key[3]} | {len(found)} "
            f"| {_median([r['wall_s'] for r in found]):.1f} "
            f"| {_median([r['records_per_s'] or 0 for r in found]):,.0f} "
            f"| {_median([r['source_calls'] for r in found]):,.0f} "
            f"| {_median([r['destination_calls'] for r in found]):,.0f} "
            f"| {_median([r['destination_writes'] for r in found]):,.0f} "
            f"| {_median([r['cpu_s_per_1k'] or 0 for r in found]):.2f} "
            f"| {max(r['max_rss_mb'] for r in found):.0f} "
            f"| {_pss(found)} | {_notes(last)} |"
        )
    return "\n".join(lines)


def _pss(rows: list[Row]) -> str:
    found = [r["tree_pss_mb"] for r in rows if r.get("tree_pss_mb")]
    return f"{max(found):.0f}" if found else ""  # rows measured before the column existed


def _notes(row: Row) -> str:
    notes = []
    if row["scenario"].startswith("S3"):
        written = row["booking_keys_written"]
        count = written if isinstance(written, int) else len(written)
        changed = row.get("changed_in_scope")
        per_change = (
            f", calls per changed record {row['destination_calls'] / changed:.2f}"
            if changed
            else ""
        )
        keys = "booking keys" if row.get("integration", CRM) == CRM else "records"
        notes.append(f"changed in scope {changed}, {keys} written {count}{per_change}")
    if row["scenario"] == "S5-crash":
        notes.append("SIGKILL")
    if row["scenario"] == "S5-rerun":
        notes.append(
            f"landed before kill {row.get('landed_share', 0):.0%}; duplicates "
            f"{row.get('duplicates')}, misses {row.get('misses')}"
        )
        for name, (now, full) in (row.get("vs_full_load") or {}).items():
            notes.append(f"{name.replace('_', ' ')} {now:,} (a full load: {full:,})")
    if row["scenario"] == "S6":
        notes.append(
            f"429s {row.get('status_429')}, 503s {row.get('status_5xx')}, bound "
            f"{row.get('bound_s')} s, over bound {row.get('over_bound', 0):+.0%}"
        )
    if row["exit_code"] not in (0, 3) and not row["killed"]:
        notes.append(f"exit {row['exit_code']}")
    return "; ".join(notes)


TITLES = {
    CRM: "TicketCo → Airship CRM",
    "ticketmaster-heyloyalty": "Ticketmaster → Heyloyalty",
    "ticketco-wallet": "TicketCo → Airship Wallet",
}
ORDER = {CRM: 0, "ticketmaster-heyloyalty": 1, "ticketco-wallet": 2}


def _run_line(env: dict[str, Any]) -> str:
    return (
        f"Run {env['date']} at commit {env.get('commit')} on {env['cpus']} CPUs, "
        f"Python {env['python']}, dlt {env['versions'].get('dlt')}, "
        f"httpx {env['versions'].get('httpx')}, aiohttp {env['versions'].get('aiohttp')}, "
        f"uvicorn {env['versions'].get('uvicorn')} (httptools "
        f"{env['versions'].get('httptools')}); "
        f"load before the run: `{env['uptime']}`."
    )


def _checks_line(checks: list[Row]) -> str:
    failed = [c for c in checks if not c["ok"]]
    return (
        f"Correctness checks: {len(checks) - len(failed)} passed, {len(failed)} failed"
        + "".join(f"\n- FAILED {c['check']}: {c['detail']}" for c in failed)
    )


def update_readme(
    readme: Path,
    rows: list[Row],
    env: dict[str, Any],
    checks: list[Row],
    section: str = "results",
) -> None:
    """Replace the text between the ``section``'s markers (or append it) with this run's
    table: ``results`` for TicketCo -> Airship CRM, ``integrations`` for the others. In
    ``integrations``, the rows (and the paragraph) of an integration this run did not measure
    are kept: a run of one integration leaves the others' figures alone."""
    start, end = START.replace("results", section), END.replace("results", section)
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    present = start in text and end in text
    if section == "integrations":
        old = text[text.index(start) + len(start) : text.index(end)] if present else ""
        body = "\n".join([start, _integrations(old, rows, env, checks), end])
    else:
        body = "\n".join(
            [
                start,
                _run_line(env),
                "",
                f"Command: `{env['command']}`",
                "",
                table(rows),
                "",
                _checks_line(checks),
                end,
            ]
        )
    if present:
        text = text[: text.index(start)] + body + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + body + "\n"
    readme.write_text(text, encoding="utf-8")


def _integrations(old: str, rows: list[Row], env: dict[str, Any], checks: list[Row]) -> str:
    """The ``integrations`` section: one paragraph per integration (where its rows come from),
    then one table. This run's integrations replace their old paragraph and rows."""
    measured = {r.get("integration", CRM) for r in rows}

    def owner(paragraph: str) -> str | None:
        return next((i for i, t in TITLES.items() if paragraph.startswith(f"{t} rows:")), None)

    def row_owner(line: str) -> str | None:
        cells = line.split("|")
        return cells[1].strip() if len(cells) > 2 and cells[1].strip() in TITLES else None

    kept_lines = [line for line in old.splitlines() if (o := row_owner(line)) and o not in measured]
    kept = {row_owner(line) for line in kept_lines}
    paragraphs: dict[str, list[str]] = defaultdict(list)
    for paragraph in old.strip().split("\n\n"):
        o = owner(paragraph.strip())
        if o is not None and o in kept:
            paragraphs[o].append(paragraph.strip())
    for it in sorted(measured, key=lambda i: ORDER.get(i, 9)):
        mine = [c for c in checks if c.get("integration", CRM) == it]
        paragraphs[it] = [
            f"{TITLES.get(it, it)} rows: {_run_line(env)} Command: `{env['command']}`. "
            + _checks_line(mine)
        ]
    lines = table(rows).splitlines()
    body = sorted(kept_lines + lines[2:], key=lambda line: ORDER.get(row_owner(line) or "", 9))
    out = [p for it in sorted(paragraphs, key=lambda i: ORDER.get(i, 9)) for p in paragraphs[it]]
    return "\n\n".join([*out, "\n".join(lines[:2] + body)]) + "\n"


def rebuild(log: Path, results_dir: Path, readme: Path | None) -> list[Path]:
    """The JSON files and the README table from a run's rows log (``<time>-rows.jsonl``),
    e.g. of a run that was stopped before it wrote them itself."""
    rows: dict[tuple[Any, ...], Row] = {}
    checks: dict[str, Row] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item.pop("kind", None) == "check":
            checks[item["check"]] = item
        else:  # a row logged again once checked replaces its first version
            key = (item.get("integration", CRM), item["scenario"], item["records"])
            rows[(*key, item["contender"], item["run"])] = item
    env = environment(f"python -m bench.report {log}")
    paths = write_json(results_dir, list(rows.values()), list(checks.values()), env)
    if readme is not None:
        crm_only = all(r.get("integration", CRM) == CRM for r in rows.values())
        section = "results" if crm_only else "integrations"
        update_readme(readme, list(rows.values()), env, list(checks.values()), section)
    return paths


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.report", description=rebuild.__doc__)
    parser.add_argument("log", type=Path)
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--readme", type=Path, default=Path(__file__).parent / "README.md")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    for path in rebuild(args.log, args.results_dir, None if args.no_readme else args.readme):
        print(path)


if __name__ == "__main__":
    main()
