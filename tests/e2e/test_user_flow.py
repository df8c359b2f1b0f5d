"""The README's "own project" flow as a new user runs it: init, sandbox serve, check, run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.test_first_hour import closed_port_base

pytestmark = pytest.mark.e2e


def tb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "ticketbridge", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_init_serve_check_run(tmp_path: Path) -> None:
    base = closed_port_base()
    assert tb("init", "venue", "--port-base", str(base), cwd=tmp_path).returncode == 0
    project = tmp_path / "venue"
    assert (project / "ticketbridge.yaml").is_file() and (project / ".env").is_file()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ticketbridge",
            "sandbox",
            "serve",
            "--port-base",
            str(base),
            "--records",
            "200",
        ],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # Generous: five sandboxes seeding their data on a loaded two-core machine.
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{base + 1}/_sandbox/stats", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None:
                    raise AssertionError(f"sandbox serve exited: {server.communicate()}") from None
                assert time.monotonic() < deadline, "sandboxes did not start"
                time.sleep(0.2)
        check = tb("check", cwd=project)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "FAIL" not in check.stdout
        assert "venue 'Riverside Hall'" in check.stdout or "Riverside Hall" in check.stdout

        sync = next(
            line.split(":")[0].strip()
            for line in (project / "ticketbridge.yaml").read_text().split("syncs:")[1].splitlines()
            if line.strip()
        )
        dry = tb("run", sync, "--dry-run", "--json", cwd=project)
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout)["created"] > 0
        first = tb("run", sync, "--json", cwd=project)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["created"] == json.loads(dry.stdout)["created"]

        # A venue the CRM does not know is named by `check` (exit 1), before any run.
        text = (project / "ticketbridge.yaml").read_text().replace("Bowl Arena", "Bowl Arana")
        (project / "ticketbridge.yaml").write_text(text)
        bad = tb("check", cwd=project)
        assert bad.returncode == 1
        assert "Bowl Arana" in bad.stdout and "FAIL" in bad.stdout
    finally:
        server.terminate()
        server.wait(10)
