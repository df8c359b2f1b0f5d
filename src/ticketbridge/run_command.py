"""``ticketbridge run SYNC`` (and ``retry``): the command's body, and a lean way in for ``run``.

Why a lean way in: ``run`` is what a scheduler starts every few minutes, and building the whole
command line first (Typer, Click, Rich, and structlog's Rich traceback renderer with Pygments)
cost about a tenth of a second of CPU before the first source call (bench/README.md,
"Start-up"). :func:`parse` accepts the plain forms of ``run`` only; anything else (``--help``,
``--today``, ``--temporal``, a bad or unknown option, a terminal on stdout or stderr) goes to
the Typer app, which reports it exactly as before. Both ways run :func:`run_once`, and every
line either prints comes from ``cli.py``'s functions, imported once the run has started.
"""

from __future__ import annotations

import errno
import gc
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ticketbridge.errors import ConfigError, StateError

if TYPE_CHECKING:
    from ticketbridge.engine.spec import RunOptions
    from ticketbridge.engine.state.base import RunCounters

DEFAULT_CONFIG = Path("ticketbridge.yaml")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
# The Typer app's environment variables for its global options (cli._main).
CONFIG_ENV, LEVEL_ENV, FORMAT_ENV = (
    "TICKETBRIDGE_CONFIG",
    "TICKETBRIDGE_LOG_LEVEL",
    "TICKETBRIDGE_LOG_FORMAT",
)


@dataclass(frozen=True)
class RunArgs:
    """A ``run`` command line the lean way in can take."""

    sync: str
    config: Path
    dry_run: bool = False
    as_json: bool = False
    log_level: str = "INFO"
    log_json: bool = False


def _value(argv: Sequence[str], i: int, names: tuple[str, ...]) -> tuple[str, int] | None:
    """The value of option ``argv[i]`` (``--name VALUE`` or ``--name=VALUE``) and the index
    after it; None when ``argv[i]`` is not one of ``names`` or the value looks like an option
    (left to Click, whose reading of such lines this does not copy)."""
    arg = argv[i]
    for name in names:
        if arg == name and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            return argv[i + 1], i + 2
        if name.startswith("--") and arg.startswith(name + "="):
            value = arg[len(name) + 1 :]
            return (value, i + 1) if not value.startswith("-") else None
    return None


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> RunArgs | None:
    """``[--config F] [--log-level L] [--log-format F] run SYNC [--json] [--dry-run]
    [--config F]`` as the Typer app reads it (the later of two values wins, the environment
    fills what the line leaves out); None for any other command line."""
    config: str | None = environ.get(CONFIG_ENV) or None
    level = environ.get(LEVEL_ENV) or "INFO"
    fmt = environ.get(FORMAT_ENV) or "text"
    i = 0
    while i < len(argv) and argv[i] != "run":
        found = _value(argv, i, ("--config", "-c"))
        if found is not None:
            config, i = found
            continue
        found = _value(argv, i, ("--log-level",))
        if found is not None:
            level, i = found
            continue
        found = _value(argv, i, ("--log-format",))
        if found is None:
            return None
        fmt, i = found
    if level.upper() not in LOG_LEVELS or fmt.lower() not in LOG_FORMATS:
        return None  # the app names the bad value
    sync: str | None = None
    dry_run = as_json = False
    i += 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--json":
            as_json, i = True, i + 1
        elif arg == "--dry-run":
            dry_run, i = True, i + 1
        elif (found := _value(argv, i, ("--config", "-c"))) is not None:
            config, i = found
        elif arg.startswith("-") or sync is not None:
            return None
        else:
            sync, i = arg, i + 1
    if sync is None:
        return None
    return RunArgs(
        sync=sync,
        config=Path(config) if config else DEFAULT_CONFIG,
        dry_run=dry_run,
        as_json=as_json,
        log_level=level.upper(),
        log_json=fmt.lower() == "json",
    )


def _cli() -> ModuleType:
    """The command line's printing functions: imported when first needed, which for a run
    that starts is after its first source call."""
    from ticketbridge import cli

    return cli


class _LateProgress:
    """``cli.Progress`` made at the first progress update. Off a terminal it only prints
    lines, so nothing is lost by making it late."""

    def __init__(self, sync: str) -> None:
        self.sync = sync
        self.shown: Any = None

    def __call__(self, counters: RunCounters) -> None:
        if self.shown is None:
            self.shown = _cli().Progress(self.sync)
        self.shown(counters)


def run_once(
    path: Path, sync: str, opts: RunOptions, as_json: bool, log_level: str, log_json: bool
) -> int:
    """One run of ``sync`` from the project file at ``path``: prints what ``run`` prints and
    returns its exit code (2 for a config error). Raises StateError when the state database
    cannot be opened (the caller prints it)."""
    import asyncio

    from ticketbridge import cpu_policy, logs
    from ticketbridge.project import load_project
    from ticketbridge.runtime import Runtime

    try:
        # Before the first thread or fork: both take the policy from the thread that makes them.
        cpu_policy.run_as_batch()
    except ValueError as exc:
        _cli()._print_config_error(ConfigError(str(exc)))
        return 2
    try:
        project = load_project(path)
    except ConfigError as exc:
        _cli()._print_config_error(exc)
        return 2
    logs.configure(log_level, project.secrets(), json=log_json)
    try:
        project.get_sync(sync)
    except ConfigError as exc:
        _cli()._fail_config(exc)  # prints the error
        return 2
    opts.detail.setdefault("started_by", cli_user())
    try:
        project.require_env()
    except ConfigError as exc:
        _cli()._print_config_error(exc)
        return 2
    runtime = Runtime.open(project)
    tty = sys.stderr.isatty()
    try:
        progress = _cli().Progress(sync) if tty else None
        if progress is not None:
            progress.__enter__()
        try:
            opts.on_progress = progress if progress is not None else _LateProgress(sync)
            result = asyncio.run(runtime.run(sync, opts))
        finally:
            if progress is not None:
                progress.__exit__(None, None, None)
    except ConfigError as exc:
        _cli()._fail_config(exc)
        return 2
    finally:
        runtime.close()
    cli = _cli()
    if opts.dry_run and not as_json:
        cli._print_plan(result)
    cli._print_result(result, as_json)
    return result.exit_code


def cli_user() -> str:
    """Who started a run from the command line, for the run history."""
    import getpass

    try:
        return f"cli ({getpass.getuser()})"
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        return "cli"


def _without_rich_tracebacks() -> None:
    """Import structlog as if Rich were not installed. Its ``dev`` module otherwise loads
    Rich's traceback renderer and Pygments at import (60-100 ms), to draw exceptions that our
    log events never carry (none is logged with ``exc_info``); every other line renders the
    same. Only the lean ``run`` does this, and only off a terminal."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` fail
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]


def main(argv: Sequence[str] | None = None) -> None:
    """The ``ticketbridge`` command: ``run`` the lean way when :func:`parse` takes the line
    and neither stdout nor stderr is a terminal, else the Typer app (``cli.main``)."""
    # No collections while the modules load: they allocate tens of thousands of objects that
    # live as long as the process, and each collection would walk them again (about a tenth
    # of the start-up's CPU). tune_gc turns the collector back on; both ways call it once
    # their modules are in (bench/README.md, "Start-up").
    gc.disable()
    args = parse(sys.argv[1:] if argv is None else argv, os.environ)
    if args is None or sys.stdout.isatty() or sys.stderr.isatty():
        _cli().main()
        return
    _without_rich_tracebacks()
    from ticketbridge import logs, project, runtime  # noqa: F401  # before tune_gc, as in cli
    from ticketbridge.engine.spec import RunOptions

    logs.configure(args.log_level, json=args.log_json)
    tune_gc()
    # What the Typer app does around a command (cli.main and Click's own main).
    try:
        code = run_once(
            args.config,
            args.sync,
            RunOptions(dry_run=args.dry_run),
            args.as_json,
            args.log_level,
            args.log_json,
        )
    except StateError as exc:
        _cli().err.print(f"[red]error:[/red] {exc}", highlight=False)
        code = 2
    except KeyboardInterrupt:
        code = 130
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        from typer._click.utils import PacifyFlushWrapper

        sys.stdout = PacifyFlushWrapper(sys.stdout)
        sys.stderr = PacifyFlushWrapper(sys.stderr)
        code = 1
    sys.exit(code)


def tune_gc() -> None:
    """Fewer, cheaper garbage collections for a process that allocates per record.

    ``freeze`` moves everything imported so far (tens of thousands of long-lived objects) out
    of the collector's sight, so a full collection no longer walks them; the higher young
    threshold makes collections rarer while keeping memory bounded. Measured on the S1
    benchmark (bench/README.md): about 15 % less CPU per record. The collector is enabled
    here: :func:`main` keeps it off while the modules load.
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)
    gc.enable()
