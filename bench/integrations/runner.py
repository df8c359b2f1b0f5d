"""S1, S2, S3 and S5 for an integration other than TicketCo -> Airship CRM.

The same measurement as ``bench/scenarios.py`` (``procs.run_measured``, calls and writes from
the sandboxes' ``/_sandbox/stats`` before and after, rows in the same shape for
``bench/report.py``), with the integration named in every row. What the destination should
hold (the oracle) is what the last full load left in it: S2 and S3 are judged against the
writes it made, S5 against what it held (no duplicate, no miss, nothing unexpected).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench import report
from bench.contenders import ENGINES, Contender
from bench.integrations.base import Held, Integration
from bench.procs import Sandbox, delta, run_figures, run_measured

Row = dict[str, Any]


@dataclass
class IntegrationBench:
    integration: Integration
    records: int
    source: Sandbox
    destination: Sandbox
    contenders: list[Contender]
    timeout_s: float
    log_dir: Path
    rows_log: Path | None = None
    rows: list[Row] = field(default_factory=list)
    s1_wall: dict[str, list[float]] = field(default_factory=dict)
    oracle: set[str] = field(default_factory=set)
    full_load: Row = field(default_factory=dict)  # the counts ticketbridge's full load left

    def command(self, c: Contender) -> list[str]:
        it = self.integration
        if c.name != "ticketbridge":
            other = it.command(c, self.source.url, self.destination.url)
            if other is None:
                raise SystemExit(f"{it.name}: no {c.name} job is built for it")
            return other
        path = c.workdir / "ticketbridge.yaml"
        project = it.project(self.source.url, self.destination.url, c.job)
        if c.job.source_process is not None:
            project["syncs"][it.sync]["source_process"] = c.job.source_process
        path.write_text(yaml.safe_dump(project, sort_keys=False))
        return [
            sys.executable,
            "-m",
            "ticketbridge",
            "run",
            it.sync,
            "--json",
            "--config",
            str(path),
        ]

    def measure(
        self,
        scenario: str,
        c: Contender,
        *,
        run: int,
        extra: Row | None = None,
        kill_when: Callable[[], bool] | None = None,
    ) -> Row:
        before = (self.source.stats(), self.destination.stats())
        cpu0 = (self.source.cpu_s(), self.destination.cpu_s())
        started = datetime.now(UTC)
        logs = self.log_dir / f"{self.integration.name}-{scenario}-{self.records}-{c.name}-{run}"
        logs.mkdir(parents=True, exist_ok=True)
        m = run_measured(
            self.command(c),
            env=self.integration.env(c.workdir),
            cwd=c.workdir,
            timeout_s=self.timeout_s,
            kill_when=kill_when,
            logs=logs,
        )
        src = delta(self.source.stats(), before[0])
        dst = delta(self.destination.stats(), before[1])
        row: Row = {
            "integration": self.integration.name,
            "scenario": scenario,
            "records": self.records,
            "unit": self.integration.unit,
            "contender": c.name,
            "run": run,
            "started": started.isoformat(timespec="seconds"),
            **run_figures(m, self.records, src, dst),
            # Source keys written (the name is the CRM rows' one, so report.py reads both).
            "booking_keys_written": sorted(
                self.integration.written(dst["writes"], self.destination)
            ),
            "sandbox_cpu_s": {
                self.source.platform: round(self.source.cpu_s() - cpu0[0], 2),
                self.destination.platform: round(self.destination.cpu_s() - cpu0[1], 2),
            },
            "reported": c.report(m.stdout),
            **(extra or {}),
        }
        self.rows.append(row)
        self._log(row)
        print(_line(row), flush=True)
        return row

    def _log(self, row: Row | None = None, checks: list[Row] | None = None) -> None:
        if self.rows_log is None:
            return
        lines = [report.counted(row)] if row is not None else []
        lines += [{"kind": "check", **c} for c in _judged(checks or [])]
        with open(self.rows_log, "a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(line, default=str) + "\n" for line in lines)

    def _check(self, row: Row, ok: bool, detail: str) -> Row:
        return {
            "check": f"{row['scenario']} {self.integration.name} {row['contender']} "
            f"run {row['run']}",
            "ok": ok,
            "detail": detail,
            "contender": row["contender"],
            "integration": self.integration.name,
        }

    # -- S1 / S2 / S3 ----------------------------------------------------------------------

    def engines(self) -> list[Contender]:
        """The contenders that keep state between runs. As for TicketCo -> Airship CRM, the
        raw ceiling runs S1 only: it has no state, so every rerun is a full load again."""
        return [c for c in self.contenders if c.name in ENGINES]

    def reset(self) -> None:
        self.source.reset()
        self.destination.reset()

    def s1(self, runs: int) -> list[Row]:
        """Full loads from a fresh state and an empty destination, contenders interleaved.
        The last one's destination is the oracle of the reruns."""
        checks: list[Row] = []
        for run in range(runs):
            n = run % len(self.contenders)
            for c in self.contenders[n:] + self.contenders[:n]:
                self.reset()
                c.fresh()
                row = self.measure("S1", c, run=run)
                self.s1_wall.setdefault(c.name, []).append(row["wall_s"])
                held = self.integration.held(self.destination)
                if c.name == "ticketbridge":
                    self.oracle, self.full_load = set(held.keys), dict(held.extra)
                dup = held.duplicates
                row.update(held=len(held.keys), duplicates=dup, **held.extra)
                check = self._check(
                    row,
                    row["exit_code"] == 0 and dup == 0 and bool(held.keys),
                    f"held {len(held.keys)}, duplicates {dup}, exit {row['exit_code']}",
                )
                self._log(row, [check])
                checks.append(check)
        return _judged(checks)

    def s2_s3(self, s2_runs: int, s3_runs: int, shares: list[float]) -> list[Row]:
        """Reruns on the state the last full load left: unchanged (S2), then after each S3
        change. Each rerun must write exactly the changed records."""
        checks: list[Row] = []
        for run in range(s2_runs):
            for c in self.engines():
                row = self.measure("S2", c, run=run)
                checks.append(self._writes(row, set()))
        for run in range(s3_runs):
            for share in shares:
                for change in self.integration.changes(
                    share, run, self.source, self.destination, self.oracle, share == shares[0]
                ):
                    for c in self.engines():
                        in_scope = len(change.expected) or change.changed
                        row = self.measure(
                            change.label,
                            c,
                            run=run,
                            extra={"changed": change.changed, "changed_in_scope": in_scope},
                        )
                        row["calls_per_changed"] = round(
                            row["destination_calls"] / max(1, in_scope), 2
                        )
                        if change.verify is None:
                            checks.append(self._writes(row, change.expected))
                        else:
                            ok, detail = change.verify(self.destination)
                            check = self._check(row, ok and row["exit_code"] == 0, detail)
                            self._log(row, [check])
                            checks.append(check)
        return _judged(checks)

    def _writes(self, row: Row, expected: set[str]) -> Row:
        written = set(row["booking_keys_written"])
        missing, extra = expected - written, written - expected
        row.update(expected_writes=len(expected))
        check = self._check(
            row,
            not missing and not extra and row["exit_code"] == 0,
            f"records written {len(written)} (expected {len(expected)}, missing "
            f"{len(missing)} {sorted(missing)[:5]}, unexpected {len(extra)} "
            f"{sorted(extra)[:5]}), writes {row['write_totals']}",
        )
        self._log(row, [check])
        return check

    # -- S5 ----------------------------------------------------------------------------------

    def s5(self, runs: int, at: float = 0.3) -> list[Row]:
        """SIGKILL at ``at`` of the median full load (not before the destination's first
        write), rerun, then compare what the destination holds with the oracle."""
        checks: list[Row] = []
        for run in range(runs):
            for c in self.engines():
                self.reset()
                c.fresh()
                crashed = self.measure("S5-crash", c, run=run, kill_when=self._killer(c.name, at))
                landed = len(crashed["booking_keys_written"])
                row = self.measure(
                    "S5-rerun",
                    c,
                    run=run,
                    extra={
                        "landed_before_kill": landed,
                        "landed_share": round(landed / max(1, len(self.oracle)), 3),
                    },
                )
                held = self.integration.held(self.destination)
                checks.append(self._held_check(row, held))
        return _judged(checks)

    def _killer(self, name: str, at: float) -> Callable[[], bool]:
        walls = sorted(self.s1_wall.get(name, [])) or [10.0]
        deadline = time.monotonic() + walls[len(walls) // 2] * at
        polled = {"next": 0.0}

        def due() -> bool:
            now = time.monotonic()
            if now < deadline or now < polled["next"]:
                return False
            polled["next"] = now + 0.1
            written: int = sum(self.destination.stats()["write_totals"].values())
            return written > 0

        return due

    def _held_check(self, row: Row, held: Held) -> Row:
        duplicates = held.duplicates
        misses = len(self.oracle - set(held.keys))
        unexpected = len(set(held.keys) - self.oracle)
        row.update(duplicates=duplicates, misses=misses, unexpected=unexpected, **held.extra)
        row["vs_full_load"] = {
            k: [v, self.full_load[k]]
            for k, v in held.extra.items()
            if isinstance(v, int) and self.full_load.get(k) not in (None, v)
        }
        check = self._check(
            row,
            duplicates == 0 and misses == 0 and unexpected == 0 and row["exit_code"] in (0, 3),
            f"duplicates {duplicates}, misses {misses}, unexpected {unexpected}, exit "
            f"{row['exit_code']}; {held.extra}",
        )
        self._log(row, [check])
        return check


def _judged(checks: list[Row]) -> list[Row]:
    """ticketbridge's checks. The others are measured, not judged: they keep no record of
    what they sent, so a rerun sends everything again (the rows show what that costs)."""
    return [c for c in checks if c["contender"] == "ticketbridge"]


def _line(row: Row) -> str:
    return (
        f"  {row['integration']:<23} {row['scenario']:<9} {row['records']:>8} "
        f"{row['contender']:<13} run {row['run']}: {row['wall_s']:8.2f} s  "
        f"src {row['source_calls']:>6}  dst {row['destination_calls']:>7}  "
        f"writes {row['destination_writes']:>7}  keys {len(row['booking_keys_written']):>6}  "
        f"cpu {row['cpu_s']:7.1f} s  rss {row['max_rss_mb']:6.1f} MB  exit {row['exit_code']}"
        + (" (killed)" if row["killed"] else "")
    )
