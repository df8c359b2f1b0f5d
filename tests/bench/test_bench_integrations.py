"""``python -m bench --quick --integration ...`` for the integrations besides TicketCo ->
Airship CRM, at a small size: every correctness check passes.

Ticketmaster -> Heyloyalty and TicketCo -> Airship Wallet each get a full load (S1), an
unchanged rerun that must write nothing (S2), a rerun after 1 % of the source changed that
must write exactly those records (S3; for Wallet also an event moved, which must show on every
pass of the event), and a kill mid-load then a rerun that must leave no duplicate and no miss
(S5). Sandboxes and ``ticketbridge run`` are separate processes on loopback.

The other contenders run beside it: the raw-aiohttp scripts (S1) always, the dlt jobs (S1 to
S5) where dlt is installed (``bench/requirements.txt``; CI does not install it). They are
measured, not judged, but their full load must do the same destination work as ticketbridge's
and a dlt rerun must load everything again.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.test_bench_quick import REPO, _free_pair


@pytest.mark.e2e
def test_quick_mode_of_every_other_integration_passes_its_checks(tmp_path: Path) -> None:
    dlt = importlib.util.find_spec("dlt") is not None
    contenders = ["ticketbridge", "raw-aiohttp"] + (["dlt-defaults"] if dlt else [])
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
            "--contenders",
            ",".join(contenders),
            "--port-base",
            str(_free_pair()),
            "--no-readme",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=420,
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
    [s3] = [r for r in rows["rows"] if r["contender"] == "ticketbridge"]
    assert s3["changed_in_scope"] > 0 and s3["destination_calls"] > 0
    assert s3["calls_per_changed"] == round(s3["destination_calls"] / s3["changed_in_scope"], 2)
    rows = []
    for path in sorted(tmp_path.glob("*.json")):
        rows += json.loads(path.read_text())["rows"]
    for integration in ("ticketmaster-heyloyalty", "ticketco-wallet"):
        s1 = {
            r["contender"]: r
            for r in rows
            if r.get("integration") == integration and r["scenario"] == "S1"
        }
        assert set(s1) == set(contenders), integration
        for name in contenders:
            assert s1[name]["exit_code"] == 0, (integration, name, s1[name]["reported"])
            assert s1[name]["destination_writes"] > 0, (integration, name)
    # Wallet: every contender's full load leaves the destination exactly the same writes (the
    # same events, links and passes; Heyloyalty's differ by design, see bench/README).
    wallet_s1 = [
        r for r in rows if r.get("integration") == "ticketco-wallet" and r["scenario"] == "S1"
    ]
    assert len({str(sorted(r["write_totals"].items())) for r in wallet_s1}) == 1, wallet_s1
    if dlt:
        wallet = {
            r["scenario"]: r
            for r in rows
            if r.get("integration") == "ticketco-wallet" and r["contender"] == "dlt-defaults"
        }
        # Stateless: an unchanged rerun and an event moved each cost the full load's calls
        # again (and the create of each event, answered 400, an event update).
        full = wallet["S1"]["destination_calls"]
        for scenario in ("S2", "S3-1%", "S3-event"):
            assert wallet[scenario]["destination_calls"] >= full, scenario
        assert wallet["S5-rerun"]["duplicates"] == 0 and wallet["S5-rerun"]["misses"] == 0
