"""The gnnkit commands, one module each (see gnnkit.cli)."""
