"""The console's settings: where the project is, who may log in, how the cookie is signed.

Credentials come from the environment only, never from the project file:

* ``TICKETBRIDGE_UI_OPERATOR_PASSWORD``: logs in with the operator role (runs, imports,
  retries, checkpoint changes);
* ``TICKETBRIDGE_UI_VIEWER_PASSWORD``: logs in read-only;
* ``TICKETBRIDGE_UI_SECRET_KEY``: signs the session cookie (default: random at each start, so
  a restart logs everyone out); a session also ends when its role's password changes;
* ``TICKETBRIDGE_UI_SECURE_COOKIE=1``: the cookie is sent over HTTPS only (behind TLS).

Without a password the console serves loopback only, and ``ticketbridge ui`` makes a password
for that start and prints a one-time login link.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from ticketbridge.errors import ConfigError

OPERATOR_ENV = "TICKETBRIDGE_UI_OPERATOR_PASSWORD"
VIEWER_ENV = "TICKETBRIDGE_UI_VIEWER_PASSWORD"
SECRET_KEY_ENV = "TICKETBRIDGE_UI_SECRET_KEY"  # noqa: S105 - a variable name
SECURE_COOKIE_ENV = "TICKETBRIDGE_UI_SECURE_COOKIE"

OPERATOR, VIEWER = "operator", "viewer"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``: addresses nobody else can reach."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@dataclass
class UiSettings:
    project_path: Path
    database_url: str | None = None  # None: the CLI's (TICKETBRIDGE_DATABASE_URL, project, file)
    host: str = "127.0.0.1"
    port: int = 8400
    operator_password: SecretStr | None = None
    viewer_password: SecretStr | None = None
    secret_key: SecretStr = field(default_factory=lambda: SecretStr(secrets.token_urlsafe(32)))
    secure_cookie: bool = False
    session_hours: float = 12.0
    # A link that logs in as operator once (``ticketbridge ui`` without passwords, demo --ui).
    one_time_token: SecretStr | None = None

    @classmethod
    def from_env(
        cls,
        project_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8400,
        database_url: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> UiSettings:
        source = os.environ if env is None else env

        def secret(name: str) -> SecretStr | None:
            value = source.get(name, "")
            return SecretStr(value) if value else None

        settings = cls(
            project_path=project_path,
            database_url=database_url,
            host=host,
            port=port,
            operator_password=secret(OPERATOR_ENV),
            viewer_password=secret(VIEWER_ENV),
            secure_cookie=source.get(SECURE_COOKIE_ENV, "").strip().lower() in ("1", "true"),
        )
        key = secret(SECRET_KEY_ENV)
        if key is not None:
            settings.secret_key = key
        return settings

    @property
    def has_credentials(self) -> bool:
        return self.operator_password is not None or self.viewer_password is not None

    def check(self) -> None:
        """Refuse what must not be served: a non-loopback address nobody has to log in to."""
        if not is_loopback(self.host) and not self.has_credentials:
            raise ConfigError(
                f"the console would listen on {self.host} without credentials: set "
                f"{OPERATOR_ENV} (and {VIEWER_ENV} for read-only users), or serve on 127.0.0.1"
            )
        for name, value in (("operator", self.operator_password), ("viewer", self.viewer_password)):
            if value is not None and len(value.get_secret_value()) < 8:
                raise ConfigError(f"the {name} password is shorter than 8 characters")
        if (
            self.operator_password is not None
            and self.viewer_password is not None
            and self.operator_password.get_secret_value() == self.viewer_password.get_secret_value()
        ):
            raise ConfigError("the operator and viewer passwords are the same")

    def ensure_login(self) -> str | None:
        """Without passwords (loopback only): make an operator password and a one-time login
        token for this start. Returns the password made, or None when one is configured (then
        no one-time link is made either: logins are by the configured passwords)."""
        self.check()
        if self.has_credentials:
            return None
        made = secrets.token_urlsafe(12)
        self.operator_password = SecretStr(made)
        self.one_time_token = SecretStr(secrets.token_urlsafe(24))
        return made

    def secret_values(self) -> list[str]:
        """The console's own secrets: never shown on any page."""
        found = [self.secret_key, self.operator_password, self.viewer_password]
        found.append(self.one_time_token)
        return [s.get_secret_value() for s in found if s is not None]
