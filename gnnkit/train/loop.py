"""The epoch loop that node, graph and link training share: train one epoch, validate, refuse a
non-finite loss, keep the best epoch (:class:`BestValidation`), stop early, restore the best
weights."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn
from tqdm import tqdm

from .. import distributed
from .selection import BestValidation


@dataclass
class Fitted:
    """What :func:`fit` did.

    Attributes:
        history: per epoch ``(train loss, val loss, val score)``.
        epochs_run: epochs trained before stopping (early or at the last one).
        seconds: wall time of the loop.
    """

    history: list[tuple[float, float, float]]
    epochs_run: int
    seconds: float


def fit(model: nn.Module, selection: BestValidation, epochs: int,
        train_epoch: Callable[[int], float], validate: Callable[[], tuple[float, float]], *,
        seed: int, lr: float, label: str, progress: bool, score: str = "val_acc") -> Fitted:
    """Run epochs 1..``epochs``: ``train_loss = train_epoch(epoch)``, then ``(val_loss,
    val_score) = validate()``; stop at a non-finite loss (``ValueError``, see
    :func:`check_finite_losses`) or when ``selection`` says so; at the end ``model`` holds the
    weights of the selected epoch. ``label`` and ``score`` name the progress bar and its
    score (shown on the main process when ``progress``)."""
    history: list[tuple[float, float, float]] = []
    start = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=label, unit="epoch", leave=False,
               disable=not (progress and distributed.is_main()))
    epoch = 0
    try:
        for epoch in bar:
            train_loss = train_epoch(epoch)
            val_loss, val_score = validate()
            history.append((train_loss, val_loss, val_score))
            check_finite_losses(train_loss, val_loss, epoch, seed, lr)
            stop = selection.update(epoch, model, val_loss, val_score)
            bar.set_postfix(loss=f"{train_loss:.3f}", **{score: f"{val_score:.3f}"},
                            refresh=False)
            if stop:
                break
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    model.load_state_dict(selection.state)
    return Fitted(history, epoch, seconds)


def check_finite_losses(train_loss: float, val_loss: float, epoch: int, seed: int,
                        lr: float) -> None:
    """Raise ``ValueError`` when an epoch's training or validation loss is NaN or infinite."""
    for name, loss in (("training", train_loss), ("validation", val_loss)):
        if not math.isfinite(loss):
            raise ValueError(
                f"training diverged: the {name} loss is {loss} at epoch {epoch} (seed {seed}), "
                f"so no accuracy would mean anything; lower lr (now {lr:g}) or check the "
                "features and labels."
            )
