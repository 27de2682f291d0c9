"""Best-validation weight selection and early stopping, one epoch at a time."""

from __future__ import annotations

import copy

from torch import nn


class BestValidation:
    """Keeps the weights of the epoch with the highest validation accuracy (ties: the lower
    validation loss) and says when to stop: once neither the validation accuracy nor the
    validation loss has improved on its best for ``patience`` epochs (the GAT paper's rule;
    0 never stops early).

    Call :meth:`update` after every epoch; read ``best_epoch``, ``val_accuracy``, ``val_loss``
    and ``state`` (a copy of the selected ``state_dict``).
    """

    def __init__(self, patience: int):
        self.patience = patience
        self.val_accuracy, self.val_loss = -1.0, float("inf")  # of the selected epoch
        self.best_epoch, self.state = 0, None
        self._best_accuracy_seen, self._best_loss_seen = -1.0, float("inf")
        self._since_improved = 0

    def update(self, epoch: int, model: nn.Module, val_loss: float, val_accuracy: float) -> bool:
        """Record epoch ``epoch`` (1-based) of ``model``; return True when training should stop."""
        better = val_accuracy > self.val_accuracy or (
            val_accuracy == self.val_accuracy and val_loss < self.val_loss
        )
        if better:
            self.val_accuracy, self.val_loss, self.best_epoch = val_accuracy, val_loss, epoch
            self.state = copy.deepcopy(model.state_dict())
        if val_accuracy > self._best_accuracy_seen or val_loss < self._best_loss_seen:
            self._since_improved = 0
        else:
            self._since_improved += 1
        self._best_accuracy_seen = max(self._best_accuracy_seen, val_accuracy)
        self._best_loss_seen = min(self._best_loss_seen, val_loss)
        return 0 < self.patience <= self._since_improved
