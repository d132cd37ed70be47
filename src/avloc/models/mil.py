"""MIL baseline for weakly-supervised dense audio-visual event localization (W-DAVEL).

The standard WSTAL recipe (W-TALC / CO2-Net lineage) applied to fused audio-visual features: encode each
modality over time, fuse, classify every timestep (the class activation sequence, CAS) and pool the
top-k timesteps per class into a video-level prediction trained with BCE against the video's labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from avloc.models.base import AVModel, Batch, DenseInputs
from avloc.models.dense_blocks import (
    Fusion,
    MaskedConv1d,
    TemporalEncoder,
    check_dense_inputs,
    class_head,
    masked_topk_mean,
)
from avloc.models.outputs import DenseOutput
from avloc.registry import MODELS


def dense_example_batch(
    batch_size: int, generator: torch.Generator, audio_dim: int, visual_dim: int, num_classes: int, steps: int
) -> dict[str, torch.Tensor]:
    """Random dense batch (the keys of the ``unav`` dataset): padded videos of different lengths."""
    audio = torch.randn(batch_size, steps, audio_dim, generator=generator)
    visual = torch.randn(batch_size, steps, visual_dim, generator=generator)
    lengths = torch.randint(max(1, steps // 2), steps + 1, (batch_size,), generator=generator)
    lengths[0] = steps
    mask = torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)
    labels = (torch.rand(batch_size, num_classes, generator=generator) < 0.3).float()
    labels[torch.arange(batch_size), torch.randint(0, num_classes, (batch_size,), generator=generator)] = 1.0
    return {
        "audio": audio * mask.unsqueeze(-1),
        "visual": visual * mask.unsqueeze(-1),
        "mask": mask,
        "video_labels": labels,
        "index": torch.arange(batch_size),
    }


@MODELS.register("mil")
class MILBaseline(AVModel):
    """Per-timestep classifier on fused A+V features with top-k MIL pooling.

    ``linear_skip`` adds a linear map of concat(audio, visual) to the logits (as CLASP's heads do), so the
    model contains the ``linear_mil`` floor and its encoders only learn what a linear read-out misses.

    Inputs: audio (B, T, Da), visual (B, T, Dv), mask (B, T) bool.
    Outputs: ``cas`` (B, T, C) per-timestep class *probabilities* (sigmoid; 0 at padded steps),
    ``cas_logits`` (B, T, C), ``video_logits`` (B, C) (top-k mean of the CAS logits over valid steps).
    """

    task = "dense"

    @dataclass
    class Config(DenseInputs):
        hidden: int = 256  # width of every per-timestep feature
        fusion: str = "concat"  # how audio and visual features are joined: concat | sum | mean
        encoder_layers: int = 1  # residual masked temporal conv blocks per modality
        fused_layers: int = 1  # masked temporal conv blocks after fusion
        kernel: int = 3  # temporal kernel size (odd)
        dropout: float = 0.3  # dropout on every hidden feature
        topk_ratio: float = 8.0  # MIL pooling: mean of the top ceil(T_valid / topk_ratio) steps per class
        prior_prob: float = 0.01  # initial class probability of the head (bias = logit of it)
        linear_skip: bool = False  # the head also reads concat(audio, visual) linearly (see the class docstring)

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.topk_ratio < 1.0:
            raise ValueError(f"mil: topk_ratio must be >= 1, got {cfg.topk_ratio}")
        self.enc_a = TemporalEncoder(cfg.audio_dim, cfg.hidden, cfg.kernel, cfg.encoder_layers, cfg.dropout)
        self.enc_v = TemporalEncoder(cfg.visual_dim, cfg.hidden, cfg.kernel, cfg.encoder_layers, cfg.dropout)
        self.fuse = Fusion(cfg.fusion, cfg.hidden)
        self.fused_convs = nn.ModuleList(
            MaskedConv1d(cfg.hidden, cfg.hidden, cfg.kernel) for _ in range(cfg.fused_layers)
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = class_head(cfg.hidden, cfg.num_classes, cfg.prior_prob)
        self.skip = nn.Linear(cfg.audio_dim + cfg.visual_dim, cfg.num_classes, bias=False) if cfg.linear_skip else None

    def forward(self, batch: Batch) -> DenseOutput:
        audio, visual, mask = batch["audio"], batch["visual"], batch["mask"]
        check_dense_inputs(audio, visual, mask)
        h = self.fuse(self.enc_a(audio, mask), self.enc_v(visual, mask))
        for conv in self.fused_convs:
            h = h + self.drop(torch.relu(conv(h, mask)))
        logits = self.head(self.drop(h))  # (B, T, C)
        if self.skip is not None:
            logits = logits + self.skip(torch.cat([audio, visual], dim=-1))  # + linear_mil's read-out
        return DenseOutput(
            cas_logits=logits,
            cas=torch.sigmoid(logits) * mask.unsqueeze(-1),
            video_logits=masked_topk_mean(logits, mask, self.cfg.topk_ratio),
        )

    def example_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        c = self.cfg
        return dense_example_batch(batch_size, generator, c.audio_dim, c.visual_dim, c.num_classes, steps=12)
