"""Losses of AVEL (Tian et al., ECCV 2018), fully and weakly supervised.

The official code (``YapengTian/AVE-ECCV18``) applies ``MultiLabelSoftMarginLoss`` to *softmax outputs*:
a sigmoid on top of a softmax, whose gradient vanishes as soon as the softmax saturates. By default we use
the loss the model's outputs call for (cross-entropy on per-segment logits; multi-label soft margin on
video logits); ``official_softmax_mlsm: true`` reproduces the official loss exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F

from avloc.losses.base import Loss, need
from avloc.models.outputs import AVEOutput
from avloc.registry import LOSSES


def soft_margin(scores: torch.Tensor, target: torch.Tensor, softmax_first: bool) -> torch.Tensor:
    """``nn.MultiLabelSoftMarginLoss`` (mean over every element) of ``scores`` (..., C) vs a {0,1} or soft
    ``target`` of the same shape; ``softmax_first`` feeds it softmax(scores) like the official code."""
    if scores.shape != target.shape:
        raise ValueError(f"soft_margin: scores {tuple(scores.shape)} vs target {tuple(target.shape)}")
    x = scores.softmax(dim=-1) if softmax_first else scores
    return -(target * F.logsigmoid(x) + (1.0 - target) * F.logsigmoid(-x)).mean()


@LOSSES.register("avel")
class AVELLoss(Loss):
    """Fully supervised AVEL: cross-entropy of ``class_logits`` (B, T, C) vs ``segment_labels`` (B, T),
    averaged over all segments (or the official soft margin on the softmax vs one-hot ``labels``)."""

    @dataclass
    class Config:
        official_softmax_mlsm: bool = False  # official: MultiLabelSoftMarginLoss(softmax(logits), labels)

    def forward(self, out: AVEOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = need(out, "class_logits", "avel loss")
        if self.cfg.official_softmax_mlsm:
            loss = soft_margin(logits, need(batch, "labels", "avel loss"), softmax_first=True)
        else:
            target = need(batch, "segment_labels", "avel loss")
            loss = F.cross_entropy(logits.flatten(0, 1), target.flatten())
        return {"loss": loss}


@LOSSES.register("avel_weak")
class AVELWeakLoss(Loss):
    """Weakly supervised AVEL: multi-label soft margin of the max-pooled ``video_logits`` (B, C) vs the
    video-level ``video_label`` (B, C) (bg column set only for the noisy background videos)."""

    @dataclass
    class Config:
        official_softmax_mlsm: bool = False  # official: MultiLabelSoftMarginLoss(softmax(video_logits), ...)

    def forward(self, out: AVEOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = need(out, "video_logits", "avel_weak loss")
        target = need(batch, "video_label", "avel_weak loss")
        return {"loss": soft_margin(logits, target, softmax_first=self.cfg.official_softmax_mlsm)}
