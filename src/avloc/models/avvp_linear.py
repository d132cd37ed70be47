"""``avvp_linear``: the floor of the AVVP table -- one linear layer per modality and segment, attentive MMIL.

Why it exists: HAN's hybrid attention is only worth its parameters if it beats the simplest
weakly-supervised parser on the same features, loss and pooling. Here every segment is classified from its
own features alone (no temporal context, no cross-modal attention, no hidden layer): audio from its VGGish
vector, visual from the concatenation of its mean ResNet-152 frame and its R(2+1)D-18 snippet. The
attention logits of the MMIL pooling are linear in the same inputs, so the pooling is HAN's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from avloc.models.avvp_blocks import attentive_mmil
from avloc.models.base import AVModel, AVVPInputs, Batch
from avloc.models.han import check_llp_inputs, llp_example_batch, segment_visual
from avloc.models.outputs import AVVPOutput
from avloc.registry import MODELS


@MODELS.register("avvp_linear")
class AVVPLinear(AVModel):
    """Per segment: [prob logits | time attention | modality attention] = W_m x_m + b_m for m in (audio, visual).

    Inputs as :class:`~avloc.models.han.HAN`; returns an :class:`AVVPOutput`.
    """

    task = "avvp"

    @dataclass
    class Config(AVVPInputs):
        """Input sizes only: one linear layer per modality and output has nothing else to set."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.audio = nn.Linear(cfg.audio_dim, 3 * cfg.num_classes)
        self.visual = nn.Linear(cfg.visual_dim + cfg.st_dim, 3 * cfg.num_classes)

    def forward(self, batch: Batch) -> AVVPOutput:
        audio, visual, st = check_llp_inputs(batch, self.cfg.audio_dim, self.cfg.visual_dim, self.cfg.st_dim,
                                             "avvp_linear")
        v = torch.cat([segment_visual(visual, audio.shape[1]), st], dim=-1)  # (B, T, Dv + Ds)
        out = torch.stack([self.audio(audio), self.visual(v)], dim=2)  # (B, T, 2, 3C)
        logits, time_logits, modality_logits = out.chunk(3, dim=-1)  # (B, T, 2, C) each
        prob = torch.sigmoid(logits)
        video, audio_prob, visual_prob = attentive_mmil(prob, time_logits, modality_logits)
        return AVVPOutput(segment_prob=prob, video_prob=video, audio_prob=audio_prob, visual_prob=visual_prob)

    def example_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        c = self.cfg
        return llp_example_batch(batch_size, generator, c.audio_dim, c.visual_dim, c.st_dim, c.num_classes)
