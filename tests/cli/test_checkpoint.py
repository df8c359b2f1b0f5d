"""``ticketbridge checkpoint SYNC --set``: an operator moves a checkpoint (a TIXNGO
pagination key, issue 16) only after confirming, and the run history says who, when, from
what and to what. Through the CLI as a subprocess, on a project from ``init``."""

from __future__ import annotations

import getpass
import json
import os
import pty
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ticketbridge.engine.state.sql import open_store

from .test_first_hour import tb

pytestmark = pytest.mark.e2e

SYNC = "ticketco-bookings-to-airship"
OLD = {"position": {"paginationKey": "k-old"}}
NEW = {"position": {"paginationKey": "k-new"}}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    assert tb("init", "venue", cwd=tmp_path).returncode == 0
    directory = tmp_path / "venue"
    store = open_store(f"sqlite:///{directory / 'ticketbridge.db'}")
    try:
        store.set_checkpoint(SYNC, OLD)
    finally:
        store.close()
    return directory


def state(project: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The checkpoint and the run history, read from the state file."""
    store = open_store(f"sqlite:///{project / 'ticketbridge.db'}")
    try:
        runs = [
            {"kind": r.kind, "outcome": r.outcome, "detail": r.detail}
            for r in store.list_runs(SYNC)
        ]
        return store.get_checkpoint(SYNC), runs
    finally:
        store.close()


def test_without_a_terminal_and_without_yes_it_refuses(project: Path) -> None:
    proc = tb("checkpoint", SYNC, "--set", json.dumps(NEW), cwd=project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "needs confirmation: run it in a terminal, or add --yes" in proc.stderr
    assert state(project) == (OLD, [])


def test_with_yes_it_is_set_and_the_history_says_who_when_old_and_new(project: Path) -> None:
    before = time.time()
    proc = tb("checkpoint", SYNC, "--set", json.dumps(NEW), "--yes", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == NEW
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    assert f"checkpoint of {SYNC} set by {who} (run #1)" in proc.stderr
    assert state(project)[0] == NEW
    (run,) = json.loads(tb("runs", SYNC, "--json", cwd=project).stdout)
    assert (run["kind"], run["outcome"], run["detail"]) == (
        "checkpoint",
        "ok",
        {"by": who, "old": OLD, "new": NEW},
    )
    assert datetime.fromisoformat(run["started_at"]).timestamp() >= before - 1
    text = tb("runs", SYNC, cwd=project).stdout
    assert f"{SYNC}  checkpoint: ok" in text
    assert f"set by {who}: {json.dumps(OLD)} -> {json.dumps(NEW)}" in text


def test_by_names_the_operator_and_null_starts_from_scratch(project: Path) -> None:
    proc = tb("checkpoint", SYNC, "--set", "null", "--yes", "--by", "ops-oncall", cwd=project)
    assert proc.returncode == 0, proc.stderr
    checkpoint, runs = state(project)
    assert checkpoint is None
    assert runs[0]["detail"] == {"by": "ops-oncall", "old": OLD, "new": None}


def test_not_an_object_is_a_bad_option(project: Path) -> None:
    proc = tb("checkpoint", SYNC, "--set", "[1, 2]", "--yes", cwd=project)
    assert proc.returncode == 2 and "'--set'" in proc.stderr
    assert "a checkpoint is a JSON object" in proc.stderr


def answered(project: Path, answer: str) -> tuple[int, str]:
    """The command with a terminal as its stdin, answering the prompt with ``answer``."""
    master, slave = pty.openpty()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ticketbridge", "checkpoint", SYNC, "--set", json.dumps(NEW)],
        cwd=project,
        env=env,
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(slave)
    try:
        os.write(master, answer.encode() + b"\n")
        _, errors = proc.communicate(timeout=60)
    finally:
        os.close(master)
    return proc.returncode, errors


def test_in_a_terminal_it_asks_and_no_changes_nothing(project: Path) -> None:
    code, errors = answered(project, "n")
    assert code == 1, errors
    assert f"checkpoint of {SYNC} now: {json.dumps(OLD)}" in errors
    assert f"would become: {json.dumps(NEW)}" in errors
    assert "not changed" in errors
    assert state(project) == (OLD, [])
    code, errors = answered(project, "y")
    assert code == 0, errors
    checkpoint, runs = state(project)
    assert checkpoint == NEW and [r["kind"] for r in runs] == ["checkpoint"]


def test_a_running_sync_keeps_its_checkpoint(project: Path) -> None:
    store = open_store(f"sqlite:///{project / 'ticketbridge.db'}")
    try:
        # A live holder (this test process) runs the sync.
        lease = store.acquire_lease(SYNC, f"{socket.gethostname()}:{os.getpid()}:run", 600)
        assert lease is not None
        proc = tb("checkpoint", SYNC, "--set", json.dumps(NEW), "--yes", cwd=project)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"{SYNC} is running; set its checkpoint once the run has ended" in proc.stderr
        assert store.get_checkpoint(SYNC) == OLD
        store.release_lease(lease)
    finally:
        store.close()
    assert tb("checkpoint", SYNC, "--set", json.dumps(NEW), "--yes", cwd=project).returncode == 0
