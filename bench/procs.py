"""Processes: the sandboxes (one uvicorn process each) and a measured contender run.

Measurements of a contender come from the kernel, not from the contender:

* wall time: ``time.monotonic()`` around the child;
* CPU seconds: user + system time from ``os.wait4`` on the child (it covers the child and every
  descendant it waited for, e.g. dlt's normalize worker processes);
* peak RSS: sampled every 50 ms from ``/proc``: the largest ``VmHWM`` (a process's own peak RSS
  since ``exec``) in the tree, and the peak of the tree's summed ``VmRSS``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Measured:
    exit_code: int
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    tree_rss_mb: float
    tree_pss_mb: float
    killed: bool
    stdout: str
    stderr: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "max_rss_mb": round(self.max_rss_mb, 1),
            "tree_rss_mb": round(self.tree_rss_mb, 1),
            "tree_pss_mb": round(self.tree_pss_mb, 1),
            "killed": self.killed,
        }


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc (a process that is gone is left out)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return found


def _tree_pss_kb(pid: int) -> int:
    """Summed PSS of ``pid`` and its descendants: memory a process tree costs the machine.

    RSS counts pages a forked child shares with its parent in both of them; PSS splits each
    shared page between its sharers, so a two-process sync is not charged twice. Reading it
    makes the kernel walk the page tables (milliseconds), so it is sampled once a second.
    """
    total = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup", encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return total


def _tree_memory_kb(pid: int) -> tuple[int, int]:
    """``(largest VmHWM, summed VmRSS)`` over ``pid`` and its descendants, from /proc.

    VmHWM is the peak RSS of a process since its ``exec``. (``ru_maxrss`` from ``wait4`` is not
    used: Linux folds the RSS of the forking parent into the child's at ``exec``.)
    """
    hwm, total = 0, 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/status", encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
                    elif line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return hwm, total


def run_measured(
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    timeout_s: float,
    kill_when: Callable[[], bool] | None = None,
    logs: Path | None = None,
) -> Measured:
    """Run ``cmd`` to completion (or SIGKILL it once ``kill_when()`` is true) and measure it."""
    out_path = (logs or cwd) / "stdout.txt"
    err_path = (logs or cwd) / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=err, start_new_session=True
        )
        peak_hwm, peak_tree, peak_pss, killed, status, usage = 0, 0, 0, False, 0, None
        next_check = next_pss = start
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if now - start > timeout_s:
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
            elif kill_when is not None and not killed and now >= next_check:
                next_check = now + 0.05
                if kill_when():
                    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: dlt's pools too
                    killed = True
            hwm, rss = _tree_memory_kb(proc.pid)
            peak_hwm, peak_tree = max(peak_hwm, hwm), max(peak_tree, rss)
            if now >= next_pss:
                next_pss = now + 1.0
                peak_pss = max(peak_pss, _tree_pss_kb(proc.pid))
            time.sleep(0.05 if kill_when is None else 0.02)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert usage is not None
    return Measured(
        exit_code=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_mb=peak_hwm / 1024,
        tree_rss_mb=peak_tree / 1024,
        tree_pss_mb=peak_pss / 1024,
        killed=killed,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


class Sandbox:
    """One sandbox process on a loopback port, with its ``/_sandbox/*`` admin routes."""

    def __init__(
        self,
        platform: str,
        port: int,
        records: int,
        seed: int,
        log_dir: Path,
        count: int = 1,
        stamp_first: bool = False,
    ) -> None:
        self.platform, self.port = platform, port
        self.url = f"http://{LOOPBACK}:{port}"
        cmd = [
            sys.executable,
            "-m",
            "bench.serve_sandbox",
            platform,
            "--port",
            str(port),
            "--records",
            str(records),
            "--seed",
            str(seed),
            "--count",
            str(count),
            *(["--stamp-first"] if stamp_first else []),
        ]
        # With count > 1 the admin routes are under /v0/_sandbox/… (one sandbox per venue).
        self.ready_path = "/_sandbox/stats" if count == 1 else "/v0/_sandbox/stats"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(log_dir / f"sandbox-{platform}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=self._log,
            stderr=self._log,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        self.http = httpx.Client(base_url=self.url, timeout=600)

    def wait_ready(self, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox {self.platform} exited ({self.proc.returncode})")
            try:
                self.http.get(self.ready_path).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"sandbox {self.platform} not ready after {timeout_s}s")

    def stats(self) -> dict[str, Any]:
        return self._json("GET", "/_sandbox/stats")

    def reset(self) -> None:
        self._json("POST", "/_sandbox/reset")

    def mutate(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/_sandbox/mutate", json=body)

    def faults(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/_sandbox/faults", json=body)

    def data(self) -> dict[str, Any]:
        return self._json("GET", "/_sandbox/data")

    def cpu_s(self) -> float:
        """CPU seconds this sandbox process has used so far (from /proc)."""
        with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        response = self.http.request(method, path, **kw)
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """What a sandbox saw between two ``/_sandbox/stats`` readings."""

    def sub(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
        return {k: v - b.get(k, 0) for k, v in a.items() if v - b.get(k, 0)}

    writes = {}
    for key, kinds in after["writes"].items():
        d = sub(kinds, before["writes"].get(key, {}))
        if d:
            writes[key] = d
    return {
        "requests": sub(after["requests"], before["requests"]),
        "statuses": sub(after["statuses"], before["statuses"]),
        "total_requests": after["total_requests"] - before["total_requests"],
        "writes": writes,
        "write_totals": sub(after["write_totals"], before["write_totals"]),
        "faults": sub(after["faults"], before["faults"]),
    }


def run_figures(
    m: Measured, records: int, src: dict[str, Any], dst: dict[str, Any]
) -> dict[str, Any]:
    """What every result row holds of one measured run: the process's own figures, the rates
    per record, and the calls and writes the source and destination sandboxes saw (``src``
    and ``dst`` are :func:`delta` s); a run that failed (not killed) adds its stderr's tail."""
    return {
        **m.as_dict(),
        "records_per_s": round(records / m.wall_s, 1) if m.wall_s else None,
        "cpu_s_per_1k": round(m.cpu_s / records * 1000, 3) if records else None,
        "source_calls": src["total_requests"],
        "destination_calls": dst["total_requests"],
        "destination_requests": dst["requests"],
        "destination_statuses": dst["statuses"],
        "destination_writes": sum(dst["write_totals"].values()),
        "write_totals": dst["write_totals"],
        **({"error_tail": m.stderr[-2000:]} if m.exit_code not in (0, 3) and not m.killed else {}),
    }
