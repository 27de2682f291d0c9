"""The gnnkit commands, one module each (see gnnkit.cli)."""


class UsageError(Exception):
    """Input that cannot be used: ``gnnkit.cli.main`` prints it as one line on stderr and
    exits with status 2."""
