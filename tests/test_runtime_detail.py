"""What a run stores about itself besides its counters: who started it, its log lines (secrets
redacted) and the time it waited for the rate budget; the console shows them on the run page."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from ticketbridge import logs
from ticketbridge.connectors.airship_crm.sandbox import create_sandbox as airship_sandbox
from ticketbridge.connectors.ticketco.sandbox import create_sandbox as ticketco_sandbox
from ticketbridge.demo import project_dict, sandbox_env
from ticketbridge.engine.spec import RunOptions
from ticketbridge.http.context import HttpContext
from ticketbridge.project import load_project
from ticketbridge.runtime import Runtime


@pytest.fixture
def info_logs() -> Iterator[None]:
    logs.configure("INFO", sandbox_env().values())
    yield
    logs.configure("WARNING")


def test_a_run_stores_its_log_tail_and_budget_waits(tmp_path: Path, info_logs: None) -> None:
    urls = {"ticketco": "http://ticketco.sandbox", "airship_crm": "http://airship.sandbox"}
    data = project_dict(urls)
    data["connections"]["airship_crm"]["rate_per_second"] = 200
    sync = next(iter(data["syncs"]))
    path = tmp_path / "ticketbridge.yaml"
    path.write_text(yaml.safe_dump(data))
    project = load_project(path, env=sandbox_env())
    http = HttpContext()
    now = datetime.now(UTC)
    http.mount(
        urls["ticketco"],
        httpx.ASGITransport(app=ticketco_sandbox(seed=3, records=60, today=now).app),
    )
    airship = airship_sandbox(seed=3)
    # Two writes answered 429: the run retries them and says so in its log.
    airship.faults.fail_next, airship.faults.retry_after_s = 2, 0.01
    airship.faults.only_methods = ["POST", "PUT", "PATCH"]
    http.mount(urls["airship_crm"], httpx.ASGITransport(app=airship.app))
    runtime = Runtime.open(project, http, url=f"sqlite:///{tmp_path / 's.db'}")
    try:
        result = asyncio.run(runtime.run(sync, RunOptions(detail={"started_by": "test"})))
        assert result.run_id is not None
        run = runtime.store.get_run(result.run_id)
    finally:
        runtime.close()
    assert result.outcome == "ok"
    assert run is not None
    assert run.detail["started_by"] == "test"
    assert run.detail["budget_wait_s"] > 0, "200 calls a second make a run of ~60 writes wait"
    lines = run.detail["log"]
    assert sum("http.retry" in line and "status=429" in line for line in lines) == 2
    stored = "\n".join(lines)
    for secret in sandbox_env().values():
        assert secret not in stored
