"""Side-by-side benchmark of gnnkit and PyTorch Geometric: ``python -m bench --help``.

Modules:

* :mod:`bench.cases`   graph sizes, seeded random inputs, matched layer pairs and Cora models;
* :mod:`bench.measure` timing, peak-memory and bandwidth primitives;
* :mod:`bench.worker`  the subprocess that does the measured work (``python -m bench.worker``);
* :mod:`bench.runner`  spawns workers with a timeout and a resident-memory cap;
* :mod:`bench.suite`   what one run measures, row by row, and the ``--find-limit`` search;
* :mod:`bench.report`  machine header and Markdown tables.

Importing this package does not import torch, so workers start as fast as possible.
"""
