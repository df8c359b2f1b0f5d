"""The operations console (``ticketbridge ui``): server-rendered pages on the project file and
the state store the CLI uses. ``create_app(settings)`` builds it."""

from ticketbridge.web.app import create_app
from ticketbridge.web.settings import UiSettings

__all__ = ["UiSettings", "create_app"]
