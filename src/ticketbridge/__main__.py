"""``python -m ticketbridge``: the same as the ``ticketbridge`` command."""

from ticketbridge.run_command import main

main()
