"""Every platform folder has the same files (DESIGN section 2), so a reader who knows one
connector knows where everything of another lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from ticketbridge.connectors import registry

CONNECTORS = Path(registry.__file__).parent
EVERY_FOLDER = {
    "__init__.py",
    "config.py",
    "client.py",
    "schemas.py",
    "mapping.py",
    "sandbox.py",
    "sandbox_store.py",
}


@pytest.mark.parametrize("platform", registry.names())
def test_a_platform_folder_has_the_common_files_and_no_others(platform: str) -> None:
    connector = registry.get(platform)
    folder = CONNECTORS / platform
    files = {p.name for p in folder.glob("*.py")}
    expected = set(EVERY_FOLDER)
    if connector.source is not None:
        expected.add("source.py")
    if connector.destination is not None:
        expected.add("destination.py")
    assert files == expected, f"{platform}: missing {expected - files}, extra {files - expected}"
