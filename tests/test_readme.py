"""Every project-file example in the README loads: the docs match the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ticketbridge.project import load_project_text

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = [
    b
    for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)
    if "connections:" in b or "supplier_api:" in b
]


def test_the_readme_has_project_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.split("\n", 2)[1][:40])
def test_readme_example_is_a_valid_project(block: str) -> None:
    env = {name: f"value-of-{name}" for name in re.findall(r"\$\{(\w+)", block)}
    project = load_project_text(block, env=env)
    assert project.connections
