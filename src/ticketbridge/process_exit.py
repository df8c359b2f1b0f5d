"""Ending the ``ticketbridge`` process once a command is done.

Why not plain ``sys.exit``: once the Temporal SDK's Rust core is loaded, its runtime threads
can still call into Python while the interpreter finalizes. CPython then aborts ("Fatal Python
error: PyGILState_Release ... finalizing", SIGABRT) or crashes (SIGSEGV) after the command has
finished and printed its result, so a caller sees a failed exit status for a run that worked
(temporalio/sdk-python issue 300). Such a process flushes what it wrote and leaves with
``os._exit``; every other process ends the usual way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import NoReturn

# The compiled core; present in sys.modules only once a client or worker was made.
TEMPORAL_CORE = "temporalio.bridge.temporal_sdk_bridge"


def exit_code(value: object) -> int:
    """The status ``sys.exit(value)`` ends with; a message is printed to stderr, as
    ``sys.exit`` prints it."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1


def end(value: object) -> NoReturn:
    """Leave with the status of ``sys.exit(value)``."""
    code = exit_code(value)
    if TEMPORAL_CORE not in sys.modules:
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe or stream: nothing more can be written to it anyway.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code & 0xFF)
