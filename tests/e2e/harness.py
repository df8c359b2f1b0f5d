"""End-to-end harness: sandboxes under uvicorn on loopback, `ticketbridge` as a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from ticketbridge.connectors import registry
from ticketbridge.sandbox import RunningSandbox, SandboxApp, serve_in_thread

# The errors a run stops on when its retries ran out on a transient answer.
TRANSIENT = re.compile(r"HTTP (5\d\d|429)\b")


@dataclass
class Stack:
    """Running sandboxes plus a project file wired to them, in ``directory``."""

    directory: Path
    running: dict[str, RunningSandbox]
    syncs: dict[str, dict[str, Any]]
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        directory: Path,
        sandboxes: dict[str, SandboxApp],
        syncs: dict[str, dict[str, Any]],
        extra: dict[str, Any] | None = None,
    ) -> Stack:
        running = {p: serve_in_thread(sb) for p, sb in sandboxes.items()}
        stack = cls(directory, running, syncs)
        connections = {}
        for platform, r in running.items():
            sandbox = registry.get(platform).sandbox
            assert sandbox is not None
            connections[platform] = sandbox.config(r.url)
            stack.env.update(sandbox.env)
        project = {"connections": connections, "syncs": syncs, **(extra or {})}
        (directory / "ticketbridge.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
        return stack

    def stop(self) -> None:
        for r in self.running.values():
            r.stop()

    @property
    def config(self) -> Path:
        return self.directory / "ticketbridge.yaml"

    def _env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.directory),
            "COLUMNS": "200",
            "TICKETBRIDGE_DATABASE_URL": f"sqlite:///{self.directory / 'state.db'}",
            **self.env,
        }

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ticketbridge", *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=timeout,
            cwd=self.directory,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "ticketbridge", *args, "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self._env(),
            cwd=self.directory,
        )

    def run(self, sync: str, *extra: str, codes: tuple[int, ...] = (0, 3)) -> dict[str, Any]:
        proc = self.cli("run", sync, "--json", *extra)
        assert proc.returncode in codes, proc.stdout + proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    def run_until_ok(self, sync: str, tries: int = 3) -> list[dict[str, Any]]:
        """Every run of ``sync`` up to the first that ends ok, at most ``tries``.

        Under injected faults a run can still fail when one request meets more faults in a row
        than it has attempts: at 20 % faults and six attempts, about 1 request in 15,000, so a
        few runs in a hundred of ~1,000 requests. The next scheduled run resumes such a run,
        and the state after it is what the fault tests hold to. A run that fails for any other
        reason than an HTTP 5xx or 429 fails the test at once.
        """
        results = [self.run(sync, codes=(0, 1, 3))]
        while results[-1]["outcome"] in ("failed", "partial") and len(results) < tries:
            error = str(results[-1].get("error"))
            assert TRANSIENT.search(error), results[-1]
            results.append(self.run(sync, codes=(0, 1, 3)))
        assert results[-1]["outcome"] == "ok", results
        return results

    def admin(self, platform: str, path: str, body: Any = None) -> Any:
        url = self.running[platform].url + "/_sandbox/" + path
        with httpx.Client(timeout=30) as client:
            response = client.post(url, json=body) if body is not None else client.get(url)
        response.raise_for_status()
        return response.json()

    def data(self, platform: str) -> dict[str, Any]:
        result: dict[str, Any] = self.admin(platform, "data")
        return result

    def stats(self, platform: str) -> dict[str, Any]:
        result: dict[str, Any] = self.admin(platform, "stats")
        return result


def writes_since(
    before: dict[str, Any], after: dict[str, Any], prefix: str = ""
) -> dict[str, dict[str, int]]:
    """Per record key, the sandbox writes made between two stats snapshots."""
    out: dict[str, dict[str, int]] = {}
    for key, kinds in after["writes"].items():
        if not key.startswith(prefix):
            continue
        old = before["writes"].get(key, {})
        delta = {k: n - old.get(k, 0) for k, n in kinds.items() if n - old.get(k, 0)}
        if delta:
            out[key] = delta
    return out


def now() -> datetime:
    return datetime.now(UTC)


Check = Callable[[dict[str, Any]], bool]


def processes_of(stack: Stack) -> list[int]:
    """Processes running this stack's project: the CLI, and its forked reader."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(stack.config).encode() in cmdline:
            found.append(int(pid))
    return found


def sigkill_when(
    stack: Stack, proc: subprocess.Popen[str], landed: Callable[[], int], at: int, what: str
) -> None:
    """SIGKILL ``proc`` once ``landed()`` reaches ``at`` (whatever the machine's start-up
    time), then wait until no process of the run is left (a forked reader ends by itself)."""
    deadline = time.monotonic() + 60
    while landed() < at:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, f"no {what} landed within 60 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 15
    while processes_of(stack):
        assert time.monotonic() < deadline, "a process of the killed run is still alive"
        time.sleep(0.1)
