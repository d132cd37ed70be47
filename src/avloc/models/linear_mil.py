"""``linear_mil``: the floor of every W-DAVEL table -- one linear classifier per timestep, top-k MIL, BCE.

Why it exists: a W-DAVEL method is only worth its modules if it beats the simplest weakly-supervised
localizer on the same features and post-processing (per-step linear classifier on concat(audio, visual),
top-k MIL pooling, video-level BCE). No encoder, no temporal context, no fusion
layer: whatever CLASP gains over it comes from modelling, not from the proposal pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from avloc.models.base import AVModel, Batch, DenseInputs
from avloc.models.dense_blocks import check_dense_inputs, class_head, masked_topk_mean
from avloc.models.mil import dense_example_batch
from avloc.models.outputs import DenseOutput
from avloc.registry import MODELS


@MODELS.register("linear_mil")
class LinearMIL(AVModel):
    """CAS_t = W [a_t; v_t] + b; video logit = mean of the top ceil(T_valid / topk_ratio) CAS logits.

    Inputs: audio (B, T, Da), visual (B, T, Dv), mask (B, T) bool.
    Returns a DenseOutput: ``cas`` (B, T, C) probabilities (0 at padding), ``cas_logits``, ``video_logits`` (B, C).
    """

    task = "dense"

    @dataclass
    class Config(DenseInputs):
        topk_ratio: float = 8.0  # MIL pooling: mean of the top ceil(T_valid / topk_ratio) steps per class
        prior_prob: float = 0.01  # initial class probability (bias = logit of it)

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.topk_ratio < 1.0:
            raise ValueError(f"linear_mil: topk_ratio must be >= 1, got {cfg.topk_ratio}")
        self.head = class_head(cfg.audio_dim + cfg.visual_dim, cfg.num_classes, cfg.prior_prob)

    def forward(self, batch: Batch) -> DenseOutput:
        audio, visual, mask = batch["audio"], batch["visual"], batch["mask"]
        check_dense_inputs(audio, visual, mask)
        logits = self.head(torch.cat([audio, visual], dim=-1))  # (B, T, C)
        return DenseOutput(
            cas=torch.sigmoid(logits) * mask.unsqueeze(-1),  # (B, T, C)
            cas_logits=logits,  # (B, T, C)
            video_logits=masked_topk_mean(logits, mask, self.cfg.topk_ratio),  # (B, C)
        )

    def example_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        c = self.cfg
        return dense_example_batch(batch_size, generator, c.audio_dim, c.visual_dim, c.num_classes, steps=12)
