"""``ticketbridge run`` asks the scheduler to treat it as batch work (cpu_policy.py): its
wake-ups for each answer no longer preempt the process on the core, which on a shared host
is what every other service there (and, in the benchmark, the API) relies on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_first_hour import closed_port_base, tb
from ticketbridge import cpu_policy

linux_only = pytest.mark.skipif(
    not hasattr(os, "SCHED_BATCH"), reason="scheduling policies are Linux's"
)


def test_batch_unless_the_environment_says_normal() -> None:
    assert cpu_policy.choice({}) == "batch"
    assert cpu_policy.choice({"TICKETBRIDGE_CPU_POLICY": " Normal "}) == "normal"
    assert cpu_policy.choice({"TICKETBRIDGE_CPU_POLICY": ""}) == "batch"


def test_another_value_is_an_error_naming_the_variable_and_its_choices() -> None:
    with pytest.raises(ValueError, match=r"TICKETBRIDGE_CPU_POLICY='fast'.*'batch' or 'normal'"):
        cpu_policy.choice({"TICKETBRIDGE_CPU_POLICY": "fast"})


def _policy_after(code: str, policy: str | None) -> str:
    """The scheduling policy of a fresh interpreter after ``code`` ran (never this process's:
    the test suite goes on with its own)."""
    env = {k: v for k, v in os.environ.items() if k != cpu_policy.ENV}
    if policy is not None:
        env[cpu_policy.ENV] = policy
    probe = f"{code}\nimport os\nprint(os.sched_getscheduler(0) == os.SCHED_BATCH)"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@linux_only
@pytest.mark.parametrize(("policy", "batch"), [(None, "True"), ("normal", "False")])
def test_a_run_is_batch_work_from_before_it_opens_its_project(
    tmp_path: Path, policy: str | None, batch: str
) -> None:
    """Set before anything else of the run (here the project file is missing, so nothing
    else happens): the threads and the reader it makes later take the policy from it."""
    missing = tmp_path / "missing.yaml"
    code = (
        "from ticketbridge.run_command import run_once\n"
        "from ticketbridge.engine.spec import RunOptions\n"
        f"assert run_once(__import__('pathlib').Path({str(missing)!r}), 's', RunOptions(),"
        " False, 'INFO', False) == 2"
    )
    assert _policy_after(code, policy) == batch


def test_a_bad_value_stops_the_run_before_it_reads(tmp_path: Path) -> None:
    """A project ``init`` made, its sandboxes not served: a run would open its state file
    and fail to connect; with a bad policy it does neither."""
    ports = str(closed_port_base())
    assert tb("init", "venue", "--port-base", ports, cwd=tmp_path).returncode == 0
    project = tmp_path / "venue"
    done = tb("run", "ticketco-bookings-to-airship", cwd=project, env={cpu_policy.ENV: "turbo"})
    assert done.returncode == 2
    assert "TICKETBRIDGE_CPU_POLICY='turbo'" in done.stderr + done.stdout
    assert "'batch' or 'normal'" in done.stderr + done.stdout
    assert not (project / "ticketbridge.db").exists()


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_the_worker_say_a_bad_value_at_once(tmp_path: Path, command: str) -> None:
    """They keep the usual policy, but the readers their runs fork read the variable: a bad
    value is a config error before they start, not a setting silently ignored for days."""
    ports = str(closed_port_base())
    assert tb("init", "venue", "--port-base", ports, cwd=tmp_path).returncode == 0
    done = tb(command, cwd=tmp_path / "venue", env={cpu_policy.ENV: "turbo"}, timeout=30)
    assert done.returncode == 2
    assert "TICKETBRIDGE_CPU_POLICY='turbo'" in done.stderr + done.stdout
