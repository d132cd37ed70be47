"""What the engine expects of a registered loss."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn


class Loss(nn.Module):
    """``forward(out, batch)`` returns a dict whose ``"loss"`` is the scalar to minimise; other keys are
    its parts (detached is fine), logged per epoch."""

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(
        self, out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError
