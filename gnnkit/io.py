"""Read graphs from edge-list files, and the two homework graphs built in.

File format (networkx's edge-list format): one edge ``u v`` per line, ids are integers
separated by white space; ``#`` starts a comment (a whole line or the rest of one); blank lines
are ignored. A networkx edge-data dict after the two ids (``1 2 {}``, as written by
``networkx.write_edgelist``) is ignored. A line with a single id adds that node without an
edge, so isolated nodes can be listed; a line ``u u`` is a self-loop and is kept (it puts a 1
on the diagonal of the adjacency matrix). Ids count from 0, or from 1 with ``one_indexed=True``
(as in a textbook figure: node k of the figure becomes node k - 1).
"""

from __future__ import annotations

import os

from .graph import Graph

__all__ = ["HOMEWORK_GRAPHS", "homework_graph", "load_graph"]

#: The homework figures as 1-indexed undirected edge lists: number -> (number of nodes, edges).
HOMEWORK_GRAPHS: dict[int, tuple[int, tuple[tuple[int, int], ...]]] = {
    1: (5, ((1, 2), (1, 3), (1, 5), (2, 3), (3, 4))),
    2: (6, ((1, 2), (2, 3), (2, 5), (3, 4), (4, 5), (4, 6), (5, 6))),
}


def load_graph(path, *, one_indexed: bool = False, directed: bool = False) -> Graph:
    """Read an edge-list file into a :class:`Graph` with nodes ``0..N-1``.

    N is the largest id + 1 (after the shift for ``one_indexed``). With ``directed=False``
    (default) each line ``u v`` is an undirected edge (both directions stored, duplicates
    merged); with ``directed=True`` it is the edge u -> v only, i.e. ``A[v, u] = 1``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a malformed line, a non-integer or negative id, or 0 in one-indexed input;
            the message gives ``file:line``.
    """
    path = os.fspath(path)
    pairs: list[tuple[int, int]] = []
    largest = -1
    shift = 1 if one_indexed else 0
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            content = line.split("#", 1)[0].strip()
            if not content:
                continue
            where = f"{path}:{number}"
            tokens = content.split()
            if len(tokens) > 2 and tokens[2].startswith("{"):
                tokens = tokens[:2]
            if len(tokens) > 2:
                raise ValueError(
                    f"{where}: expected 'u v' (two node ids), got {len(tokens)} values in "
                    f"{content!r}."
                )
            ids = [_parse_id(token, where, one_indexed) - shift for token in tokens]
            largest = max([largest, *ids])
            if len(ids) == 2:
                pairs.append((ids[0], ids[1]))
    return Graph.from_edge_list(pairs, largest + 1, undirected=not directed)


def homework_graph(number: int, *, directed: bool = False) -> Graph:
    """Homework graph 1 (5 nodes: 1-2, 1-3, 1-5, 2-3, 3-4) or 2 (6 nodes: 1-2, 2-3, 2-5, 3-4,
    4-5, 4-6, 5-6), with the figure's nodes 1..n as nodes 0..n-1: undirected (both directions
    of every edge), or with ``directed=True`` each pair ``u-v`` as the one edge u -> v."""
    if isinstance(number, bool) or not isinstance(number, int) or number not in HOMEWORK_GRAPHS:
        raise ValueError(f"number must be 1 or 2 (the homework graphs), got {number!r}.")
    num_nodes, edges = HOMEWORK_GRAPHS[number]
    return Graph.from_edge_list(edges, num_nodes, one_indexed=True, undirected=not directed)


def _parse_id(token: str, where: str, one_indexed: bool) -> int:
    try:
        value = int(token)
    except ValueError:
        raise ValueError(
            f"{where}: node id {token!r} is not an integer; write each edge as two whole "
            "numbers 'u v'."
        ) from None
    if one_indexed and value < 1:
        raise ValueError(
            f"{where}: node id {value} in a one-indexed file (ids start at 1); load it with "
            "one_indexed=False if the ids start at 0."
        )
    if value < 0:
        raise ValueError(f"{where}: negative node id {value}; ids start at 0.")
    return value
