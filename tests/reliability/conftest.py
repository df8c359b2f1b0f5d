"""The reliability suite's shared parts: one clean run per integration (what every faulty or
killed run must end equal to), and the figures the suite prints at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.integrations import INTEGRATIONS, Integration, State

SEED = 21  # the sandboxes' data; runs differ only in their faults and kill points


@dataclass
class Figures:
    """What the suite measured, printed at the end of the test session."""

    trials: int = 0
    duplicates: int = 0
    at_least_once: int = 0  # re-imports the platform cannot prevent (documented)
    misses: int = 0
    differing_fields: int = 0
    faulty_runs: int = 0
    faults_injected: int = 0
    lines: list[str] = field(default_factory=list)


FIGURES = Figures()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not (FIGURES.trials or FIGURES.faulty_runs):
        return
    f = FIGURES
    terminalreporter.write_sep("-", "reliability figures")
    terminalreporter.write_line(
        f"SIGKILL trials {f.trials}; faulty runs {f.faulty_runs} ({f.faults_injected} faults "
        f"injected); duplicates {f.duplicates}; misses {f.misses}; differing fields "
        f"{f.differing_fields}; at-least-once re-imports {f.at_least_once}"
    )
    for line in f.lines:
        terminalreporter.write_line("  " + line)


@dataclass
class Clean:
    """An integration's final destination state after one undisturbed run."""

    state: State
    landed: int
    result: dict[str, Any]


_CLEAN: dict[str, Clean] = {}


def clean_run(integration: Integration, base: Path) -> Clean:
    """Made on first use, once per integration and test session, in this process."""
    found = _CLEAN.get(integration.name)
    if found is not None:
        return found
    result, data, sandboxes = integration.run_in_process(base / f"clean-{integration.name}", SEED)
    assert result.outcome == "ok", result
    assert not integration.duplicates(data), integration.duplicates(data)
    landed = integration.landed(sandboxes[integration.destination].store)
    made = Clean(integration.state(data), landed, result)
    _CLEAN[integration.name] = made
    return made


@pytest.fixture(params=INTEGRATIONS, ids=[i.name for i in INTEGRATIONS])
def integration(request: pytest.FixtureRequest) -> Integration:
    found: Integration = request.param
    return found
