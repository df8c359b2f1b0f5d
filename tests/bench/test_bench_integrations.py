"""``python -m bench --quick --integration ...`` for the integrations besides TicketCo ->
Airship CRM, at a small size: every correctness check passes.

Ticketmaster -> Heyloyalty and TicketCo -> Airship Wallet each get a full load (S1), an
unchanged rerun that must write nothing (S2), a rerun after 1 % of the source changed that
must write exactly those records (S3; for Wallet also an event moved, which must show on every
pass of the event), and a kill mid-load then a rerun that must leave no duplicate and no miss
(S5). Sandboxes and ``ticketbridge run`` are separate processes on loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.test_bench_quick import REPO, _free_pair


@pytest.mark.e2e
def test_quick_mode_of_every_other_integration_passes_its_checks(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--integration",
            "ticketmaster-heyloyalty,ticketco-wallet",
            "--records",
            "300",
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
    found = {(c["integration"], c["check"].split()[0]) for c in checks}
    for integration in ("ticketmaster-heyloyalty", "ticketco-wallet"):
        assert {(integration, s) for s in ("S1", "S2", "S3-1%", "S5-rerun")} <= found
    assert ("ticketco-wallet", "S3-event") in found
    assert all(c["ok"] for c in checks), [c for c in checks if not c["ok"]]
    rows = json.loads(next(tmp_path.glob("*-ticketmaster-heyloyalty-s3.json")).read_text())
    [s3] = rows["rows"]
    assert s3["changed_in_scope"] > 0 and s3["destination_calls"] > 0
    assert s3["calls_per_changed"] == round(s3["destination_calls"] / s3["changed_in_scope"], 2)
