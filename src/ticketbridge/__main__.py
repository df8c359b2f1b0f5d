"""``python -m ticketbridge``: the same as the ``ticketbridge`` command."""

from ticketbridge.cli import main

main()
