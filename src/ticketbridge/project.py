"""The YAML project file -> validated configuration.

Everything is checked before anything runs: unknown keys, wrong types, unknown platforms,
connections a sync names but the file lacks, streams and objects a connector does not have,
options of those streams and objects, and ``${ENV}`` references that are not set. Every error
names the file, the line and the field.

Secrets are never written here: the file holds ``${VAR}`` references, expanded from the
environment (and from a ``.env`` file beside the project file, which never overrides the real
environment) into ``SecretStr`` fields. Commands that open no connection (``runs``, ``errors``,
``checkpoint``) load with ``secrets=False``: an unset variable is then an error only when the
value it feeds is needed (:meth:`Project.require_env`).
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ticketbridge.connectors import registry
from ticketbridge.connectors.base import ConnectionConfig, Connector
from ticketbridge.engine.policy import MODES, WritePolicy
from ticketbridge.engine.spec import SyncSpec, WindowSpec
from ticketbridge.engine.windows import parse_duration
from ticketbridge.errors import ConfigError
from ticketbridge.notify import NotifyConfig, SmtpConfig
from ticketbridge.supplier.config import SupplierApiConfig

if TYPE_CHECKING:
    from ticketbridge.engine.scheduler import Schedule

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Loc = tuple[str | int, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def known_zone(value: str) -> str:
    """``value`` if it names an IANA time zone; ValueError saying what to write otherwise."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {value!r}: use an IANA name such as Europe/London or UTC"
        ) from None
    return value


class WindowConfig(_Strict):
    field: str
    from_: str = Field("-1d", alias="from")
    to: str = "+30d"
    timezone: str = "UTC"

    @field_validator("from_", "to")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return known_zone(value)

    @model_validator(mode="after")
    def _ordered(self) -> WindowConfig:
        # Caught here, not at the first run: a window that ends before it starts reads nothing.
        if parse_duration(self.to) < parse_duration(self.from_):
            raise ValueError(f"window ends ({self.to}) before it starts ({self.from_})")
        return self


class CursorConfig(_Strict):
    lookback: str = "1h"

    @field_validator("lookback")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class SourceRef(BaseModel):
    model_config = ConfigDict(extra="allow")
    connection: str
    stream: str


class DestinationRef(BaseModel):
    model_config = ConfigDict(extra="allow")
    connection: str
    object: str


class SyncConfig(_Strict):
    source: SourceRef
    destination: DestinationRef
    schedule: str | None = None
    # The zone a cron schedule's hours are in: "0 4 * * *" with Europe/Oslo is four in the
    # morning in Oslo, summer and winter.
    schedule_timezone: str = "UTC"
    window: WindowConfig | None = None
    cursor: CursorConfig | None = None
    diff: bool = False
    backfill_from: date | None = None
    backfill_chunk: str = "365d"
    match: list[str] | None = None
    groups: dict[str, Any] | None = None
    mapping: dict[str, Any] | None = None
    write_policy: dict[str, str | dict[str, str]] = Field(default_factory=dict)
    skip: list[str] = Field(default_factory=list)
    require_consent: Literal["email", "sms", "any"] | None = None
    notify: NotifyConfig | None = None
    batch_size: int = Field(500, ge=1, le=10_000)
    page_size: int | None = Field(None, ge=1)
    # Read and map the source in a child process (engine/reader_process.py): a second core
    # for large loads. "auto" (the default) does so where the source says its reads are worth
    # it and can run there (runtime.py, reads_in_child); true insists, false never.
    source_process: bool | Literal["auto"] = "auto"

    @field_validator("schedule_timezone")
    @classmethod
    def _schedule_zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from ticketbridge.engine.scheduler import parse_schedule

        parse_schedule(value)
        return value

    def parsed_schedule(self) -> Schedule | None:
        """The schedule as ``serve``, the console and Temporal read it: the cron in
        ``schedule_timezone``. None for a sync run only by hand."""
        if self.schedule is None:
            return None
        from ticketbridge.engine.scheduler import parse_schedule

        return parse_schedule(self.schedule, self.schedule_timezone)

    @field_validator("backfill_chunk")
    @classmethod
    def _chunk(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("write_policy")
    @classmethod
    def _modes(cls, value: dict[str, Any]) -> dict[str, Any]:
        for entity, spec in value.items():
            modes = spec.values() if isinstance(spec, dict) else [spec]
            for mode in modes:
                if mode not in MODES:
                    raise ValueError(
                        f"{entity}: write mode must be one of {', '.join(MODES)}, not {mode!r}"
                    )
        return value


class ProjectFile(_Strict):
    connections: dict[str, dict[str, Any]] = Field(default_factory=dict)
    syncs: dict[str, SyncConfig] = Field(default_factory=dict)
    database_url: str | None = None
    smtp: SmtpConfig | None = None
    supplier_api: dict[str, Any] | None = None  # validated as SupplierApiConfig


@dataclass
class Project:
    path: Path
    file: ProjectFile
    connections: dict[str, ConnectionConfig]
    syncs: dict[str, SyncSpec]
    env: dict[str, str]
    supplier_api: SupplierApiConfig | None = None
    # ``${VAR}`` references left unset (loaded with ``secrets=False``): see require_env.
    missing_env: list[ConfigError] = field(default_factory=list)

    def require_env(self) -> None:
        """Raise for the ``${VAR}`` references that are not set: before opening a connection."""
        if self.missing_env:
            raise ConfigProblems(self.missing_env)

    def connector(self, connection: str) -> Connector:
        return registry.get(self.connections[connection].platform)

    def sync_config(self, name: str) -> SyncConfig:
        return self.file.syncs[name]

    def secrets(self) -> list[str]:
        found = [s for c in self.connections.values() for s in c.secrets()]
        if self.supplier_api is not None:
            found.append(self.supplier_api.api_key.get_secret_value())
        smtp = self.file.smtp
        if smtp is not None and smtp.password is not None:
            found.append(smtp.password.get_secret_value())
        return found

    def get_sync(self, name: str) -> SyncSpec:
        try:
            return self.syncs[name]
        except KeyError:
            known = ", ".join(sorted(self.syncs)) or "none"
            raise ConfigError(
                f"no sync named {name!r} (syncs: {known})", file=str(self.path)
            ) from None


class ConfigProblems(ConfigError):
    """Several problems of one project file, all reported at once (the first one's file, line
    and field are this error's; its text has one line per problem)."""

    def __init__(self, problems: list[ConfigError]) -> None:
        first = problems[0]
        super().__init__(first.message, file=first.file, line=first.line, field=first.field)
        self.problems = [p for e in problems for p in getattr(e, "problems", [e])]
        self.args = ("\n".join(str(p) for p in self.problems),)


def _raise_all(problems: list[ConfigError]) -> None:
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigProblems(problems)


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else None
    return tp


def _keys_at(model: type[BaseModel] | None, loc: Loc) -> list[str]:
    """The keys the model allows at ``loc`` (for "did you mean"); [] when unknown."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            found = next((f for n, f in tp.model_fields.items() if part in (n, f.alias)), None)
            tp = found.annotation if found is not None else None
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return []


def _url_problem(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return None
    hint = f" (did you mean 'http://{value}'?)" if "://" not in value and value else ""
    return f"not an http:// or https:// URL: {value!r}{hint}"


# --- YAML with line numbers ---------------------------------------------------------------


def _lines(node: yaml.Node, loc: Loc, out: dict[Loc, int]) -> None:
    out[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*loc, key)] = key_node.start_mark.line + 1
            _lines(value_node, (*loc, key), out)
            out[(*loc, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*loc, i), out)


# A project file is a few hundred nodes; aliases may repeat a block, but an expansion past
# this is an alias bomb ("billion laughs"), refused before anything walks it.
MAX_YAML_NODES = 100_000


def _check_nodes(root: yaml.Node, file: str) -> None:
    """Refuse duplicate keys (YAML would keep the last one silently) and alias bombs.

    Each distinct node is visited once, so a document of a few lines whose aliases expand to
    a billion nodes costs a few lines of work here."""
    sizes: dict[int, int] = {}
    expanding: set[int] = set()
    pending: list[tuple[yaml.Node, Loc, bool]] = [(root, (), False)]
    while pending:
        node, loc, children_done = pending.pop()
        if id(node) in sizes:
            continue
        if not children_done and id(node) in expanding:
            raise ConfigError(
                "an alias (*name) refers to a block that contains it",
                file=file,
                line=node.start_mark.line + 1,
                field=_dotted(loc) or None,
            )
        children: list[tuple[yaml.Node, Loc]] = []
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value
                if isinstance(key_node, yaml.ScalarNode) and key != "<<":
                    if key in seen:
                        raise ConfigError(
                            f"duplicate key {key!r} (first on line {seen[key]})",
                            file=file,
                            line=key_node.start_mark.line + 1,
                            field=_dotted((*loc, key)),
                        )
                    seen[key] = key_node.start_mark.line + 1
                children += [(key_node, loc), (value_node, (*loc, key))]
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, (*loc, i)) for i, item in enumerate(node.value)]
        if not children_done:
            expanding.add(id(node))
            pending.append((node, loc, True))
            pending.extend((c, where, False) for c, where in children if id(c) not in sizes)
            continue
        expanding.discard(id(node))
        sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c, _ in children)
        if sizes[id(node)] > MAX_YAML_NODES:
            raise ConfigError(
                f"the document expands to more than {MAX_YAML_NODES:,} values through its "
                "aliases (*name); write the repeated blocks out, or use fewer aliases",
                file=file,
                line=node.start_mark.line + 1,
            )


def _line_of(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    for n in range(len(loc), -1, -1):
        found = lines.get(tuple(loc[:n]))
        if found is not None:
            return found
    return None


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file (no interpolation, ``#`` comments)."""
    env: dict[str, str] = {}
    if not path.is_file():
        return env
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        env[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return env


class _Loader:
    def __init__(self, path: Path, env: Mapping[str, str], secrets: bool = True) -> None:
        self.path = path
        self.file = str(path)
        self.env = env
        self.lines: dict[Loc, int] = {}
        # secrets=False: an unset ${VAR} becomes "" and is remembered, not raised.
        self.secrets = secrets
        self.missing: list[ConfigError] = []

    def error(self, message: str, loc: Loc) -> ConfigError:
        return ConfigError(
            message, file=self.file, line=_line_of(self.lines, loc), field=_dotted(loc) or None
        )

    def expand(self, value: Any, loc: Loc) -> Any:
        if isinstance(value, str):

            def sub(m: re.Match[str]) -> str:
                name, default = m.group(1), m.group(2)
                if name in self.env:
                    return self.env[name]
                if default is not None:
                    return default
                error = self.error(f"environment variable {name} is not set", loc)
                if self.secrets:
                    raise error
                self.missing.append(error)
                return ""

            return _ENV.sub(sub, value)
        if isinstance(value, dict):
            return {k: self.expand(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(v, (*loc, i)) for i, v in enumerate(value)]
        return value

    def validation(
        self,
        exc: ValidationError,
        prefix: Loc,
        model: type[BaseModel] | None = None,
        extra_keys: tuple[str, ...] = (),
    ) -> ConfigError:
        """Every problem pydantic found, unknown keys first, each with its line; an unknown key
        close to a known one gets "did you mean"."""
        missing_env = [e for e in self.missing if e.field and e.field.startswith(_dotted(prefix))]
        if missing_env:  # an unset ${VAR} left "" behind: that is the problem to name
            return missing_env[0] if len(missing_env) == 1 else ConfigProblems(missing_env)
        found = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        problems = []
        for error in found:
            loc: Loc = (*prefix, *error["loc"])
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = f"unknown key {loc[-1]!r}"
                known = _keys_at(model, tuple(error["loc"][:-1]))
                if len(error["loc"]) == 1:
                    known += extra_keys
                close = difflib.get_close_matches(str(loc[-1]), known, n=1)
                if close:
                    message += f" (did you mean {close[0]!r}?)"
            elif error["type"] == "missing":
                message = f"missing required key {loc[-1]!r}"
            elif error["type"] == "value_error":
                message = message.removeprefix("Value error, ")
            problems.append(self.error(message, loc))
        return problems[0] if len(problems) == 1 else ConfigProblems(problems)

    def parse(self, text: str) -> dict[str, Any]:
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            if node is not None:
                _check_nodes(node, self.file)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            raise ConfigError(f"not valid YAML: {exc}", file=self.file, line=line) from None
        if node is not None:
            _lines(node, (), self.lines)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError("the project file must be a mapping", file=self.file, line=1)
        return data

    def load(self, text: str) -> Project:
        data = self.parse(text)
        if isinstance(data.get("smtp"), dict):
            data["smtp"] = self.expand(data["smtp"], ("smtp",))
        try:
            pf = ProjectFile.model_validate(data)
        except ValidationError as exc:
            raise self.validation(exc, (), ProjectFile) from None
        problems: list[ConfigError] = []
        connections: dict[str, ConnectionConfig] = {}
        failed: set[str] = set()
        for name, raw in pf.connections.items():
            try:
                connections[name] = self.connection(name, raw)
            except ConfigError as exc:
                problems.append(exc)
                failed.add(name)
        syncs: dict[str, SyncSpec] = {}
        for name, cfg in pf.syncs.items():
            if {cfg.source.connection, cfg.destination.connection} & failed:
                continue  # its connection's problem is reported already
            try:
                syncs[name] = self.sync(name, cfg, connections)
            except ConfigError as exc:
                problems.append(exc)
            if cfg.notify is not None and pf.smtp is None:
                problems.append(
                    self.error(
                        "notify needs an smtp: block in the project file",
                        ("syncs", name, "notify"),
                    )
                )
        _raise_all(problems)
        supplier = self.supplier(pf.supplier_api, connections)
        return Project(
            self.path, pf, connections, syncs, dict(self.env), supplier, list(self.missing)
        )

    def supplier(
        self, raw: dict[str, Any] | None, conns: dict[str, ConnectionConfig]
    ) -> SupplierApiConfig | None:
        if raw is None:
            return None
        loc: Loc = ("supplier_api",)
        try:
            config = SupplierApiConfig.model_validate(self.expand(raw, loc))
        except ValidationError as exc:
            raise self.validation(exc, loc, SupplierApiConfig) from None
        connection = conns.get(config.connection)
        if connection is None:
            known = ", ".join(sorted(conns)) or "none"
            raise self.error(
                f"no connection named {config.connection!r} (connections: {known})",
                (*loc, "connection"),
            )
        if connection.platform != "acme":
            raise self.error(
                f"the Supplier API sells through an acme connection, not {connection.platform}",
                (*loc, "connection"),
            )
        return config

    def connection(self, name: str, raw: dict[str, Any]) -> ConnectionConfig:
        loc: Loc = ("connections", name)
        platform = raw.get("platform")
        if not platform:
            raise self.error("missing required key 'platform'", loc)
        try:
            connector = registry.get(str(platform))
        except ConfigError as exc:
            raise self.error(exc.message, (*loc, "platform")) from None
        expanded = self.expand(raw, loc)
        try:
            config = connector.config.model_validate(expanded)
        except ValidationError as exc:
            raise self.validation(exc, loc, connector.config) from None
        problems = []
        for key in type(config).model_fields:
            value = getattr(config, key)
            if key.endswith("base_url") and isinstance(value, str):
                problem = _url_problem(value)
                if problem is not None:
                    problems.append(self.error(problem, (*loc, key)))
        _raise_all(problems)
        return config

    def sync(self, name: str, cfg: SyncConfig, conns: dict[str, ConnectionConfig]) -> SyncSpec:
        loc: Loc = ("syncs", name)
        src = self._endpoint(cfg.source.connection, conns, (*loc, "source"), "source")
        dst = self._endpoint(
            cfg.destination.connection, conns, (*loc, "destination"), "destination"
        )
        stream = next((s for s in src.streams if s.name == cfg.source.stream), None)
        if stream is None:
            names = ", ".join(s.name for s in src.streams)
            raise self.error(
                f"{src.platform} has no stream {cfg.source.stream!r} (streams: {names})",
                (*loc, "source", "stream"),
            )
        obj = next((o for o in dst.objects if o.name == cfg.destination.object), None)
        if obj is None:
            names = ", ".join(o.name for o in dst.objects)
            raise self.error(
                f"{dst.platform} has no object {cfg.destination.object!r} (objects: {names})",
                (*loc, "destination", "object"),
            )
        for kind in stream.kinds:
            if kind not in obj.accepts:
                raise self.error(
                    f"{dst.platform} {obj.name} accepts {', '.join(obj.accepts)}, not {kind}",
                    (*loc, "destination", "object"),
                )
        extra_src = dict(cfg.source.model_extra or {})
        extra_dst = dict(cfg.destination.model_extra or {})
        # Sync-level rules the destination object understands are passed to it as options.
        for key in ("match", "groups", "mapping"):
            value = getattr(cfg, key)
            if value is not None:
                if key not in obj.options.model_fields:
                    raise self.error(
                        f"{dst.platform} {obj.name} has no {key!r} setting", (*loc, key)
                    )
                extra_dst.setdefault(key, value)
        try:
            stream_options = stream.options.model_validate(self.expand(extra_src, loc))
        except ValidationError as exc:
            raise self.validation(
                exc, (*loc, "source"), stream.options, ("connection", "stream")
            ) from None
        try:
            object_options = obj.options.model_validate(self.expand(extra_dst, loc))
        except ValidationError as exc:
            raise self.validation(
                exc, (*loc, "destination"), obj.options, ("connection", "object")
            ) from None
        strategy = self._strategy(cfg, stream.strategies, loc)
        window = None
        if cfg.window is not None:
            if stream.window_fields and cfg.window.field not in stream.window_fields:
                raise self.error(
                    f"stream {stream.name} has no window field "
                    f"{cfg.window.field!r} (fields: "
                    f"{', '.join(stream.window_fields)})",
                    (*loc, "window", "field"),
                )
            window = WindowSpec(
                cfg.window.field, cfg.window.from_, cfg.window.to, cfg.window.timezone
            )
        try:
            policy = WritePolicy.build(obj.default_policy, cfg.write_policy, obj.withdrawals)
        except ValueError as exc:
            raise self.error(str(exc), (*loc, "write_policy")) from None
        return SyncSpec(
            name=name,
            stream=stream.name,
            stream_options=stream_options,
            obj=obj.name,
            object_options=object_options,
            strategy=strategy,
            window=window,
            lookback=parse_duration(cfg.cursor.lookback) if cfg.cursor else parse_duration("1h"),
            policy=policy,
            skip=frozenset(cfg.skip),
            require_consent=cfg.require_consent,
            batch_size=cfg.batch_size,
            page_size=cfg.page_size,
            backfill_from=cfg.backfill_from,
            backfill_chunk=parse_duration(cfg.backfill_chunk),
            lease_key=(src.lease_scope(conns[cfg.source.connection]) if src.lease_scope else None),
        )

    def _endpoint(
        self, conn: str, conns: dict[str, ConnectionConfig], loc: Loc, role: str
    ) -> Connector:
        if conn not in conns:
            known = ", ".join(sorted(conns)) or "none"
            raise self.error(
                f"no connection named {conn!r} (connections: {known})", (*loc, "connection")
            )
        connector = registry.get(conns[conn].platform)
        if getattr(connector, role) is None:
            raise self.error(f"{connector.platform} cannot be a {role}", (*loc, "connection"))
        return connector

    def _strategy(self, cfg: SyncConfig, supported: tuple[str, ...], loc: Loc) -> Any:
        chosen = [
            n
            for n, on in (
                ("window", cfg.window is not None),
                ("cursor", cfg.cursor is not None),
                ("diff", cfg.diff),
            )
            if on
        ]
        if len(chosen) > 1:
            raise self.error(
                f"choose one of window, cursor, diff (got {', '.join(chosen)})", (*loc, chosen[1])
            )
        strategy = chosen[0] if chosen else "full"
        if strategy != "full" and strategy not in supported:
            raise self.error(
                f"stream supports {', '.join(supported)}, not {strategy}", (*loc, strategy)
            )
        return strategy


def load_project(
    path: str | Path, env: Mapping[str, str] | None = None, *, secrets: bool = True
) -> Project:
    """Load and validate a project file. Raises ConfigError naming file, line and field.

    ``secrets=False``: unset ``${VAR}`` references are not errors yet (``require_env``)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            "project file not found (create one with `ticketbridge init`)", file=str(p)
        )
    merged = {**read_env_file(p.parent / ".env"), **(os.environ if env is None else env)}
    return _Loader(p, merged, secrets).load(p.read_text(encoding="utf-8"))


def load_project_text(
    text: str, name: str = "ticketbridge.yaml", env: Mapping[str, str] | None = None
) -> Project:
    return _Loader(Path(name), dict(env or {})).load(text)


def expand_env(value: Any, env: Mapping[str, str], file: str = "<settings>") -> Any:
    """``${VAR}`` / ``${VAR:-default}`` expansion as in project files, for other callers."""
    return _Loader(Path(file), env).expand(value, ())
