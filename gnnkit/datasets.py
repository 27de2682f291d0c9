"""Moved to :mod:`gnnkit.data.datasets`; this name keeps working for one release."""

import sys

from ._moved import moved_module

sys.modules[__name__] = moved_module("datasets")
