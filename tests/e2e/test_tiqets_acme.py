"""Tiqets ↔ ACME through the command line: `check` names missing permissions, `serve` serves
the Supplier API in front of the ACME sandbox (all under uvicorn on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import Stack
from ticketbridge.connectors.acme import TIQETS_PERMISSIONS
from ticketbridge.connectors.acme.sandbox import create_sandbox as acme_sandbox
from ticketbridge.demo import SUPPLIER_KEY, SUPPLIER_KEY_ENV, supplier_block
from ticketbridge.sandbox import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    port = free_port()
    s = Stack.start(
        tmp_path, {"acme": acme_sandbox(seed=42)}, {}, extra={"supplier_api": supplier_block(port)}
    )
    s.env[SUPPLIER_KEY_ENV] = SUPPLIER_KEY
    s.port = port  # type: ignore[attr-defined]
    yield s
    s.stop()


def test_check_names_a_missing_permission_and_exits_non_zero(stack: Stack) -> None:
    ok = stack.cli("check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "supplier_api" in ok.stdout and "FAIL" not in ok.stdout
    stack.admin(
        "acme", "mutate", {"permissions": sorted(set(TIQETS_PERMISSIONS) - {"REFUNDS_EXECUTE"})}
    )
    bad = stack.cli("check")
    assert bad.returncode == 1
    failing = [line for line in bad.stdout.splitlines() if "FAIL" in line]
    assert failing and all("REFUNDS_EXECUTE" in line for line in failing), bad.stdout


def test_serve_answers_tiqets_with_the_mapped_products(stack: Stack) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(stack.directory),
        "TICKETBRIDGE_DATABASE_URL": f"sqlite:///{stack.directory / 'state.db'}",
        **stack.env,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "ticketbridge", "serve", "--config", str(stack.config)],
        env=env,
        cwd=stack.directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{stack.port}"  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"{url}/v2/products", headers={"API-Key": SUPPLIER_KEY})
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert answer.status_code == 200
        assert {p["id"] for p in answer.json()} == {"museum-entry", "highlights-tour"}
        denied = httpx.get(f"{url}/v2/products", headers={"API-Key": "wrong"})
        assert denied.status_code == 403
    finally:
        server.terminate()
        server.wait(10)
