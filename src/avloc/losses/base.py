"""What the engine expects of a registered loss."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from avloc.models.outputs import AVEOutput, DenseOutput, present_fields


class Loss(nn.Module):
    """``forward(out, batch)`` takes the model's output type (:mod:`avloc.models.outputs`) and the batch,
    and returns a dict whose ``"loss"`` is the scalar to minimise; other keys are its parts (detached is
    fine), logged per epoch."""

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg
        # The global training step (0-based), set by the training loop before each step from its own
        # state (so a resumed run sees the same values); losses with a warm-up read it.
        self.step = 0

    def forward(self, out: Any, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError


def need(source: AVEOutput | DenseOutput | Mapping[str, torch.Tensor], key: str, who: str) -> torch.Tensor:
    """The field ``key`` of a model output or the key of a batch, or a ValueError naming ``who`` (the loss)
    and what is there: a model/loss pair that cannot work together fails when the run is built."""
    if isinstance(source, Mapping):
        value, what, present = source.get(key), "batch key", sorted(source)
    else:
        value, what, present = getattr(source, key, None), "model output", present_fields(source)
    if value is None:
        raise ValueError(f"{who}: needs {what} '{key}' (has: {present})")
    return value
