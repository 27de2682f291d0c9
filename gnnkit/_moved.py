"""Module paths that moved into :mod:`gnnkit.data`; they keep working for one release."""

from __future__ import annotations

import importlib
import warnings

#: Old module -> its place in gnnkit.data.
MOVED_MODULES = {
    "datasets": "gnnkit.data.datasets",
    "snap": "gnnkit.data.snap",
    "store": "gnnkit.data.store",
    "synthetic": "gnnkit.data.synthetic",
}


def moved_module(old: str):
    """The module that ``gnnkit.<old>`` became, with a ``DeprecationWarning``."""
    new = MOVED_MODULES[old]
    warnings.warn(f"gnnkit.{old} moved to {new}; the old name goes in the next release.",
                  DeprecationWarning, stacklevel=3)
    return importlib.import_module(new)
