"""``python -m gnnkit``: the command line (see :mod:`gnnkit.cli`)."""

import sys

from .cli import main

sys.exit(main())
