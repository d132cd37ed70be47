"""PSP: Positive Sample Propagation (Zhou, Zheng, Guo, Wang; CVPR 2021), fully and weakly supervised.

Reads like the paper's method section: audio-guided visual attention picks the sounding regions, Bi-LSTMs
model time, PSP lets each segment gather the similar segments of the other modality, a small head
classifies every segment. Only layers on the forward path are built (the official ``psp_net`` also
registers ``linear_v``, ``v_classify``/``a_classify`` and ``L3``/``L4``, which its forward never uses; the
``SelfAttention`` class in ``fully_model.py`` is defined but never built), so the fully model has ~1.55 M
parameters rather than the official 1.67 M.

``escm: {}`` (an :class:`~avloc.models.blocks.ESCMConfig`) appends VSCG's ESCM module after the encoder
(VSCG paper, Table IV: ESCM as a plug-in); ``escm: null`` (the default) leaves it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avloc.models.ave_base import AVEModel, Tensors
from avloc.models.blocks import (
    ESCM,
    AudioGuidedVisualAttention,
    BiLSTMPair,
    ESCMConfig,
    PositiveSamplePropagation,
    WeakESCMConfig,
    cosine_pairs,
    xavier_,
)
from avloc.registry import MODELS


class PSPFullyEncoder(nn.Module):
    """Fully-supervised PSP encoder: ``fa`` -> AGVA -> ``fv`` -> Bi-LSTMs -> PSP.

    ``fa``/``fv`` are two bias-free Linear layers without activation (in -> proj_dim -> embed_dim).
    ``c`` is any config with the fields audio_dim, visual_dim, proj_dim, embed_dim, att_hidden,
    att_regions, lstm_hidden, psp_hidden, threshold and dropout (branch and fc dropout).
    audio (B, T, Da), visual (B, T, H, W, Dv) -> audio, visual (B, T, 2*lstm_hidden), attention (B, T, R).
    """

    def __init__(self, c: Any) -> None:
        super().__init__()
        self.fa = nn.Sequential(nn.Linear(c.audio_dim, c.proj_dim, bias=False),
                                nn.Linear(c.proj_dim, c.embed_dim, bias=False))
        self.attention = AudioGuidedVisualAttention(c.embed_dim, c.visual_dim, c.att_hidden, c.att_regions)
        self.fv = nn.Sequential(nn.Linear(c.visual_dim, c.proj_dim, bias=False),
                                nn.Linear(c.proj_dim, c.embed_dim, bias=False))
        self.lstm = BiLSTMPair(c.embed_dim, c.embed_dim, c.lstm_hidden)
        self.psp = PositiveSamplePropagation(2 * c.lstm_hidden, c.psp_hidden, c.threshold, c.dropout,
                                             renormalize=True, use_fc=True, fc_dropout=c.dropout)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[Tensor, Tensor, Tensor]:
        audio = self.fa(audio)
        attended, alpha = self.attention(audio, visual)
        a, v = self.lstm(audio, self.fv(attended))
        a, v = self.psp(a, v)
        return a, v, alpha


class PSPWeakEncoder(nn.Module):
    """Weakly-supervised PSP encoder: AGVA on raw audio -> ``linear_v`` (Dv -> embed_dim, bias) -> Bi-LSTMs
    -> PSP without renormalisation; ``use_fc`` adds the fc stage VSCG-weak uses (PSP-weak has none).
    ``c`` is any config with audio_dim, visual_dim, embed_dim, att_hidden, att_regions, lstm_hidden,
    psp_hidden, threshold and dropout (branch dropout).

    audio (B, T, Da), visual (B, T, H, W, Dv) -> audio, visual (B, T, 2*lstm_hidden), attention (B, T, R).
    """

    def __init__(self, c: Any, use_fc: bool, fc_dropout: float) -> None:
        super().__init__()
        self.attention = AudioGuidedVisualAttention(c.audio_dim, c.visual_dim, c.att_hidden, c.att_regions)
        self.linear_v = nn.Linear(c.visual_dim, c.embed_dim)
        self.lstm = BiLSTMPair(c.audio_dim, c.embed_dim, c.lstm_hidden)
        self.psp = PositiveSamplePropagation(2 * c.lstm_hidden, c.psp_hidden, c.threshold, c.dropout,
                                             renormalize=False, use_fc=use_fc, fc_dropout=fc_dropout)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[Tensor, Tensor, Tensor]:
        attended, alpha = self.attention(audio, visual)
        a, v = self.lstm(audio, self.linear_v(attended))
        a, v = self.psp(a, v)
        return a, v, alpha


class SegmentHead(nn.Module):
    """Per-segment classifier ``Linear(dim, hidden, no bias) -> ReLU -> Linear(hidden, classes, no bias)``."""

    def __init__(self, dim: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.L1 = nn.Linear(dim, hidden, bias=False)
        self.L2 = nn.Linear(hidden, classes, bias=False)
        xavier_(self.L1, self.L2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, dim) -> logits (B, T, classes)."""
        return self.L2(F.relu(self.L1(x)))


class TemporalWeighting(nn.Module):
    """PSP-weak weighting branch: ``score * sigmoid(ReLU(W3 score))`` with W3 = Linear(C, 1, no bias).

    The weight is one scalar in [0.5, 1) per segment, so it changes the pooled video score used in training
    but never the per-segment argmax used at test time.
    """

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.W3 = nn.Linear(classes, 1, bias=False)

    def forward(self, score: torch.Tensor) -> torch.Tensor:
        """score: (B, T, C) -> weighted score (B, T, C)."""
        return score * torch.sigmoid(F.relu(self.W3(score)))


def weak_outputs(score: torch.Tensor, extras: Tensors) -> Tensors:
    """Video-level probabilities of the weak models: softmax of the time-average of the weighted scores."""
    return {"segment_logits": score, "video_probs": torch.softmax(score.mean(1), dim=-1), **extras}


@MODELS.register("psp")
class PSP(AVEModel):
    """PSP, fully supervised. Outputs: ``logits`` (B, T, C) per segment, ``av_similarity`` (B, T) cosine of
    the final audio and visual features (for the AVPS loss), ``attention`` (B, T, R) AGVA weights.
    Prediction: argmax over the C = 29 classes (background = C-1)."""


    @dataclass
    class Config:
        audio_dim: int = 128  # audio feature size (VGGish); filled from the data
        visual_dim: int = 512  # visual region feature size (VGG-19 pool5); filled from the data
        num_classes: int = 29  # 28 events + background (last); filled from the data
        proj_dim: int = 256  # hidden width of the fa / fv projections
        embed_dim: int = 128  # output width of fa / fv (= Bi-LSTM input)
        att_hidden: int = 512  # AGVA hidden width
        att_regions: int = 49  # spatial regions per segment (7 x 7)
        lstm_hidden: int = 128  # Bi-LSTM hidden size per direction (features are 2x this)
        psp_hidden: int = 256  # PSP branch width
        threshold: float = 0.099  # PSP pruning threshold on the L1-normalised similarities
        dropout: float = 0.1  # PSP branch and fc dropout
        head_hidden: int = 64  # hidden width of the segment classifier
        escm: ESCMConfig | None = None  # VSCG's ESCM after the encoder (VSCG paper Table IV); None: none

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = PSPFullyEncoder(cfg)
        dim = 2 * cfg.lstm_hidden
        self.escm = ESCM.from_config(dim, cfg.escm, "fully")
        self.head = SegmentHead(dim, cfg.head_hidden, cfg.num_classes)

    def encode(self, audio: Tensor, visual: Tensor) -> tuple[Tensor, Tensor, Tensors]:
        a, v, alpha = self.encoder(audio, visual)  # (B, T, 2*lstm_hidden) x 2, (B, T, R)
        return a, v, {"attention": alpha}

    def outputs(self, audio: Tensor, visual: Tensor, extras: Tensors) -> Tensors:
        logits = self.head(0.5 * (audio + visual))  # (B, T, C)
        return {"logits": logits, "av_similarity": cosine_pairs(audio, visual), **extras}

    def class_scores(self, out: Mapping[str, Tensor]) -> Tensor:
        return out["logits"]


@MODELS.register("psp_weak")
class PSPWeak(AVEModel):
    """PSP, weakly supervised (video-level labels only).

    Outputs: ``segment_logits`` (B, T, C) weighted per-segment scores (test-time argmax), ``video_probs``
    (B, C) = softmax(time-average of the weighted scores) for the BCE against ``prob_label``,
    ``attention`` (B, T, R)."""


    @dataclass
    class Config:
        audio_dim: int = 128  # audio feature size (VGGish); filled from the data
        visual_dim: int = 512  # visual region feature size (VGG-19 pool5); filled from the data
        num_classes: int = 29  # 28 events + background (last); filled from the data
        embed_dim: int = 128  # linear_v output width (= visual Bi-LSTM input)
        att_hidden: int = 512  # AGVA hidden width
        att_regions: int = 49  # spatial regions per segment (7 x 7)
        lstm_hidden: int = 128  # Bi-LSTM hidden size per direction
        psp_hidden: int = 256  # PSP branch width
        threshold: float = 0.095  # PSP pruning threshold (weak README command)
        dropout: float = 0.1  # PSP branch dropout
        head_hidden: int = 64  # hidden width of the segment classifier
        escm: WeakESCMConfig | None = None  # VSCG's weak ESCM after the encoder (Table IV); None: none

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = PSPWeakEncoder(cfg, use_fc=False, fc_dropout=0.0)
        dim = 2 * cfg.lstm_hidden
        self.escm = ESCM.from_config(dim, cfg.escm, "weak")
        self.head = SegmentHead(dim, cfg.head_hidden, cfg.num_classes)
        self.weighting = TemporalWeighting(cfg.num_classes)

    def encode(self, audio: Tensor, visual: Tensor) -> tuple[Tensor, Tensor, Tensors]:
        a, v, alpha = self.encoder(audio, visual)  # (B, T, 2*lstm_hidden) x 2, (B, T, R)
        return a, v, {"attention": alpha}

    def outputs(self, audio: Tensor, visual: Tensor, extras: Tensors) -> Tensors:
        return weak_outputs(self.weighting(self.head(0.5 * (audio + visual))), extras)  # scores (B, T, C)

    def class_scores(self, out: Mapping[str, Tensor]) -> Tensor:
        return out["segment_logits"]
