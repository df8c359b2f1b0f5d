"""The scenarios: S1 full load, S2 unchanged rerun, S3 rerun after changes, S5 crash and rerun,
S6 rate-limited destination. Every number about API calls and writes is read from the
sandboxes' ``/_sandbox/stats`` (a before/after difference), never from the contender.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import airship_body, report
from bench.contenders import ENGINES, TICKETCO_TOKEN, Contender
from bench.procs import Sandbox, delta, run_figures, run_measured

Row = dict[str, Any]


@dataclass
class Oracle:
    """What the destination should hold: bookings with a usable identifier, and their events."""

    usable: set[str]
    unusable: set[str]
    event_of: dict[str, str]
    ends: dict[str, datetime]

    @classmethod
    def read(cls, ticketco: Sandbox) -> Oracle:
        """Read the whole source (1,000 items a page) and map it like the contenders do."""
        now = datetime.now(UTC)
        units = {
            n.casefold(): i
            for i, n in enumerate(("Riverside Hall", "Bowl Arena", "Harbour Stage"), start=1001)
        }
        usable: set[str] = set()
        unusable: set[str] = set()
        event_of: dict[str, str] = {}
        ends: dict[str, datetime] = {}
        with httpx.Client(base_url=f"{ticketco.url}/api/public/v1", timeout=300) as client:
            for event in _pages(client, "events", "events"):
                items = list(_pages(client, "item_grosses", "item_grosses", event_id=event["id"]))
                eid = str(event["id"])
                if event.get("end_at"):
                    ends[eid] = datetime.fromisoformat(event["end_at"])
                for ref, body in airship_body.bodies(event, items, units, now):
                    (usable if body is not None else unusable).add(ref)
                    event_of[ref] = eid
        return cls(usable, unusable, event_of, ends)

    def clock_changes(self, since: datetime, until: datetime) -> set[str]:
        """Bookings whose status may change by the clock alone between two runs: those of
        events that ended in between (booked -> no-show)."""
        ended = {e for e, end in self.ends.items() if since <= end <= until}
        return {r for r, e in self.event_of.items() if e in ended and r in self.usable}


def _pages(client: httpx.Client, path: str, key: str, **params: Any) -> Any:
    page = 1
    while True:
        response = client.get(
            path, params={"token": TICKETCO_TOKEN, "page": page, "per_page": 1000, **params}
        )
        response.raise_for_status()
        found = response.json()[key]
        if not found:
            return
        yield from found
        page += 1


@dataclass
class Bench:
    """One pair of sandboxes (TicketCo with ``records`` bookings, Airship CRM) and the
    contenders that run against them."""

    records: int
    ticketco: Sandbox
    airship: Sandbox
    contenders: list[Contender]
    timeout_s: float
    log_dir: Path
    rows: list[Row] = field(default_factory=list)
    oracle: Oracle | None = None
    s1_wall: dict[str, list[float]] = field(default_factory=dict)
    latency_ms: float = 0.0  # S1 only: every Airship request answers this much later
    rows_log: Path | None = None  # every row is appended here as JSON, as it is measured

    def reset(self) -> None:
        self.ticketco.reset()
        self.airship.reset()

    def get_oracle(self) -> Oracle:
        if self.oracle is None:
            self.oracle = Oracle.read(self.ticketco)
        return self.oracle

    def measure(
        self,
        scenario: str,
        c: Contender,
        *,
        run: int,
        extra: Row | None = None,
        rate: float | None = None,
        kill_when: Callable[[], bool] | None = None,
    ) -> Row:
        """One measured run of ``c``; returns (and keeps) its result row."""
        before = (self.ticketco.stats(), self.airship.stats())
        cpu0 = (self.ticketco.cpu_s(), self.airship.cpu_s())
        started = datetime.now(UTC)
        logs = self.log_dir / f"{scenario}-{self.records}-{c.name}-{run}"
        logs.mkdir(parents=True, exist_ok=True)
        m = run_measured(
            c.command(self.ticketco.url, self.airship.url, rate),
            env=c.env(),
            cwd=c.workdir,
            timeout_s=self.timeout_s,
            kill_when=kill_when,
            logs=logs,
        )
        src = delta(self.ticketco.stats(), before[0])
        dst = delta(self.airship.stats(), before[1])
        row: Row = {
            "scenario": scenario,
            "records": self.records,
            "contender": c.name,
            "run": run,
            "started": started.isoformat(timespec="seconds"),
            **run_figures(m, self.records, src, dst),
            "booking_keys_written": sorted(
                k.split(":", 1)[1] for k in dst["writes"] if k.startswith("booking:")
            ),
            "faults": dst["faults"],
            "sandbox_cpu_s": {
                "ticketco": round(self.ticketco.cpu_s() - cpu0[0], 2),
                "airship_crm": round(self.airship.cpu_s() - cpu0[1], 2),
            },
            "reported": c.report(m.stdout),
            **(extra or {}),
        }
        self.rows.append(row)
        self._log(row)
        print(_line(row), flush=True)
        return row

    def _log(self, row: Row | None = None, checks: list[Row] | None = None) -> None:
        """Append a row (again, once its checks added to it) and checks to ``rows_log``."""
        if self.rows_log is None:
            return
        lines = []
        if row is not None:
            lines.append(report.counted(row))
        lines += [{"kind": "check", **c} for c in checks or []]
        with open(self.rows_log, "a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(line, default=str) + "\n" for line in lines)

    # -- S1 / S2 / S3 ----------------------------------------------------------------------

    def s1(self, runs: int) -> None:
        """Full loads from a fresh state and an empty destination; contenders interleaved
        (the order rotates every round). Each contender keeps the state of its last load."""
        for run in range(runs):
            order = (
                self.contenders[run % len(self.contenders) :]
                + self.contenders[: run % len(self.contenders)]
            )
            for c in order:
                self.reset()
                if self.latency_ms:
                    self.airship.faults({"latency_ms": self.latency_ms, "slow_rate": 1.0})
                c.fresh()
                row = self.measure("S1", c, run=run, extra={"latency_ms": self.latency_ms})
                self.s1_wall.setdefault(c.name, []).append(row["wall_s"])
        if self.latency_ms:
            self.airship.faults({})  # the reruns that follow run without it

    def s2_s3(self, s2_runs: int, s3_runs: int, shares: list[float]) -> list[Row]:
        """Reruns on the state the last S1 round left: unchanged (S2), then after a mutation of
        ``share`` of the future bookings (S3). Returns the correctness checks."""
        oracle = self.get_oracle()
        engines = [c for c in self.contenders if c.name in ENGINES]
        checks: list[Row] = []
        last = datetime.now(UTC)
        for run in range(s2_runs):
            for c in engines:
                row = self.measure("S2", c, run=run)
                allowed = oracle.clock_changes(last, datetime.now(UTC))
                last = _started(row)
                found = _writes_check(row, set(), allowed)
                self._log(row, found)
                checks += found
        for share in shares:
            label = f"S3-{share:.0%}"
            for run in range(s3_runs):
                changed = self.ticketco.mutate(
                    {"share": share, "cancel_share": 0.0, "no_shows": False, "seed": 100 + run}
                )
                expected = set(changed["changed"]) & oracle.usable
                for c in engines:
                    row = self.measure(
                        label,
                        c,
                        run=run,
                        extra={
                            "changed": len(changed["changed"]),
                            "changed_in_scope": len(expected),
                        },
                    )
                    allowed = oracle.clock_changes(last, datetime.now(UTC))
                    last = _started(row)
                    found = _writes_check(row, expected, allowed)
                    self._log(row, found)
                    checks += found
        return checks

    # -- S5 ----------------------------------------------------------------------------------

    def s5(self, runs: int, at: float = 0.3) -> list[Row]:
        """SIGKILL at ``at`` of the contender's median S1 time (or, without one, once that
        share of the expected bookings has been written), then rerun; check the destination."""
        oracle = self.get_oracle()
        checks: list[Row] = []
        for run in range(runs):
            for c in [c for c in self.contenders if c.name in ENGINES]:
                self.reset()
                c.fresh()
                kill = self._killer(c.name, at, len(oracle.usable))
                crashed = self.measure("S5-crash", c, run=run, kill_when=kill)
                landed = len(crashed["booking_keys_written"])
                row = self.measure(
                    "S5-rerun",
                    c,
                    run=run,
                    extra={
                        "landed_before_kill": landed,
                        "landed_share": round(landed / max(1, len(oracle.usable)), 3),
                    },
                )
                check = self._destination_check(row, oracle)
                self._log(row, [check])
                checks.append(check)
        return checks

    def _killer(self, name: str, at: float, expected: int) -> Callable[[], bool]:
        walls = sorted(self.s1_wall.get(name, []))
        if walls:
            # At ``at`` of the median full load, but not before the destination has its first
            # write: a kill during start-up (or while a tool only extracts) tests nothing.
            deadline = time.monotonic() + walls[len(walls) // 2] * at
            least, every = 1.0, 0.1
        else:  # no S1 time to go by: at ``at`` of the expected writes (~1.5 per booking)
            deadline, least, every = 0.0, at * expected * 1.5, 0.5
        polled = {"next": 0.0}

        def due() -> bool:
            now = time.monotonic()
            if now < deadline or now < polled["next"]:
                return False
            polled["next"] = now + every
            written: dict[str, int] = self.airship.stats()["write_totals"]
            return sum(written.values()) >= least

        return due

    def _destination_check(self, row: Row, oracle: Oracle) -> Row:
        data = self.airship.data()
        refs = Counter(b["booking_reference"] for b in data["bookings"])
        emails = Counter((c["email"] or "").casefold() for c in data["contacts"] if c["email"])
        duplicates = sum(n - 1 for n in refs.values()) + sum(n - 1 for n in emails.values())
        misses = len(oracle.usable - set(refs))
        unexpected = len(set(refs) - oracle.usable)
        row.update(duplicates=duplicates, misses=misses, unexpected=unexpected)
        return {
            "check": f"{row['scenario']} {row['contender']} run {row['run']}",
            "ok": duplicates == 0
            and misses == 0
            and unexpected == 0
            and row["exit_code"] in (0, 3),
            "detail": f"duplicates {duplicates}, misses {misses}, unexpected {unexpected}, "
            f"exit {row['exit_code']}",
            "contender": row["contender"],
        }

    # -- S6 ----------------------------------------------------------------------------------

    def s6(self, runs: int, rate: float, rate_5xx: float) -> list[Row]:
        """The destination allows ``rate`` requests/s (fixed one-second windows, 429 above)
        and fails ``rate_5xx`` of requests with 503. ticketbridge is told the rate."""
        oracle = self.get_oracle()
        checks: list[Row] = []
        for run in range(runs):
            for c in self.contenders:
                self.reset()
                c.fresh()
                self.airship.faults({"rate_limit_per_s": rate, "rate_5xx": rate_5xx, "seed": run})
                row = self.measure("S6", c, run=run, rate=rate)
                accepted = row["destination_calls"] - row["destination_statuses"].get("429", 0)
                bound = accepted / rate
                row.update(
                    status_429=row["destination_statuses"].get("429", 0),
                    status_5xx=row["destination_statuses"].get("503", 0),
                    bound_s=round(bound, 1),
                    over_bound=round(row["wall_s"] / bound - 1, 3) if bound else None,
                )
                check = self._destination_check(row, oracle)
                self._log(row, [check] if c.name == "ticketbridge" else [])
                if c.name == "ticketbridge":
                    checks.append(check)
        return checks


def _started(row: Row) -> datetime:
    return datetime.fromisoformat(row["started"])


def _writes_check(row: Row, expected: set[str], allowed: set[str]) -> list[Row]:
    """ticketbridge must write exactly the changed bookings (plus any the clock changed).
    Other contenders are measured, not checked: they keep no record of what they sent."""
    written = set(row["booking_keys_written"])
    missing, extra = expected - written, written - expected - allowed
    row.update(expected_writes=len(expected), clock_allowed=len(allowed & written))
    if row["contender"] != "ticketbridge":
        return []
    return [
        {
            "check": f"{row['scenario']} {row['contender']} run {row['run']}",
            "ok": not missing and not extra and row["exit_code"] == 0,
            "detail": f"booking writes {len(written)} (expected {len(expected)}, missing "
            f"{len(missing)}, unexpected {len(extra)}), writes "
            f"{row['write_totals']}",
            "contender": row["contender"],
        }
    ]


def _line(row: Row) -> str:
    return (
        f"  {row['scenario']:<9} {row['records']:>8} {row['contender']:<13} "
        f"run {row['run']}: {row['wall_s']:8.2f} s  {row['records_per_s'] or 0:8.1f} rec/s  "
        f"src {row['source_calls']:>6}  dst {row['destination_calls']:>7}  "
        f"writes {row['destination_writes']:>7}  cpu {row['cpu_s']:7.1f} s  "
        f"rss {row['max_rss_mb']:6.1f} MB  pss {row.get('tree_pss_mb') or 0:6.1f} MB  "
        f"exit {row['exit_code']}" + (" (killed)" if row["killed"] else "")
    )
