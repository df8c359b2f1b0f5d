"""``python -m bench.console`` at a tiny size: it fills a state, serves the console and gets
every page it times with 200 (timings are never asserted; bench/README.md has them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_console_benchmark_runs_at_a_small_size(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.console", "--runs", "60", "--letters", "300",
         "--sales", "10", "--repeat", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (written,) = tmp_path.glob("*-console-sqlite.json")
    result = json.loads(written.read_text())
    assert result["state"] == {"runs": 60, "dead_letters": 300, "sales": 10}
    assert {"overview", "sync", "dead letters (every sync)", "Tiqets sales"} <= set(result["pages"])
    assert all(row["bytes"] > 0 for row in result["pages"].values())
