"""Dropout with a cheaper CPU mask.

``nn.Dropout`` on CPU draws its mask with ``bernoulli_``: one Mersenne-Twister draw and a double compare per
entry. Here one 64-bit draw (``random_`` over the full int64 range) gives four independent 16-bit uniform
integers, and an entry is kept when its integer is at or above ``round(p * 65536)`` of the 65536 levels:
the keep probability is ``1 - p`` rounded to a multiple of 1/65536 (|error| <= 7.7e-6; exact for p = 0.5,
0.25, ...), and kept entries are scaled by ``1 / (1 - p)`` as usual. Measured on [128, 10, 256] activations
(2 threads): ``bernoulli_`` 3.1 ms, ``uniform_`` + compare 1.6 ms, this 0.74 ms. Other devices use the native
kernel. The random stream differs from ``nn.Dropout``'s; the same seed gives the same masks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 16  # 16-bit uniform integers, four per 64-bit draw


def keep_mask(like: torch.Tensor, p: float) -> torch.Tensor:
    """Bool tensor shaped like ``like``: True with probability ``1 - p`` (to 1/65536), from the CPU generator."""
    n = like.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)  # full 64-bit range
    levels = words.view(torch.int16)[:n].view(like.shape)  # uniform on [-32768, 32767]
    return levels >= round(p * _LEVELS) - _LEVELS // 2


class Dropout(nn.Dropout):
    """Drop-in ``nn.Dropout`` (no parameters, same state dict) with a faster mask on CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu" or self.p == 1.0 or self.inplace:
            return F.dropout(x, self.p, True, self.inplace)
        with torch.no_grad():
            mask = keep_mask(x, self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * mask
