"""How the ``ticketbridge`` process ends: the status and the output a caller gets, with and
without the Temporal SDK's core loaded (which ends the process without finalizing)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ticketbridge.process_exit import TEMPORAL_CORE, exit_code

SCRIPT = """
import logging, sys
{load}
from ticketbridge.process_exit import end
logging.basicConfig(stream=sys.stderr, format="%(message)s")
print("printed before the end")          # buffered: stdout is a pipe
logging.getLogger("t").warning("logged before the end")
end({value})
"""


def _run(load: str, value: str) -> subprocess.CompletedProcess[str]:
    # Buffered, as a scheduler's pipe is: what was printed is only out once flushed.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(load=load, value=value)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


@pytest.mark.parametrize("load", ["", f"import {TEMPORAL_CORE}"], ids=["plain", "temporal-core"])
@pytest.mark.parametrize(("value", "status"), [("0", 0), ("None", 0), ("3", 3), ("'bad'", 1)])
def test_the_status_and_every_line_written_reach_the_caller(
    load: str, value: str, status: int
) -> None:
    done = _run(load, value)
    assert done.returncode == status, done.stderr
    assert done.stdout == "printed before the end\n"
    assert "logged before the end" in done.stderr
    if value == "'bad'":
        assert done.stderr.rstrip().endswith("bad")


def test_exit_code_reads_a_value_as_sys_exit_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert [exit_code(None), exit_code(0), exit_code(2)] == [0, 0, 2]
    assert exit_code("no such sync") == 1
    assert capsys.readouterr().err == "no such sync\n"
