"""A sync as the engine sees it: resolved from the project file, nothing platform-specific."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from ticketbridge.connectors.base import ObjectOptions, Record, StreamOptions
from ticketbridge.engine.policy import WritePolicy
from ticketbridge.engine.state.base import RunCounters
from ticketbridge.model import Booking, Contact

Strategy = Literal["window", "cursor", "diff", "full"]
ConsentRule = Literal["email", "sms", "any"]


@dataclass(frozen=True)
class WindowSpec:
    field: str
    start: str = "-1d"
    end: str = "+30d"
    timezone: str = "UTC"


@dataclass
class SyncSpec:
    name: str
    stream: str
    stream_options: StreamOptions
    obj: str
    object_options: ObjectOptions
    strategy: Strategy = "full"
    window: WindowSpec | None = None
    lookback: timedelta = timedelta(hours=1)
    policy: WritePolicy = field(default_factory=WritePolicy)
    skip: frozenset[str] = frozenset()
    require_consent: ConsentRule | None = None
    batch_size: int = 500
    page_size: int | None = None
    backfill_from: date | None = None
    backfill_chunk: timedelta = timedelta(days=365)
    # The single-flight scope: syncs with the same lease_key never run at once. By default
    # the sync itself; a source that must have one reader at a time whatever the sync (TIXNGO:
    # one run per organizer) gives its own (connectors/base.py, Connector.lease_scope).
    lease_key: str | None = None

    def __post_init__(self) -> None:
        if self.lease_key is None:
            self.lease_key = self.name

    @property
    def days_zone(self) -> str:
        """The time zone this sync's days are counted in: its window's, else UTC."""
        return self.window.timezone if self.window else "UTC"

    @property
    def shared_lease(self) -> str | None:
        """The lease this sync shares with others, besides its own; None if it has none."""
        return self.lease_key if self.lease_key != self.name else None

    def with_overrides(self, opts: RunOptions) -> SyncSpec:
        """This sync with the run's option overrides applied. Raises ValueError naming an
        unknown or invalid setting."""
        from dataclasses import replace

        return replace(
            self,
            stream_options=_override(self.stream_options, opts.source_overrides, "source"),
            object_options=_override(
                self.object_options, opts.destination_overrides, "destination"
            ),
        )

    def is_skipped(self, key: str) -> bool:
        """Skip lists may name a full record key or its platform id: any part of the key
        after a ``:`` (``S360-0001`` skips ``ticket:tixngo:S360-0001``; an id may itself hold
        a ``:``)."""
        if not self.skip:
            return False
        rest = key
        while True:
            if rest in self.skip:
                return True
            if ":" not in rest:
                return False
            rest = rest.split(":", 1)[1]

    def lacks_consent(self, record: Record) -> bool:
        if self.require_consent is None:
            return False
        data = record.data
        contact = data.contact if isinstance(data, Booking) else data
        if not isinstance(contact, Contact):
            return True
        email, sms = contact.email_consent.granted, contact.sms_consent.granted
        if self.require_consent == "email":
            return not email
        if self.require_consent == "sms":
            return not sms
        return not (email or sms)


def _override(options: Any, overrides: dict[str, Any], role: str) -> Any:
    if not overrides:
        return options
    model = type(options)
    for key in overrides:
        if key not in model.model_fields:
            raise ValueError(f"the {role} of this sync has no setting {key!r}")
    try:
        return model.model_validate({**options.model_dump(), **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{role} setting {where}: {first['msg']}") from None


@dataclass
class RunOptions:
    kind: Literal["run", "backfill", "retry"] = "run"
    dry_run: bool = False
    today: date | None = None
    backfill_to: date | None = None
    holder: str | None = None
    lease_ttl_s: float = 60.0
    # Records read ahead of the writer (None: two destination batches); a batch takes every
    # page that is waiting (pipeline.py, readahead.py).
    read_ahead: int | None = None
    on_progress: Callable[[RunCounters], None] | None = None
    dry_run_sample: int = 10_000  # plan entries a dry run keeps (the rest only counted)
    # Per-run overrides of the sync's source / destination options (a manual import's
    # choices); validated against the options models before the run starts.
    source_overrides: dict[str, Any] = field(default_factory=dict)
    destination_overrides: dict[str, Any] = field(default_factory=dict)
    # Stored with the run from its start (who started it, a manual import's choices).
    detail: dict[str, Any] = field(default_factory=dict)
    # Called with the run's id once it is recorded (the console opens its page).
    on_start: Callable[[int], None] | None = None
    # More detail for the run's end (its log tail, rate-budget waits), merged into ``detail``.
    on_finish: Callable[[], Mapping[str, Any]] | None = None
    # A retry run of only these dead letters (the console's "retry selected"); None: all.
    retry_keys: frozenset[str] | None = None


@dataclass
class RunResult:
    sync: str
    outcome: str
    counters: RunCounters
    run_id: int | None = None
    error: str | None = None
    plan: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False
    plan_omitted: int = 0  # planned changes of a dry run beyond ``RunOptions.dry_run_sample``
    # The error that ended the run early, for callers that act on its class (a Temporal
    # activity turns it into a retry decision); ``error`` is its message for people.
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def exit_code(self) -> int:
        return {"ok": 0, "skipped": 0, "partial": 3}.get(self.outcome, 1)
