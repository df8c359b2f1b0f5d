"""What every page of one console shares: the project (read again when its file changes), the
state store the CLI uses, the action worker, the templates and the secret scrubber.

One instance per app (``create_app`` makes it and puts it on ``app.state``): nothing here is a
module-level global.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ticketbridge.engine.state.sql import SqlStateStore, open_store
from ticketbridge.errors import ConfigError
from ticketbridge.http.context import HttpContext
from ticketbridge.project import Project, load_project
from ticketbridge.runtime import Runtime, database_url
from ticketbridge.web import queries
from ticketbridge.web.auth import csrf_token, current_user
from ticketbridge.web.jobs import Jobs
from ticketbridge.web.redact import Scrubber, project_secrets
from ticketbridge.web.settings import UiSettings


def _age(moment: datetime | None, now: datetime | None = None) -> str:
    """``3 min ago``, ``2 h ago``, ``5 d ago``; ``in 4 h`` for a moment to come."""
    if moment is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        text = f"{int(seconds)} s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min"
    elif seconds < 86400 * 2:
        text = f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    else:
        text = f"{int(seconds // 86400)} d"
    return f"in {text}" if ahead else f"{text} ago"


def _when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    seconds = (end - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    return str(timedelta(seconds=round(seconds)))


def _count(value: int, cap: int) -> str:
    """A bounded count as people read it: ``1,234``, or ``10,000+`` past the cap."""
    return f"{cap:,}+" if value > cap else f"{value:,}"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


class Console:
    def __init__(self, settings: UiSettings, http: HttpContext | None = None) -> None:
        self.settings = settings
        self.path = Path(settings.project_path)
        self._lock = threading.Lock()
        self._project = load_project(self.path, secrets=False)
        self._mtime = self._stamp()
        self.config_error: str | None = None
        self.store: SqlStateStore = open_store(settings.database_url or database_url(self._project))
        self.http = http or HttpContext()
        self.jobs = Jobs()
        self.one_time_used = False
        self.templates = Environment(
            loader=PackageLoader("ticketbridge.web", "templates"),
            autoescape=select_autoescape(["html", "svg"]),
            trim_blocks=True,
            lstrip_blocks=True,
            # Every value a page shows passes the scrubber; the templates' own text does not
            # (a secret that happens to be a word of the markup must not break the page).
            finalize=self._finalize,
        )
        self.templates.filters.update(
            age=_age, when=_when, pretty=_pretty, without=lambda s, p: str(s).removeprefix(p)
        )
        self.templates.globals.update(
            duration=_duration,
            count=_count,
            COUNT_CAP=queries.COUNT_CAP,
            WAITING_CAP=queries.WAITING_CAP,
        )
        self._scrubber = self._make_scrubber()

    # --- the project, as the file says now ---------------------------------------------------
    def _stamp(self) -> tuple[float, float]:
        env = self.path.parent / ".env"
        return (
            self.path.stat().st_mtime,
            env.stat().st_mtime if env.exists() else 0.0,
        )

    def project(self) -> Project:
        """The project file as it is now: read again when it (or its .env) changed. A file
        that no longer loads leaves the last good one in use and says why on every page."""
        with self._lock:
            try:
                stamp = self._stamp()
            except OSError as exc:
                self.config_error = f"{self.path}: {exc.strerror}"
                return self._project
            if stamp != self._mtime:
                self._mtime = stamp
                try:
                    self._project = load_project(self.path, secrets=False)
                    self.config_error = None
                    self._scrubber = self._make_scrubber()
                except ConfigError as exc:
                    self.config_error = str(exc)
            return self._project

    def runtime(self) -> Runtime:
        """A runtime on the current project, sharing the store and the HTTP context."""
        return Runtime(self.project(), self.store, self.http)

    # --- secrets -----------------------------------------------------------------------------
    def _make_scrubber(self) -> Scrubber:
        return Scrubber([*project_secrets(self._project), *self.settings.secret_values()])

    def scrub(self, text: str) -> str:
        return self._scrubber(text)

    def _finalize(self, value: Any) -> Any:
        if isinstance(value, Markup):
            return Markup(self._scrubber(str(value)))  # noqa: S704 - escaped already
        if isinstance(value, str):
            return self._scrubber(value)
        return value

    # --- pages -------------------------------------------------------------------------------
    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any] | None = None,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        values = {
            "request": request,
            "user": current_user(request),
            "csrf": csrf_token(request),
            "config_error": self.config_error,
            "project_path": str(self.path),
            "now": datetime.now(UTC),
            **(context or {}),
        }
        html = self.templates.get_template(template).render(values)
        return HTMLResponse(html, status_code=status_code, headers=headers)

    def close(self) -> None:
        self.jobs.close()
        self.store.close()
