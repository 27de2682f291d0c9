"""Read a matrix answer into Python numbers, and compare one entry with the right value.

Whole numbers (adjacency, powers, degrees, Laplacians) are compared exactly, with Python
integers of any size. A decimal answer agrees when it equals the right value rounded to the
decimals it was written with (at least ``MIN_DECIMALS``, at most ``MAX_DECIMALS``): ``-0.4082``
is right for ``-1/sqrt(6) = -0.408248...`` (4 decimals) and ``-0.41`` is too (2 decimals), but
``-0.40`` and ``-0.4083`` are not.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.sparse as sp
import torch

__all__ = [
    "MAX_DECIMALS",
    "MIN_DECIMALS",
    "MalformedAnswerError",
    "Rows",
    "agrees",
    "decimals_used",
    "decimals_written",
    "fmt",
    "is_whole",
    "read_matrix",
    "reference_slack",
]

MIN_DECIMALS = 2
MAX_DECIMALS = 6

Rows = list[list[int | float]]


class MalformedAnswerError(ValueError):
    """An answer that is not a matrix of numbers (a string, ragged rows, NaN, a scalar, a dict):
    bad input, not a wrong answer."""


def read_matrix(value, name: str, *, one_indexed: bool = False) -> Rows:
    """``value`` (nested lists, numpy array, torch tensor, scipy sparse matrix) as a list of
    rows of Python ``int``/``float`` (integers exact at any size; booleans of an array as 0/1).

    Raises:
        MalformedAnswerError: not a rectangular 2-D matrix of finite real numbers; the message
            names the entry as ``name[row, column]``, counted from 1 when ``one_indexed``.
    """
    base = 1 if one_indexed else 0
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.to_dense() if value.layout != torch.strided else value
        if value.is_complex():
            raise MalformedAnswerError(f"{name} must hold real numbers, got dtype {value.dtype}.")
        value = (value.long() if value.dtype == torch.bool else value).tolist()
    elif sp.issparse(value):
        value = value.toarray().tolist()
    elif isinstance(value, np.ndarray):
        if not (value.dtype == object or np.issubdtype(value.dtype, np.number)
                or value.dtype == np.bool_):
            raise MalformedAnswerError(f"{name} must hold numbers, got numpy dtype {value.dtype}.")
        value = (value.astype(np.int64) if value.dtype == np.bool_ else value).tolist()
    rows = _as_rows(value, name, base)
    for r, row in enumerate(rows):
        for c, entry in enumerate(row):
            row[c] = _as_number(entry, f"{name}[{r + base}, {c + base}]")
    return rows


def _as_rows(value, name: str, base: int) -> list[list]:
    """Check the nesting: a list of rows of equal length (numbers are checked later)."""
    example = "write one list per row, e.g. [[0, 1], [1, 0]]"
    if isinstance(value, dict):
        raise MalformedAnswerError(f"{name} is a JSON object (a dict), not a matrix: {example}.")
    if isinstance(value, (str, bytes)):
        raise MalformedAnswerError(f"{name} is the text {value!r}, not a matrix: {example}.")
    if isinstance(value, (numbers.Number, bool)):
        raise MalformedAnswerError(f"{name} is the single number {value!r}, not a matrix: "
                                   f"{example}.")
    if not isinstance(value, (list, tuple)):
        raise MalformedAnswerError(
            f"{name} must be a matrix (nested lists, numpy array, torch tensor or scipy sparse "
            f"matrix), got {type(value).__name__}."
        )
    rows = []
    for r, row in enumerate(value):
        if isinstance(row, np.ndarray):
            row = row.tolist()
        if not isinstance(row, (list, tuple)):
            raise MalformedAnswerError(
                f"row {r + base} of {name} is {row!r}, not a list of numbers: {example}."
            )
        rows.append(list(row))
    if rows and len({len(row) for row in rows}) > 1:
        first = len(rows[0])
        r = next(k for k, row in enumerate(rows) if len(row) != first)
        raise MalformedAnswerError(
            f"{name} is ragged: row {r + base} has {_entries(len(rows[r]))} but row {base} has "
            f"{_entries(first)}; every row needs one entry per column."
        )
    return rows


def _as_number(entry, where: str) -> int | float:
    if isinstance(entry, bool) or not isinstance(entry, numbers.Real):
        raise MalformedAnswerError(
            f"{where} = {entry!r} is not a number; every entry must be an int or a float."
        )
    if isinstance(entry, numbers.Integral):
        return int(entry)
    entry = float(entry)
    if not math.isfinite(entry):
        raise MalformedAnswerError(f"{where} = {entry!r} is not a finite number; replace it with "
                                   "a number.")
    return entry


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


def is_whole(rows: Rows) -> bool:
    """Every entry is a whole number (then the matrix is compared exactly)."""
    return all(isinstance(x, int) or x.is_integer() for row in rows for x in row)


def reference_slack(expected) -> float:
    """Relative rounding of the right values themselves: a float32 reference is only good to
    about 1e-7, a float64 one (or Python floats) to about 1e-16."""
    dtype = getattr(expected, "dtype", None)
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return 4 * torch.finfo(dtype).eps
    if isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.floating):
        return 4 * float(np.finfo(dtype).eps)
    return 4 * float(np.finfo(np.float64).eps)


def decimals_written(x: float) -> int:
    """How many decimals ``x`` was written with: 0 for ``3``, 4 for ``-0.4082``, 5 for ``1e-05``."""
    if isinstance(x, int) or x.is_integer():
        return 0
    text = repr(float(x))
    mantissa, _, exponent = text.partition("e")
    digits = len(mantissa.partition(".")[2])
    return max(0, digits - int(exponent or 0))


def decimals_used(x: float) -> int:
    """The precision an answer ``x`` is compared at: its decimals, between the two limits."""
    return min(max(decimals_written(x), MIN_DECIMALS), MAX_DECIMALS)


def agrees(got: float, want: float, *, exact: bool, slack: float) -> bool:
    """Whether an answer entry is right: ``got == want`` exactly when ``exact``; otherwise
    ``|got - want|`` at most half a unit of the last decimal used (plus the reference's own
    rounding ``slack * |want|``)."""
    if exact:
        return got == want
    half_unit = 0.5 * 10.0 ** -decimals_used(got)
    return abs(got - want) <= half_unit * (1 + 1e-9) + slack * abs(want)


def fmt(x: float) -> str:
    """A number as a person writes it: integers exactly, decimals with up to 6 digits."""
    if isinstance(x, int):
        return str(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    if decimals_written(x) <= MAX_DECIMALS:
        return repr(x)
    return f"{x:.6g}"
