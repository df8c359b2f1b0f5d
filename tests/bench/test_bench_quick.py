"""``python -m bench --quick`` end to end at a small size: its correctness checks pass.

The benchmark's quick mode is what CI runs to catch a sync that writes unchanged records,
misses changed ones or duplicates after a crash; this keeps the mode itself working (about 30 s:
sandboxes in their own processes, ``ticketbridge run`` as a subprocess).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_pair() -> int:
    """A port whose successor is free too (the two sandboxes use base and base + 1)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            base = a.getsockname()[1]
            try:
                with socket.socket() as b:
                    b.bind(("127.0.0.1", base + 1))
                    return int(base)
            except OSError:
                continue
    raise RuntimeError("no two consecutive free ports")


@pytest.mark.e2e
def test_quick_mode_correctness_checks_pass(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--contenders",
            "ticketbridge",
            "--records",
            "2000",
            "--port-base",
            str(_free_pair()),
            "--no-readme",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    checks = []
    for path in sorted(tmp_path.glob("*.json")):
        checks += json.loads(path.read_text())["checks"]
    names = {c["check"].split()[0] for c in checks}
    assert {"S2", "S3-1%", "S5-rerun"} <= names
    assert all(c["ok"] for c in checks), checks
    s1 = json.loads(next(tmp_path.glob("*-s1.json")).read_text())["rows"]
    assert s1[0]["records"] == 2000 and s1[0]["destination_calls"] > 0


@pytest.mark.e2e
def test_wallet_scenario_at_a_small_size(tmp_path: Path) -> None:
    """``python -m bench.wallet`` (W1) at a small size: its checks pass and its file holds
    the calls of run 2 by route, against the target of 1 + 2 per changed seat."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.wallet",
            "--records",
            "40000",
            "--min-tickets",
            "200",
            "--port-base",
            str(_free_pair()),
            "--results-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [path] = tmp_path.glob("*-w1.json")
    result = json.loads(path.read_text())
    assert all(c["ok"] for c in result["checks"]), result["checks"]
    [row] = result["rows"]
    assert row["event_tickets"] >= 200 and row["seats_changed"] >= 1
    assert row["target_calls"] == 1 + 2 * row["seats_changed"]
    assert row["destination_calls"] == row["pass_group_updates"] + row["pass_updates"]
