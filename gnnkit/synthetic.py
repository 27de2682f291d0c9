"""Moved to :mod:`gnnkit.data.synthetic`; this name keeps working for one release."""

import sys

from ._moved import moved_module

sys.modules[__name__] = moved_module("synthetic")
