"""The project ``ticketbridge init`` writes, checked against a standard Heyloyalty list
(issue 20.14): it maps only fields such a list has, and ``check`` reads the list's fields
(``GET /lists/{id}``) and names any mapped field the list lacks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from ticketbridge.connectors.base import CheckResult
from ticketbridge.demo import build_sandbox, sandbox_env, write_example_project
from ticketbridge.http import HttpContext
from ticketbridge.project import load_project
from ticketbridge.runtime import check_project

SYNC = "sync ticketmaster-customers-to-heyloyalty"


def check(path: Path) -> dict[str, list[CheckResult]]:
    project = load_project(path, env=sandbox_env())
    http = HttpContext()
    for connection in project.connections.values():
        sandbox = build_sandbox(connection.platform, 42, 20)
        http.mount_app(connection.base_url, sandbox.app)
        tracking = getattr(connection, "tracking_base_url", None)
        if tracking:
            http.mount_app(tracking, sandbox.app)
    return asyncio.run(check_project(project, http))


def test_the_init_project_maps_only_fields_a_standard_list_has(tmp_path: Path) -> None:
    path = write_example_project(tmp_path)
    results = check(path)
    failed = [(group, r.name, r.detail) for group, rs in results.items() for r in rs if not r.ok]
    assert failed == []
    fields = yaml.safe_load(path.read_text())["syncs"][SYNC.removeprefix("sync ")]["mapping"]
    assert "ticketmaster_id" not in fields["fields"]


def test_check_names_each_mapped_field_the_list_lacks(tmp_path: Path) -> None:
    path = write_example_project(tmp_path)
    project = yaml.safe_load(path.read_text())
    mapping = project["syncs"][SYNC.removeprefix("sync ")]["mapping"]["fields"]
    mapping.update({"ticketmaster_id": "id", "Shoe": "shoe.size"})
    path.write_text(yaml.safe_dump(project, sort_keys=False))
    [fields] = [r for r in check(path)[SYNC] if r.name == "fields"]
    assert not fields.ok
    assert fields.detail == "missing on list 4711: Shoe, ticketmaster_id"
