"""Write policies: which mapped fields a sync may write, per entity and field, per action.

Modes:

* ``always``     written on create and on update;
* ``on_create``  written only when the destination record is created;
* ``if_empty``   written on create, and on update only where the destination field is empty
  (the destination enforces that, since only it knows the current value);
* ``never``      never written by this sync.

A policy is data in the project file::

    write_policy:
      contact: on_create            # the whole entity
      booking: {"*": always, notes: never}

Consent fields therefore cannot change by side effect: a booking update carries no contact
fields unless the sync says ``contact: always``. The one exception is a consent **withdrawal**
(the destination object names them, ``ObjectSpec.withdrawals``): it is written whatever the
mode, ``never`` included, because a customer who said no must stop being mailed everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from ticketbridge.connectors.base import Mapped, Withdrawals, WriteMode

MODES: tuple[str, ...] = get_args(WriteMode)
Action = Literal["create", "update"]


def _check_mode(value: object, where: str) -> WriteMode:
    if value not in MODES:
        raise ValueError(f"{where}: write mode must be one of {', '.join(MODES)}, not {value!r}")
    return cast(WriteMode, value)


@dataclass(frozen=True)
class WritePolicy:
    rules: Mapping[str, Mapping[str, WriteMode]] = field(default_factory=dict)
    withdrawals: Withdrawals | None = None  # the destination object's, if it has consent

    @classmethod
    def build(
        cls,
        defaults: Mapping[str, WriteMode],
        configured: Mapping[str, Any] | None,
        withdrawals: Withdrawals | None = None,
    ) -> WritePolicy:
        """Defaults of the destination object, overridden by the sync's ``write_policy``;
        ``withdrawals`` is the object's (:attr:`ObjectSpec.withdrawals`)."""
        rules: dict[str, dict[str, WriteMode]] = {e: {"*": m} for e, m in defaults.items()}
        for entity, spec in (configured or {}).items():
            if isinstance(spec, str):
                rules[entity] = {"*": _check_mode(spec, f"write_policy.{entity}")}
            elif isinstance(spec, Mapping):
                merged = dict(rules.get(entity, {}))
                for fname, mode in spec.items():
                    merged[str(fname)] = _check_mode(mode, f"write_policy.{entity}.{fname}")
                rules[entity] = merged
            else:
                raise ValueError(f"write_policy.{entity}: expected a mode or a mapping")
        return cls(rules, withdrawals)

    def mode(self, entity: str, fname: str) -> WriteMode:
        per_entity = self.rules.get(entity, {})
        return per_entity.get(fname) or per_entity.get("*") or "always"

    def apply(self, action: Action, mapped: Mapped) -> tuple[Mapped, frozenset[str]]:
        """The fields ``action`` may write, and the ``entity.field`` names to write if empty.

        Consent withdrawals in ``mapped`` are among them whatever the rules say."""
        out, if_empty = self._by_rules(action, mapped)
        if self.withdrawals is None:
            return out, frozenset(if_empty)
        for entity, fields in self.withdrawals(mapped).items():
            if not fields or entity not in mapped:
                continue
            kept = out.setdefault(entity, {})
            for fname, value in fields.items():
                kept.setdefault(fname, value)
                # Written where the destination already has a value too: that is the point.
                if_empty.discard(f"{entity}.{fname}")
        return out, frozenset(if_empty)

    def _by_rules(self, action: Action, mapped: Mapped) -> tuple[Mapped, set[str]]:
        out: Mapped = {}
        if_empty: set[str] = set()
        for entity, fields in mapped.items():
            rules = self.rules.get(entity, {})
            if rules.keys() <= {"*"}:
                # One mode for the whole entity (the usual case): decide once, not per field.
                mode = rules.get("*") or "always"
                if mode == "never" or (action == "update" and mode == "on_create"):
                    continue
                if mode == "if_empty" and action == "update":
                    if_empty.update(f"{entity}.{fname}" for fname in fields)
                if fields:
                    out[entity] = dict(fields)
                continue
            kept: dict[str, Any] = {}
            for fname, value in fields.items():
                mode = self.mode(entity, fname)
                if mode == "never" or (action == "update" and mode == "on_create"):
                    continue
                if mode == "if_empty" and action == "update":
                    if_empty.add(f"{entity}.{fname}")
                kept[fname] = value
            if kept:
                out[entity] = kept
        return out, if_empty
