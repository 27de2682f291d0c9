"""The matrices of a graph: adjacency A, degree D, powers A^n, walks and Laplacians.

Convention (fixed for the whole package): an edge j -> i is ``edge_index[:, k] = (j, i)`` and
``A[i, j] = 1`` (rows are receivers). For an undirected graph A is symmetric and equals
networkx's ``to_numpy_array``; for a directed graph it is the transpose of it (networkx puts an
edge u -> v at ``[u, v]``, gnnkit at ``[v, u]``).

Every function takes the matrix as nested lists, a numpy array, a torch tensor (dense or sparse)
or a scipy sparse matrix and returns a dense torch tensor [N, N] (only ``adjacency`` can return a
sparse one). Integer input stays integer (``torch.long``), so walk counts are exact; a result that
does not fit in int64 raises a ``ValueError`` instead of wrapping around, and
``exact_matrix_power`` gives powers of any size as Python integers.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from ._validate import (
    as_edge_index,
    as_matrix,
    check_int,
    check_node_ids,
    tensor_graph_form,
)
from .graph import Graph, as_graph

__all__ = [
    "adjacency",
    "degree_matrix",
    "exact_matrix_power",
    "inverse_degree_matrix",
    "laplacian",
    "matrix_power",
    "walks",
]

LAPLACIAN_NORMALIZATIONS = (None, "sym", "rw")
_INT64_MAX = 2**63 - 1
#: The most entries a dense adjacency matrix may have (10^8 entries are 800 MB as int64).
MAX_DENSE_ENTRIES = 10**8
#: The most bits an entry may reach while ``exact_matrix_power`` computes (about 20,000 digits).
MAX_EXACT_BITS = 2**16


def adjacency(
    graph_like,
    num_nodes: int | None = None,
    *,
    directed: bool = False,
    one_indexed: bool = False,
    sparse: bool = False,
) -> Tensor:
    """The 0/1 adjacency matrix A [N, N] with ``A[i, j] = 1`` for an edge j -> i.

    Args:
        graph_like: a list (or numpy array [E, 2]) of pairs ``(u, v)``; an integer tensor
            [2, E] (row 0 sources, row 1 targets); a networkx graph; a scipy sparse or torch
            sparse matrix; a ``gnnkit.Graph``; a PyG ``Data``.
        num_nodes: N. Defaults to the largest id + 1; give it to keep isolated nodes at the end.
        directed: only for pairs and [2, E] tensors. ``False`` (default): each pair is an
            undirected edge and A is symmetric. ``True``: the pair ``(u, v)`` is the edge
            u -> v, so ``A[v, u] = 1``. The other inputs carry their own direction (a networkx
            ``Graph`` is undirected, a ``DiGraph`` directed; a matrix or ``Graph`` is taken as
            it is) and ignore this flag.
        one_indexed: only for pairs and [2, E] tensors: ids count from 1 (as in a textbook
            figure) and are shifted down by one; an id 0 is then an error.
        sparse: return a coalesced torch sparse COO tensor instead of a dense one.

    Returns:
        ``torch.long`` tensor [N, N] of zeros and ones (duplicate edges and weights are merged
        into a single 1).

    Example: the path 1 - 2 - 3 written with figure numbering::

        >>> adjacency([(1, 2), (2, 3)], one_indexed=True)
        tensor([[0, 1, 0],
                [1, 0, 1],
                [0, 1, 0]])
    """
    graph = _to_graph(graph_like, num_nodes, directed=directed, one_indexed=one_indexed)
    if graph.num_nodes == 0:
        raise ValueError(
            "graph_like has no nodes; an edge list without edges needs num_nodes (e.g. "
            "adjacency([], num_nodes=3) gives a 3 x 3 zero matrix)."
        )
    n = graph.num_nodes
    if not sparse and n * n > MAX_DENSE_ENTRIES:
        raise ValueError(
            f"a dense {n} x {n} adjacency matrix has {n * n:,} entries ({_size_in_bytes(8 * n * n)}"
            f" as int64), more than MAX_DENSE_ENTRIES = {MAX_DENSE_ENTRIES:,}; pass sparse=True, "
            f"or check the node ids (the largest is {n - 1})."
        )
    graph = graph.coalesce()
    if sparse:
        n = graph.num_nodes
        indices = torch.stack([graph.target, graph.source])
        values = torch.ones(graph.num_edges, dtype=torch.long, device=graph.device)
        return torch.sparse_coo_tensor(
            indices, values, (n, n), check_invariants=False
        ).coalesce()
    return graph.to_dense(torch.long)


def degree_matrix(A) -> Tensor:
    """D = diag(A 1) [N, N]: ``D[i, i]`` is the sum of row i of A.

    Under the convention (rows are receivers) that is the in-degree of node i; for an undirected
    graph it is simply the degree. A self-loop ``A[i, i] = 1`` counts once. Integer A gives an
    exact integer D; a row sum beyond int64 raises a ``ValueError``.
    """
    A = as_exact_matrix(A)
    return torch.diag(_row_sums(A))


def inverse_degree_matrix(A) -> Tensor:
    """D^-1 [N, N]: ``1 / deg(i)`` on the diagonal, and 0 for a node with no neighbours.

    The 0 for degree 0 is what makes the mean over no neighbours 0 (row i of ``D^-1 A H`` is
    the mean of the in-neighbours' features, as in the mean-GCN layer), instead of a division
    by zero. Integer A gives ``torch.get_default_dtype()``; floating A keeps its dtype.
    """
    A = as_exact_matrix(A)
    return torch.diag(_safe_power(_degrees(A), -1.0))


def matrix_power(A, n: int) -> Tensor:
    """A^n [N, N] for an integer n >= 0 (``A^0`` is the identity).

    For a 0/1 adjacency matrix, ``(A^n)[i, j]`` is the number of walks of length n that
    ``walks(A, i, j, n)`` lists (a walk j -> ... -> i along the edges under the convention).

    Integer A is powered exactly in int64 (repeated squaring). The same products on |A| in
    float64 bound every intermediate sum; if one could leave the int64 range the power is
    computed with Python integers (:func:`exact_matrix_power`) instead, and a ``ValueError`` is
    raised when the exact result really does not fit in int64 (use ``exact_matrix_power`` for
    the exact value, or a float A for an approximate one). Floating A gives floating powers.
    Sparse input gives a dense result. Any n works (``10**20`` too): it takes log2(n) products.
    """
    A = as_exact_matrix(A)
    n = check_int(n, "n", low=0, tensor=True)
    size = A.size(0)
    if A.is_floating_point():
        return _power_by_squaring(A, n, torch.mm, torch.eye(size, dtype=A.dtype))
    if n == 0:
        return torch.eye(size, dtype=torch.long)
    if _fits_int64(A.double().abs(), n):
        return _power_by_squaring(A, n, torch.mm, torch.eye(size, dtype=torch.long))
    exact = exact_matrix_power(A, n)
    largest = max(abs(x) for row in exact for x in row)
    if largest > _INT64_MAX:
        raise ValueError(
            f"A^{n} has an entry of {len(str(largest))} digits, which does not fit in int64 (at "
            f"most {_INT64_MAX}); gnnkit.matrices.exact_matrix_power(A, {n}) gives the exact "
            "values as Python integers, a floating A (A.double()) an approximate power."
        )
    return torch.tensor(exact, dtype=torch.long)


def exact_matrix_power(A, n: int) -> list[list[int]]:
    """A^n of an integer matrix A [N, N] exactly, as N lists of N Python integers (any size).

    ``(A^n)[i][j]`` counts the walks of length n from j to i for a 0/1 adjacency matrix. Meant
    for small matrices: it multiplies Python integers (repeated squaring, log2(n) products).

    Raises:
        TypeError: A is floating (exact powers need whole numbers).
        ValueError: n is negative, or an entry would grow past ``MAX_EXACT_BITS`` bits (about
            20,000 digits) on the way.
    """
    A = as_exact_matrix(A)
    n = check_int(n, "n", low=0, tensor=True)
    if A.is_floating_point():
        raise TypeError(
            f"exact_matrix_power needs an integer matrix A, got dtype {A.dtype}; use "
            "matrix_power(A, n) for a floating power."
        )
    if _fits_int64(A.double().abs(), n):  # the fast int64 path is exact here
        return matrix_power(A, n).tolist()
    size = A.size(0)
    identity = np.eye(size, dtype=np.int64).astype(object)

    def checked_product(left, right):
        product = np.dot(left, right)
        bits = max(int(x).bit_length() for x in product.flat)
        if bits > MAX_EXACT_BITS:
            raise ValueError(
                f"computing A^{n} exactly needs integers of more than {MAX_EXACT_BITS} bits "
                f"(about {int(MAX_EXACT_BITS * 0.30103):,} digits); choose a smaller n."
            )
        return product

    power = _power_by_squaring(A.numpy().astype(object), n, checked_product, identity)
    return [[int(x) for x in row] for row in power]


def walks(A, i: int, j: int, n: int, *, limit: int = 10_000) -> list[list[int]]:
    """All walks ``[v0, v1, ..., vn]`` of length n with ``v0 = i``, ``vn = j`` and
    ``A[v_k, v_{k+1}] != 0`` for every step, sorted lexicographically.

    That is exactly what ``(A^n)[i, j] = sum A[i, v1] A[v1, v2] ... A[v_{n-1}, j]`` counts, so
    for a 0/1 matrix ``len(walks(A, i, j, n)) == matrix_power(A, n)[i, j]``. Under the
    convention ``A[a, b] != 0`` means an edge b -> a, so read backwards each walk follows the
    edges j -> v_{n-1} -> ... -> i (the route a message takes from j to i through n layers).
    For an undirected graph both directions are the same. Each node sequence is listed once,
    even when A has entries above 1.

    Node ids are 0-based rows of A. ``n = 0`` gives ``[[i]]`` when ``i == j``, else ``[]``.

    Raises:
        ValueError: i or j is not a node, n is negative, or there are more than ``limit``
            walks (raise ``limit`` to list them anyway).
    """
    A = as_exact_matrix(A)
    size = A.size(0)
    for name, value in (("i", i), ("j", j)):
        value = check_int(value, name, low=0, tensor=True)
        if value >= size:
            raise ValueError(
                f"{name} = {value} is not a node of A, which has {size} rows (nodes 0..{size - 1}); "
                "ids are 0-based, so subtract 1 from a figure's numbering."
            )
    n = check_int(n, "n", low=0, tensor=True)
    limit = check_int(limit, "limit", low=0, tensor=True)
    if n == 0:
        return [[i]] if i == j else []
    nonzero = A != 0
    successors = [torch.nonzero(nonzero[u]).flatten().tolist() for u in range(size)]
    reach = _Reach(nonzero.numpy(), j, n)
    if not reach(n)[i]:
        return []
    result: list[list[int]] = []
    path = [i]
    stack = [iter(successors[i])]  # depth-first, ascending successors: lexicographic order
    while stack:
        left = n - len(path) + 1  # steps still to take after the next node
        for v in stack[-1]:
            if reach(left - 1)[v]:
                break
        else:
            stack.pop()
            path.pop()
            continue
        path.append(v)
        if left - 1 > 0:
            stack.append(iter(successors[v]))
            continue
        if len(result) >= limit:
            raise ValueError(
                f"there are more than limit={limit} walks of length {n} from {i} to {j}; "
                "pass a larger limit (walks(A, i, j, n, limit=...)) to list them all, or "
                "count them with matrix_power(A, n)[i, j]."
            )
        result.append(list(path))
        path.pop()
    return result


def laplacian(A, normalization: str | None = None) -> Tensor:
    """The graph Laplacian [N, N] of A, with D = diag(row sums of A).

    - ``None``: ``L = D - A``. Every row sums to 0. Integer A gives an integer L.
    - ``"sym"``: ``L = D^-1/2 (D - A) D^-1/2 = I - D^-1/2 A D^-1/2``.
    - ``"rw"``: ``L = D^-1 (D - A) = I - D^-1 A`` (random-walk Laplacian).

    For the normalised ones ``D^-1/2`` and ``D^-1`` use 0 for a node of degree 0, so an isolated
    node has an all-zero row and column (also 0 on the diagonal, not 1), exactly as
    ``networkx.normalized_laplacian_matrix``; they are floating
    (``torch.get_default_dtype()`` for integer A). On undirected graphs all three agree with
    networkx; for a directed graph D holds in-degrees (rows are receivers).
    """
    if normalization not in LAPLACIAN_NORMALIZATIONS:
        raise ValueError(
            f"normalization must be one of None, 'sym' or 'rw', got {normalization!r}."
        )
    A = as_exact_matrix(A)
    if normalization is None:
        return combinatorial_laplacian(A)
    degrees = _degrees(A)
    combinatorial = torch.diag(degrees) - A
    if normalization == "sym":
        if (degrees < 0).any():
            node = int(torch.nonzero(degrees < 0)[0])
            raise ValueError(
                f"row {node} of A sums to {float(degrees[node]):g} < 0, so D^-1/2 is not real; "
                "the symmetric normalised Laplacian needs non-negative degrees."
            )
        scale = _safe_power(degrees, -0.5)
        return scale[:, None] * combinatorial * scale[None, :]
    return _safe_power(degrees, -1.0)[:, None] * combinatorial


# ---------------------------------------------------------------------- helpers
def _to_graph(graph_like, num_nodes, *, directed: bool, one_indexed: bool) -> Graph:
    """Any accepted graph form -> Graph (pairs and [2, E] tensors get the two flags)."""
    if num_nodes is not None:
        num_nodes = check_int(num_nodes, "num_nodes", low=0)
    if isinstance(graph_like, np.ndarray):
        graph_like = graph_like.tolist()  # float ids stay floats and are refused below
    if isinstance(graph_like, (list, tuple)):
        graph = Graph.from_edge_list(graph_like, one_indexed=one_indexed)
        graph = _with_num_nodes(graph.edge_index, num_nodes, "graph_like")
    elif isinstance(graph_like, Tensor) and (
        tensor_graph_form(graph_like, name="graph_like") == "edge_index"
    ):
        pairs = as_edge_index(graph_like, "graph_like").t()
        graph = Graph.from_edge_list(pairs, one_indexed=one_indexed)
        graph = _with_num_nodes(graph.edge_index, num_nodes, "graph_like")
    else:
        graph = as_graph(graph_like, name="graph_like")
        if num_nodes is not None and num_nodes != graph.num_nodes:
            raise ValueError(
                f"graph_like has {graph.num_nodes} nodes but num_nodes={num_nodes}; leave "
                "num_nodes out for a networkx graph, matrix or Graph (it has its own size)."
            )
        return graph
    return graph if directed else graph.to_undirected()


def _with_num_nodes(edge_index: Tensor, num_nodes: int | None, name: str) -> Graph:
    """A Graph of the (already shifted, non-negative) ids with ``num_nodes`` checked."""
    if num_nodes is None:
        num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
    check_node_ids(edge_index, num_nodes, name)
    return Graph(edge_index, num_nodes)


def _degrees(A: Tensor) -> Tensor:
    """Row sums of A as floating numbers (default dtype for integer A)."""
    if not A.is_floating_point():
        A = A.to(torch.get_default_dtype())
    return A.sum(dim=1)


def _safe_power(degrees: Tensor, exponent: float) -> Tensor:
    """``degrees ** exponent`` with 0 where the degree is 0."""
    result = torch.zeros_like(degrees)
    nonzero = degrees != 0
    result[nonzero] = degrees[nonzero] ** exponent
    return result


class _Reach:
    """``reach(k)[v]``: node v can end a walk at j in exactly k more steps (prunes dead ends).

    The sets for k = 0, 1, ..., n are computed one step at a time until one repeats; from then
    on they cycle, so any k up to n (n = 10^6 on a cycle, say) is looked up without computing
    all of them.
    """

    def __init__(self, nonzero: np.ndarray, j: int, n: int):
        state = np.zeros(nonzero.shape[0], dtype=bool)
        state[j] = True
        self.states: list[list[bool]] = []
        seen: dict[bytes, int] = {}
        while len(self.states) <= n and state.tobytes() not in seen:
            seen[state.tobytes()] = len(self.states)
            self.states.append(state.tolist())
            state = (nonzero & state).any(axis=1)
        self.cycle_start = seen.get(state.tobytes(), 0)

    def __call__(self, k: int) -> list[bool]:
        if k < len(self.states):
            return self.states[k]
        period = len(self.states) - self.cycle_start
        return self.states[self.cycle_start + (k - self.cycle_start) % period]


def as_exact_matrix(A) -> Tensor:
    """``as_matrix(A)``, refusing unsigned entries beyond int64 that it would wrap around
    (``2**64 - 1`` would become -1)."""
    if isinstance(A, Tensor) and A.dtype in (torch.uint16, torch.uint32, torch.uint64):
        A = A.to_dense().cpu().numpy() if A.layout != torch.strided else A.cpu().numpy()
    if sp.issparse(A):
        A = A.toarray()
    if isinstance(A, np.ndarray) and np.issubdtype(A.dtype, np.unsignedinteger) and A.size:
        if int(A.max()) > _INT64_MAX:
            r, c = (int(k) for k in np.unravel_index(int(A.argmax()), A.shape))
            raise ValueError(
                f"A[{r}, {c}] = {int(A[r, c])} does not fit in int64 (at most {_INT64_MAX}); "
                "gnnkit computes with int64, so pass smaller entries (or A.astype(float) for "
                "approximate values)."
            )
        A = A.astype(np.int64)
    return as_matrix(A, "A")


def _row_sums(A: Tensor) -> Tensor:
    """The row sums of A, exact for integer A (a sum beyond int64 raises ``ValueError``)."""
    if A.is_floating_point() or float(A.double().abs().sum(dim=1).max()) < 2.0**62:
        return A.sum(dim=1)
    sums = [sum(row) for row in A.tolist()]
    check_int64(enumerate(sums), "row {} of A sums to {}")
    return torch.tensor(sums, dtype=torch.long)


def combinatorial_laplacian(A: Tensor) -> Tensor:
    """L = D - A, exact for integer A (an entry beyond int64 raises ``ValueError``)."""
    degrees = _row_sums(A)
    bound = float(A.double().abs().max() + degrees.double().abs().max())
    if A.is_floating_point() or bound < 2.0**62:
        return torch.diag(degrees) - A
    rows = A.tolist()
    exact = [[(int(degrees[i]) if i == j else 0) - x for j, x in enumerate(row)]
             for i, row in enumerate(rows)]
    check_int64((((i, j), x) for i, row in enumerate(exact) for j, x in enumerate(row)),
                 "L[{0[0]}, {0[1]}] = {1} (L = D - A)")
    return torch.tensor(exact, dtype=torch.long)


def check_int64(values, what: str) -> None:
    """Raise ``ValueError`` for the first ``(where, value)`` whose value is beyond int64."""
    for where, value in values:
        if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
            raise ValueError(
                f"{what.format(where, value)}, which does not fit in int64 (at most "
                f"{_INT64_MAX}); pass a floating A (A.double()) for an approximate result."
            )


def _size_in_bytes(count: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}"
        count /= 1000
    return f"{count:,.0f} TB"


def _fits_int64(magnitude: Tensor, n: int) -> bool:
    """Whether every partial sum in ``_power_by_squaring`` of an integer A stays well inside
    int64: the same products on |A| in float64 bound them all (with room for rounding)."""
    limit = 2.0**62
    result, base = None, magnitude
    while n:
        if n & 1:
            result = base if result is None else result @ base
            if not float(result.max()) < limit:
                return False
        n >>= 1
        if n:
            base = base @ base
            if not float(base.max()) < limit:
                return False
    return True


def _power_by_squaring(base, n: int, mm, identity):
    result = identity
    while n:
        if n & 1:
            result = mm(result, base)
        n >>= 1
        if n:
            base = mm(base, base)
    return result
