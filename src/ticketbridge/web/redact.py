"""Secrets never reach a page or a download.

Two layers: what the console shows of a configuration or a payload is masked by key name and
by type (a ``SecretStr`` field, a key that names a password, token or key); and every page and
download passes :class:`Scrubber`, which replaces each known secret value wherever it appears
(an error message, a log line, a field of a rejected record).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, SecretStr

from ticketbridge.project import Project

MASK = "••••••"
# A setting is secret when its name ends in one of these words (``api_key``,
# ``client_secret``, ``password``), not when it merely contains one: ``token_url``,
# ``api_key_header`` or ``token_password_field`` name where a secret goes, not a secret.
_SECRET_KEY = re.compile(
    r"(^|[_-])(pass(word)?|passwd|secret|token|api[_-]?key|apikey|private[_-]?key|"
    r"credentials?|signature)$",
    re.I,
)


def secret_key_name(name: str) -> bool:
    return bool(_SECRET_KEY.search(name))


def mask(value: Any, key: str = "") -> Any:
    """``value`` with every secret-looking entry masked (by key name or SecretStr type)."""
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, BaseModel):
        return mask(value.model_dump(mode="python", by_alias=True), key)
    if isinstance(value, dict):
        return {str(k): mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v, key) for v in value]
    if key and secret_key_name(key) and value not in (None, "", True, False):
        if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
            return value  # a reference to the environment, not the secret itself
        return MASK
    return value


def project_secrets(project: Project) -> list[str]:
    """Every secret value of the project: SecretStr fields (connections, Supplier API key,
    SMTP password) and any value under a secret-looking key of a connection."""
    found = list(project.secrets())
    for config in project.connections.values():
        for name in type(config).model_fields:
            value = getattr(config, name)
            if isinstance(value, str) and secret_key_name(name):
                found.append(value)
    return found


class Scrubber:
    """Replaces known secret values (4 characters or more) in text."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(re.escape(v) for v in self.values)) if self.values else None
        )

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)
