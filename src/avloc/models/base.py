"""What the engine and the tests expect of every registered model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from avloc.models.outputs import AVEOutput

Batch = Mapping[str, torch.Tensor]


@dataclass
class AVEInputs:
    """The input sizes every AVE model's Config starts with; training fills each in from the data."""

    audio_dim: int = 128  # audio feature size (VGGish); filled from the data
    visual_dim: int = 512  # visual region feature size (VGG-19 pool5); filled from the data
    num_classes: int = 29  # 28 events + background (last); filled from the data
    att_regions: int = 49  # spatial regions per segment (7 x 7); filled from the data


@dataclass
class DenseInputs:
    """The input sizes every dense model's Config starts with; training fills each in from the data."""

    audio_dim: int = 128  # audio feature size (VGGish: 128); filled from the data
    visual_dim: int = 2048  # visual feature size (I3D RGB+flow: 2048); filled from the data
    num_classes: int = 100  # event classes (UnAV-100: 100); filled from the data


@dataclass
class AVVPInputs:
    """The input sizes every AVVP (LLP) model's Config starts with; training fills each in from the data."""

    audio_dim: int = 128  # VGGish; filled from the data
    visual_dim: int = 2048  # ResNet-152 per frame; filled from the data
    st_dim: int = 512  # R(2+1)D-18; filled from the data
    num_classes: int = 25  # LLP; filled from the data


class AVModel(nn.Module):
    """Base class of registered models.

    Subclasses set ``task`` ("ave", "dense" or "avvp"), take their typed ``Config`` in ``__init__`` and implement
    ``forward(batch)``, returning their task's output type (:mod:`avloc.models.outputs`), plus
    ``example_batch``, which the parametrised model tests use to run forward/backward on every registered
    model without anyone writing a new test.
    """

    task: str = ""

    def example_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """A random batch with the shapes and keys this model's ``forward`` reads (and its loss needs)."""
        raise NotImplementedError

    def segment_predictions(self, out: AVEOutput) -> torch.Tensor:
        """AVE models: (B, T) predicted class per segment, background = last class index."""
        raise NotImplementedError

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
