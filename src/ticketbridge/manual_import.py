"""A manual import (``ticketbridge backfill`` and the console's import form): the sync's
settings overridden for this import only, over a date range read in chunks.

Both front ends build the import here, so the chunks the console shows before it starts are
the ones the engine reads (:func:`~ticketbridge.engine.windows.backfill_windows`), and a bad
choice is refused, naming it, before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from ticketbridge.connectors.base import Window
from ticketbridge.engine.spec import RunOptions, SyncSpec
from ticketbridge.engine.windows import backfill_windows, parse_duration
from ticketbridge.project import Project

# The switches of a Heyloyalty-style manual import: (choice, role, the sync's setting).
SWITCHES: tuple[tuple[str, str, str], ...] = (
    ("members", "source", "members"),
    ("orders", "source", "orders"),
    ("resubscribe", "destination", "resubscribe_unsubscribed"),
    ("send_optin", "destination", "send_optin"),
    ("automations", "destination", "trigger_automations"),
    ("import_type", "destination", "import_type"),
)


@dataclass
class ImportChoices:
    """What the user chose; None leaves the sync's own setting."""

    start: date
    end: date | None = None  # the day after the last (default: today)
    chunk: str | None = None  # largest chunk, e.g. "365d" (default: the sync's backfill_chunk)
    members: bool | None = None
    orders: bool | None = None
    resubscribe: bool | None = None
    send_optin: bool | None = None
    automations: bool | None = None
    import_type: str | None = None
    source: dict[str, Any] = field(default_factory=dict)  # any other source setting
    destination: dict[str, Any] = field(default_factory=dict)  # any other destination setting


@dataclass
class PreparedImport:
    spec: SyncSpec  # the sync as this import runs it (a copy: the project is not changed)
    opts: RunOptions
    chunks: list[Window]


def switches_of(spec: SyncSpec) -> dict[str, Any]:
    """The import switches this sync has, with the sync's own value of each."""
    found: dict[str, Any] = {}
    for choice, role, setting in SWITCHES:
        options = spec.stream_options if role == "source" else spec.object_options
        if setting in type(options).model_fields:
            found[choice] = getattr(options, setting)
    return found


def prepare_import(
    project: Project, sync: str, choices: ImportChoices, today: date | None = None
) -> PreparedImport:
    """The import's spec, run options and chunks. Raises ConfigError for an unknown sync and
    ValueError naming a bad choice (a setting the sync does not have, an empty range)."""
    spec = project.get_sync(sync)
    source: dict[str, Any] = {}
    destination: dict[str, Any] = {}
    for choice, role, setting in SWITCHES:
        value = getattr(choices, choice)
        if value is not None:
            (source if role == "source" else destination)[setting] = value
    source.update(choices.source)
    destination.update(choices.destination)
    opts = RunOptions(
        kind="backfill",
        today=today,
        backfill_to=choices.end,
        source_overrides=source,
        destination_overrides=destination,
    )
    spec = replace(spec, backfill_from=choices.start)
    if choices.chunk:
        spec.backfill_chunk = parse_duration(choices.chunk)
    spec.with_overrides(opts)  # refuse a bad switch before anything runs
    chunks = backfill_windows(spec, opts)
    return PreparedImport(spec, opts, chunks)
