"""``python -m bench [FAMILY] [options]``: every benchmark from one command.

    python -m bench [options]               layer rows vs PyG (bench.layers; --help for options)
    python -m bench sampling [options]      neighbour sampler and loader vs PyG (bench.sampling)
    python -m bench training [options]      mini-batch epochs, torchrun, largest graph
    python -m bench full-batch [options]    gnnkit train's epoch: receptive fields vs whole graph
    python -m bench graph-level [options]   collating, GIN epoch, negatives, accuracy vs PyG
    python -m bench graph-breaks            torch.compile graph breaks of each layer

Each family is also ``python -m bench.<module>``; bench/README.md describes them all.
"""

from __future__ import annotations

import importlib
import sys

FAMILIES = {
    "layers": "bench.layers",
    "sampling": "bench.sampling",
    "training": "bench.training",
    "full-batch": "bench.full_batch",
    "graph-level": "bench.graph_level",
    "graph-breaks": "bench.graph_breaks",
}


def main(argv: list[str] | None = None) -> int:
    """Run the family named by the first argument (the layer rows when it names none)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in FAMILIES:
        family, argv = argv[0], argv[1:]
    else:
        family = "layers"
    return importlib.import_module(FAMILIES[family]).main(argv) or 0


if __name__ == "__main__":
    sys.exit(main())
