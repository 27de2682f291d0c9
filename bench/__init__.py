"""gnnkit's benchmarks against PyTorch Geometric: ``python -m bench [FAMILY] --help``.

Shared parts:

* :mod:`bench.graphs`  graph specs: random sizes, Cora, Slashdot, synthetic stores (one cache);
* :mod:`bench.runner`  starts a worker process with a timeout and a memory cap, reads its JSON;
* :mod:`bench.measure` timing, peak memory inside a process (VmHWM / CUDA max allocated),
  bandwidth;
* :mod:`bench.report`  machine header, Markdown tables, git revision.

Families (each ``main(argv)``, reached through ``python -m bench``):

* :mod:`bench.layers` (with :mod:`bench.suite`, :mod:`bench.worker`, :mod:`bench.cases`):
  layer rows, Cora epochs, spmm bandwidth, ``--find-limit``;
* :mod:`bench.sampling`: neighbour sampler and loader, trimming;
* :mod:`bench.training`: mini-batch epochs, torchrun, the largest graph that trains;
* :mod:`bench.graph_level`: collating, GIN epoch, negative sampling, accuracy, link prediction;
* :mod:`bench.graph_breaks`: ``torch.compile`` graph breaks per layer.

Importing this package does not import torch, so workers start as fast as possible.
"""
