"""Run a student's layer: build it, find its parameters by name, set them, call forward.

Errors raised by the student's own code are caught and turned into one readable line (the
exception and the line of their file it came from); ``SystemExit`` (``sys.exit()`` or
``exit()`` in the layer) is one of them, ``KeyboardInterrupt`` is not. Errors in what was asked
of the checker (an unknown parameter name, a layer that is not an ``nn.Module``, a constructor
that cannot take ``(in, out)``) are raised as ``ValueError``/``TypeError``.

**Time limit.** Each call into the student's code (the constructor, ``forward``, ``backward``,
the import of their file) runs under :func:`run_limited`. In the main thread on Unix a
``SIGALRM`` timer interrupts it; an alarm set by the caller that would fire sooner is left in
charge, and one that would fire later is re-armed afterwards with the time it has left. Where
signals cannot be used (another thread, Windows) the call runs in a helper thread and the
checker stops waiting after the limit: the call that never returned then keeps running in the
background until the process ends, because Python cannot stop a thread. Either way, code that
catches every exception (a bare ``except:``) inside an endless loop can swallow the alarm.
"""

from __future__ import annotations

import copy
import inspect
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from .layer_cases import Case

__all__ = [
    "AGAINST_OPTION",
    "PARAMS_OPTION",
    "TIME_LIMIT",
    "Built",
    "Outcome",
    "ParameterError",
    "TimedOut",
    "build",
    "constructor_problem",
    "find_parameters",
    "forward",
    "layer_name",
    "least_precise",
    "run_limited",
    "set_parameters",
    "student_error",
]

_LIBRARY_DIRS = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(__file__)))
#: Seconds each call into the student's code may take (the graphs have at most 7 nodes).
TIME_LIMIT = 10.0
#: How a parameter mapping is written for the layer checked: (in Python, on the command line).
PARAMS_OPTION = ("params", "--param")
#: The same for the second layer of ``check_layer(..., against=Other)``.
AGAINST_OPTION = ("against_params", "--against-param")
#: The student's exceptions that are reported rather than passed on.
STUDENT_ERRORS = (Exception, SystemExit)


class ParameterError(ValueError):
    """A parameter of the formula that cannot be found or mapped. ``str()`` says the fix in
    Python (``params={...}``), ``.cli`` the same on the command line (``--param ROLE=PATH``)."""

    def __init__(self, message: str, cli: str):
        super().__init__(message)
        self.cli = cli


class TimedOut(Exception):
    """A call into the student's code did not return within its time limit."""

    def __init__(self, seconds: float):
        super().__init__(f"did not return within {seconds:g} s")
        self.seconds = seconds


class _Alarm(BaseException):
    """Raised by the SIGALRM handler; a BaseException so that ``except Exception`` in the
    student's code does not swallow it."""


@dataclass
class Built:
    """A layer built at one size, its parameters by role and the dtype it is run in."""

    module: nn.Module
    in_features: int
    out_features: int
    params: dict[str, Tensor]  # role ("W", "B", "a") -> the layer's own tensor
    dtype: torch.dtype = torch.float64


@dataclass
class Outcome:
    """What one forward call gave: the output [N, out] or the error, and its inputs after."""

    output: Tensor | None
    error: str | None  # "raised TypeError: ... (file.py, line 3, ...)" or "returned ..."
    x: Tensor  # the input as passed (requires grad), to read x.grad and see in-place changes
    edge_index: Tensor
    #: the least precise floating dtype forward made (x's dtype when it made none).
    precision: torch.dtype = torch.float64
    timed_out: bool = False


# ---------------------------------------------------------------------- time limit
def run_limited(function, seconds: float | None):
    """``function()``, or :class:`TimedOut` after ``seconds`` (see the module docstring)."""
    if seconds is None:
        return function()
    if _signals_usable():
        return _with_alarm(function, seconds)
    return _in_thread(function, seconds)


def _signals_usable() -> bool:
    return (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGALRM) is not None)  # None: set outside Python


def _raise_alarm(signum, frame):
    raise _Alarm


def _with_alarm(function, seconds: float):
    """Run under a SIGALRM timer, restoring the caller's handler and timer afterwards."""
    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if 0 < outer_delay <= seconds:
        return function()  # the caller's alarm fires first: it stays in charge
    handler = signal.signal(signal.SIGALRM, _raise_alarm)
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return function()
    except _Alarm:
        raise TimedOut(seconds) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, handler)
        if outer_delay > 0:
            left = max(outer_delay - (time.monotonic() - start), 1e-6)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def _in_thread(function, seconds: float):
    """Run in a daemon thread and wait at most ``seconds`` (the thread cannot be stopped)."""
    result: dict = {}

    def target():
        try:
            result["value"] = function()
        except BaseException as error:  # noqa: BLE001 - passed on to the caller below
            result["error"] = error

    thread = threading.Thread(target=target, name="gnnkit-check-layer-call", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimedOut(seconds)
    if "error" in result:
        raise result["error"]
    return result["value"]


class _Precision(TorchFunctionMode):
    """Notes the floating dtypes of the tensors that torch functions return while active."""

    def __init__(self):
        super().__init__()
        self.dtypes: set[torch.dtype] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for value in result if isinstance(result, (tuple, list)) else (result,):
            if isinstance(value, Tensor) and value.is_floating_point():
                self.dtypes.add(value.dtype)
        return result


def least_precise(dtypes) -> torch.dtype:
    """The floating dtype with the largest rounding error among ``dtypes``."""
    return max(dtypes, key=lambda dtype: torch.finfo(dtype).eps)


# ---------------------------------------------------------------------- building
def constructor_problem(layer: type) -> str | None:
    """Why ``layer(in_features, out_features)`` cannot be called, from its signature (None
    when it can, or when the signature cannot be read)."""
    try:
        signature = inspect.signature(layer)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(3, 2)
    except TypeError as error:
        name = layer.__name__
        return (f"{name} cannot be built as {name}(in_features, out_features): its constructor "
                f"is {name}{signature} ({error}). check_layer builds a class with two arguments; "
                "give the others defaults, or pass an instance built your way: in Python "
                f"check_layer({name}(...), kind), on the command line a module-level instance "
                "(layer = ... in the file, then FILE.py:layer). An instance is checked at its "
                "own size.")
    return None


def layer_name(layer, argument: str) -> tuple[str, bool]:
    """(the class name, whether ``layer`` is a class) of a layer that can be checked.

    Raises:
        TypeError: not an ``nn.Module`` class or instance, or a class whose constructor cannot
            be called as ``layer(in_features, out_features)``.
    """
    is_class = inspect.isclass(layer)
    if not (is_class and issubclass(layer, nn.Module)) and not isinstance(layer, nn.Module):
        raise TypeError(
            f"{argument} must be an nn.Module class or instance, got {type(layer).__name__}; "
            "pass the class itself (MyLayer, not MyLayer())."
            if not is_class else f"{argument} must be an nn.Module class, got {layer.__name__}."
        )
    if is_class and (problem := constructor_problem(layer)):
        raise TypeError(problem)
    return (layer.__name__ if is_class else type(layer).__name__), is_class


def build(layer, size: tuple[int, int] | None, time_limit: float | None = None) -> nn.Module:
    """``layer(in, out)`` for a class, a deep copy for an instance (never the student's own),
    in eval mode so that dropout, if any, does not make the output random.

    Raises:
        TimedOut: the constructor did not return within ``time_limit`` seconds.
    """
    if inspect.isclass(layer):
        module = run_limited(lambda: layer(*size), time_limit)
    else:
        module = copy.deepcopy(layer)
    return module.eval()


def find_parameters(module: nn.Module, roles: dict[str, str], name: str,
                    via: tuple[str, str] = PARAMS_OPTION) -> dict[str, Tensor]:
    """Each role's tensor, read at its dotted attribute path (``"lin.weight"``).

    ``via`` names the option that maps a parameter, in Python and on the command line
    (:data:`PARAMS_OPTION` or :data:`AGAINST_OPTION`), for the message.

    Raises:
        ParameterError: a path does not lead to a tensor; the message lists the parameters
            there are.
    """
    python, cli = via
    found = {}
    for role, path in roles.items():
        value = module
        for part in path.split("."):
            value = getattr(value, part, None)
        if not isinstance(value, Tensor):
            there = ", ".join(f"{n} {list(p.shape)}" for n, p in module.named_parameters())
            missing = f"{name} has no tensor {path!r} for {role} (its parameters: {there or 'none'})"
            raise ParameterError(
                f"{missing}; name it {role} or map it with {python}={{{role!r}: "
                "'attribute.path'}.",
                f"{missing}; name it {role} or map it with {cli} {role}=attribute.path.",
            )
        found[role] = value
    return found


def set_parameters(built: Built, values: dict[str, Tensor]) -> None:
    """Copy the case's values into the layer's own parameters (reshaped, in its dtype)."""
    with torch.no_grad():
        for role, tensor in built.params.items():
            tensor.copy_(values[role].reshape(tensor.shape).to(tensor.dtype))


# ---------------------------------------------------------------------- forward
def forward(built: Built, case: Case, edge_index: Tensor | None = None,
            time_limit: float | None = None) -> Outcome:
    """Call the layer on the case (the first item when it returns a tuple), noting the least
    precise floating dtype it computed in."""
    set_parameters(built, case.params)
    x = case.x.to(built.dtype).clone().requires_grad_(True)
    edge_index = (case.edge_index if edge_index is None else edge_index).clone()
    precision = _Precision()

    def call():
        with precision:
            return built.module(x, edge_index)

    try:
        output = run_limited(call, time_limit)
    except TimedOut as error:
        return Outcome(None, str(error), x, edge_index, timed_out=True)
    except STUDENT_ERRORS as error:  # the student's code: report it, do not crash
        return Outcome(None, f"raised {student_error(error)}", x, edge_index)
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    wrong = _not_features(output, x)
    if wrong:
        return Outcome(None, wrong, x, edge_index)
    used = least_precise(precision.dtypes | {output.dtype, built.dtype})
    return Outcome(output, None, x, edge_index, used)


def _not_features(output, x: Tensor) -> str | None:
    """Why ``output`` cannot be features [N, out] (None when it can)."""
    if not isinstance(output, Tensor):
        return f"returned {type(output).__name__}, not a tensor [N, out]"
    if output.device != x.device:
        return f"returned a tensor on the {output.device} device, not on x's ({x.device})"
    if not output.is_floating_point():
        return (f"returned a {output.dtype} tensor: the features [N, out] are floating point "
                "(in the dtype of x)")
    return None


def student_error(error: BaseException) -> str:
    """``"TypeError: message (file.py, line 12, in forward: code)"``: the exception and the
    last line of the student's code it passed through."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, SystemExit):
        message = (f"{message or None} - the layer ends the program (sys.exit or exit()); raise "
                   "an exception instead")
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith(_LIBRARY_DIRS)]
    where = ""
    if frames:
        frame = frames[-1]
        where = (f" ({os.path.basename(frame.filename)}, line {frame.lineno}, in {frame.name}: "
                 f"{(frame.line or '').strip()})")
    return f"{type(error).__name__}: {message}{where}"


#: (relative, absolute) tolerance of a comparison, by the least precise dtype the layer used.
TOLERANCE = {
    torch.float64: (1e-7, 1e-9),
    torch.float32: (1e-4, 1e-5),
    torch.float16: (1e-2, 1e-3),
    torch.bfloat16: (5e-2, 1e-2),
}


def dtype_name(dtype: torch.dtype) -> str:
    """``"float32"`` for ``torch.float32``."""
    return str(dtype).removeprefix("torch.")
