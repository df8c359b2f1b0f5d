"""The contract between the engine and every connector.

The engine sees connectors only through this module. A connector package exposes one
:class:`Connector` object through the ``ticketbridge.connectors`` entry-point group; the engine
asks it for a :class:`Source` and/or a :class:`Destination` built from a validated connection
config.

Invariants:

* Sources emit canonical records (``ticketbridge.model``) only, each with a key that is stable
  across runs. A payload that cannot be mapped is emitted as :class:`Failed`, never dropped.
* ``Page.position`` is the state a later read needs to resume *after* this page. The engine
  stores it only once every record of the page is acknowledged by the destination.
* ``Destination.prepare`` is pure: the same record and options give the same mapped fields,
  because the engine hashes them to skip unchanged records at zero destination cost.
* ``Destination.write`` returns one :class:`Outcome` per change it was given, in any order.
  It raises ``RetryableError`` / ``FatalError`` for failures of the whole call and reports
  per-record refusals as ``Outcome(ok=False)``.
* Connectors never touch the state store.
* ``Connector.lease_scope`` (optional) names what a source connection reads, for single
  flight: syncs whose source connections have the same scope never run at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ticketbridge.model import Booking, Contact, Ticket

if TYPE_CHECKING:
    # Only for hints: the engine imports this module and must not load the HTTP stack.
    from ticketbridge.http.context import HttpContext

RecordData = Booking | Contact | Ticket
Mapped = dict[str, dict[str, Any]]
"""Destination payload fields grouped by entity, e.g. ``{"contact": {...}, "booking": {...}}``."""
Withdrawals = Callable[[Mapped], Mapped]
"""Of a record's mapped fields, the consent withdrawals, by entity (``{"contact":
{"allow_email": False}}``); ``{}`` when the record withdraws nothing."""

WriteMode = Literal["always", "on_create", "if_empty", "never"]
ReadStrategy = Literal["window", "cursor", "diff"]


class ConnectionConfig(BaseModel):
    """Settings shared by every connection; each platform subclasses it.

    Secrets are ``SecretStr`` so they never print; values come from ``${ENV}`` in the project
    file. Unknown keys are errors.
    """

    model_config = ConfigDict(extra="forbid")

    platform: str
    base_url: str
    timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0)
    rate_per_second: float | None = Field(None, gt=0)
    rate_burst: int | None = Field(None, ge=1)
    max_calls_per_run: int | None = Field(None, ge=1)
    max_response_mb: float = Field(50.0, gt=0)
    """The largest response body read from this API (decoded), in MB; a larger one stops the
    run with an error instead of filling the memory."""
    default_region: str | None = None

    def secrets(self) -> list[str]:
        """Every secret value of this config, for log redaction."""
        out = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out.append(value.get_secret_value())
        return [s for s in out if s]


class StreamOptions(BaseModel):
    """Options of a source stream in a sync (``source:`` block, minus connection/stream)."""

    model_config = ConfigDict(extra="forbid")


class ObjectOptions(BaseModel):
    """Options of a destination object in a sync (``destination:`` block, minus connection)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class StreamSpec:
    name: str
    kind: str  # canonical record kind emitted: "booking", "contact", "ticket"
    strategies: tuple[ReadStrategy, ...]
    options: type[StreamOptions] = StreamOptions
    window_fields: tuple[str, ...] = ()
    description: str = ""
    extra_kinds: tuple[str, ...] = ()  # further kinds the stream may emit (e.g. orders)

    @property
    def kinds(self) -> tuple[str, ...]:
        return (self.kind, *self.extra_kinds)


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    accepts: tuple[str, ...]  # canonical record kinds
    options: type[ObjectOptions] = ObjectOptions
    entities: tuple[str, ...] = ()
    default_policy: Mapping[str, WriteMode] = field(default_factory=dict)
    description: str = ""
    at_least_once: Mapping[str, str] = field(default_factory=dict)
    """Entities the platform cannot deduplicate (no idempotency key, nothing to look up), each
    with the reason. The ledger sends them once; only a run killed between their write and its
    commit may write them again. Every other entity is an idempotent upsert."""
    withdrawals: Withdrawals | None = None
    """Names the consent withdrawals among the mapped fields. The engine passes them through
    whatever the write policy says, whenever the entity holding them changed (DESIGN
    guarantee 4: a withdrawal is the one consent change that always flows); the destination
    writes them so that no opt-in and no concurrent write can undo them."""


@dataclass(frozen=True)
class Window:
    """A half-open time range ``[start, end)`` on a business date field."""

    field: str
    start: datetime
    end: datetime


@dataclass
class ReadRequest:
    stream: str
    options: StreamOptions
    window: Window | None = None
    since: datetime | None = None  # updated-at cursor lower bound, lookback already applied
    position: dict[str, Any] | None = None  # resume state from the last committed page
    page_size: int | None = None


@dataclass
class Record:
    key: str
    kind: str
    data: RecordData
    cursor: datetime | None = None  # e.g. updated_at, for updated-at cursors


@dataclass
class Failed:
    """A source payload that could not be mapped: it becomes a dead letter with ``reason``."""

    key: str
    reason: str
    raw: dict[str, Any]


@dataclass
class Page:
    records: list[Record] = field(default_factory=list)
    failures: list[Failed] = field(default_factory=list)
    position: dict[str, Any] | None = None


@dataclass
class Change:
    """One record to write, after planning and write policy."""

    key: str
    action: Literal["create", "update"]
    record: Record
    fields: Mapped  # only what the write policy lets through
    dest_ids: dict[str, str] = field(default_factory=dict)
    changed: frozenset[str] = frozenset()  # entities whose content changed since last ack
    if_empty: frozenset[str] = frozenset()  # "entity.field" to write only where empty
    # What ``prepare`` made of the record, before the write policy: a destination that needs
    # more than ``fields`` (an identity a policy withholds) reads it here instead of
    # preparing the record again. Empty when the change was not planned by the engine.
    prepared: Mapped = field(default_factory=dict)


@dataclass
class Outcome:
    """What the destination did with one change.

    ``ok`` with ``skipped`` set means the destination deliberately left the record alone
    (e.g. an unsubscribed member the sync may not re-subscribe): acknowledged, counted as
    skipped by policy, not retried.
    """

    key: str
    ok: bool
    dest_ids: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    skipped: str | None = None


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str = ""


@runtime_checkable
class Source(Protocol):
    platform: str

    def streams(self) -> list[StreamSpec]: ...

    def read(self, request: ReadRequest) -> AsyncIterator[Page]: ...

    def remap(self, stream: str, raw: dict[str, Any], options: StreamOptions) -> Record:
        """Map a stored raw payload again (dead-letter retry). Raises MappingError."""

    async def check(self) -> list[CheckResult]: ...

    @property
    def api_calls(self) -> int: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Destination(Protocol):
    platform: str

    def objects(self) -> list[ObjectSpec]: ...

    def prepare(self, obj: str, record: Record, options: ObjectOptions) -> Mapped:
        """Map a canonical record to destination fields. Raises RecordRejected."""

    async def write(
        self, obj: str, changes: list[Change], options: ObjectOptions
    ) -> list[Outcome]: ...

    async def check(self) -> list[CheckResult]: ...

    @property
    def api_calls(self) -> int: ...

    async def aclose(self) -> None: ...


class SandboxFactory(Protocol):
    def __call__(self, *, seed: int, records: int, today: datetime | None) -> Any:
        """Return a ``ticketbridge.sandbox.SandboxApp`` for this platform."""


def lazy_sandbox(module: str) -> SandboxFactory:
    """``module``'s ``create_sandbox``, imported at the first call. A sandbox's routes need
    Starlette, which a project talking to the real platform never uses: a connector package
    names its sandbox module here instead of importing it (start-up, bench/README)."""

    def create(*, seed: int, records: int, today: datetime | None) -> Any:
        factory: SandboxFactory = import_module(module).create_sandbox
        return factory(seed=seed, records=records, today=today)

    return create


@dataclass(frozen=True)
class SandboxSpec:
    """A platform's simulator and how a project connects to it."""

    create: SandboxFactory
    config: Callable[[str], dict[str, Any]]
    """Given a sandbox base URL, the connection settings (with fake credentials as ``${ENV}``
    references) that ``ticketbridge init`` and the demo write."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Fake credentials the sandbox accepts, by environment variable name."""


@dataclass(frozen=True)
class Connector:
    """What a connector package registers under the ``ticketbridge.connectors`` entry point.

    ``streams`` and ``objects`` default to the ``STREAMS`` / ``OBJECTS`` the source and
    destination classes declare (``connectors.kit``), so they are written once.
    """

    platform: str
    title: str
    config: type[ConnectionConfig]
    source: Callable[[Any, HttpContext], Source] | None = None
    destination: Callable[[Any, HttpContext], Destination] | None = None
    sandbox: SandboxSpec | None = None
    streams: tuple[StreamSpec, ...] = ()
    objects: tuple[ObjectSpec, ...] = ()
    lease_scope: Callable[[Any], str] | None = None
    """Given a source connection's validated config, the name of the lease its syncs run
    under, for a platform that must never be read by two runs at once however many syncs read
    it (TIXNGO: one feedback run per organizer). Invariants: a pure function of the config (no
    I/O, the same in every process and on every host, so that they all take the same lease);
    equal for two configs exactly when they read the same thing; free of secrets (it is
    stored in the state database and shown in messages); prefixed with the platform's name
    and a ``:``, so that it does not read as a sync's name. None: each sync is its own
    scope."""

    def __post_init__(self) -> None:
        if not self.streams:
            object.__setattr__(self, "streams", tuple(getattr(self.source, "STREAMS", ())))
        if not self.objects:
            object.__setattr__(self, "objects", tuple(getattr(self.destination, "OBJECTS", ())))
