"""Building blocks shared by the dense (UnAV-100 style) weakly-supervised models: MIL and CLASP.

Every block takes a boolean ``mask`` (B, T) marking valid (unpadded) timesteps and guarantees that padded
steps neither leak into valid ones (convolutions see zeros there) nor get pooled.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def check_dense_inputs(audio: torch.Tensor, visual: torch.Tensor, mask: torch.Tensor) -> None:
    """Clear errors for the shapes every dense model reads: audio (B,T,Da), visual (B,T,Dv), mask (B,T)."""
    if audio.dim() != 3 or visual.dim() != 3:
        raise ValueError(
            f"dense batch: 'audio' and 'visual' must be (B, T, D), got {tuple(audio.shape)} and {tuple(visual.shape)}"
        )
    if audio.shape[:2] != visual.shape[:2] or tuple(mask.shape) != tuple(audio.shape[:2]):
        raise ValueError(
            "dense batch: 'audio', 'visual' and 'mask' must share (B, T), got "
            f"{tuple(audio.shape)}, {tuple(visual.shape)}, {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise ValueError(f"dense batch: 'mask' must be bool, got {mask.dtype}")
    if not bool(mask.any(dim=1).all()):
        raise ValueError("dense batch: every video needs at least one valid timestep in 'mask'")


def topk_counts(mask: torch.Tensor, ratio: float) -> torch.Tensor:
    """k = ceil(valid_length / ratio) per video (at least 1): (B,) long. mask: (B, T) bool."""
    lengths = mask.sum(dim=1).to(torch.float32)
    return torch.ceil(lengths / ratio).long().clamp(min=1)


def masked_topk_mean(scores: torch.Tensor, mask: torch.Tensor, ratio: float) -> torch.Tensor:
    """Top-k MIL pooling: per video and class, the mean of the k largest scores over *valid* timesteps.

    Why: a weakly-labelled event covers only part of the video, so averaging everything dilutes it and a
    plain max is noisy; the top ``ceil(T_valid / ratio)`` steps are the standard WSTAL compromise.
    scores: (B, T, C); mask: (B, T) bool -> (B, C). k varies per video (vectorised with a rank mask).
    """
    k = topk_counts(mask, ratio)  # (B,)
    kmax = int(k.max())
    filled = scores.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    top = filled.topk(kmax, dim=1).values  # (B, kmax, C)
    keep = torch.arange(kmax, device=scores.device).unsqueeze(0) < k.unsqueeze(1)  # (B, kmax)
    top = top.masked_fill(~keep.unsqueeze(-1), 0.0)
    return top.sum(dim=1) / k.unsqueeze(1).to(scores.dtype)


class MaskedConv1d(nn.Module):
    """1-D temporal convolution over (B, T, D) features that treats padded steps as zeros (odd kernel)."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"temporal kernel must be a positive odd number, got {kernel}")
        self.conv = nn.Conv1d(in_dim, out_dim, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(x.dtype)
        y = self.conv((x * m).transpose(1, 2)).transpose(1, 2)
        return y * m


class TemporalEncoder(nn.Module):
    """Per-modality encoder: linear projection to ``hidden`` then ``layers`` residual masked conv blocks.

    x: (B, T, in_dim) -> (B, T, hidden); padded steps come out as zeros.
    """

    def __init__(self, in_dim: int, hidden: int, kernel: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, hidden)
        self.convs = nn.ModuleList(MaskedConv1d(hidden, hidden, kernel) for _ in range(layers))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(x.dtype)
        h = self.drop(F.relu(self.proj(x))) * m
        for conv in self.convs:
            h = h + self.drop(F.relu(conv(h, mask)))
        return h


class Fusion(nn.Module):
    """Joins two (B, ..., d) feature tensors: ``concat`` (linear 2d -> d + ReLU), ``sum`` or ``mean``."""

    KINDS = ("concat", "sum", "mean")

    def __init__(self, kind: str, dim: int) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"fusion must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind
        self.linear = nn.Linear(2 * dim, dim) if kind == "concat" else None

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.linear is not None:
            return F.relu(self.linear(torch.cat([a, v], dim=-1)))
        return a + v if self.kind == "sum" else 0.5 * (a + v)


def class_head(hidden: int, num_classes: int, prior_prob: float) -> nn.Linear:
    """Per-timestep class head whose bias starts at logit(prior_prob).

    Why: with many sparse classes (UnAV-100: 1.6 of 100 per video) logits starting at 0 make the
    negatives' gradient swamp the positives for many epochs; ActionFormer/UnAV start their head at 0.01.
    """
    if not 0.0 < prior_prob < 1.0:
        raise ValueError(f"prior_prob must be in (0, 1), got {prior_prob}")
    head = nn.Linear(hidden, num_classes)
    nn.init.constant_(head.bias, -math.log((1.0 - prior_prob) / prior_prob))
    return head


def js_agreement(logits_a: torch.Tensor, logits_v: torch.Tensor) -> torch.Tensor:
    """1 - JS(softmax(a), softmax(v)) / ln 2, per timestep: (B, T, C) x2 -> (B, T) in [0, 1].

    Why: JS is symmetric and bounded, so the agreement between the audio and visual class predictions is a
    comparable number at every timestep (1 = identical class distributions, 0 = disjoint).
    """
    la = F.log_softmax(logits_a, dim=-1)
    lv = F.log_softmax(logits_v, dim=-1)
    lm = torch.logsumexp(torch.stack([la, lv]), dim=0) - math.log(2.0)
    js = 0.5 * (la.exp() * (la - lm)).sum(-1) + 0.5 * (lv.exp() * (lv - lm)).sum(-1)
    return (1.0 - js / math.log(2.0)).clamp(0.0, 1.0)
