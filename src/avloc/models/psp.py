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

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avloc.models.ave_base import AVEModel, Tensors
from avloc.models.base import AVEInputs
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
from avloc.models.outputs import AVEOutput
from avloc.registry import MODELS


@dataclass
class PSPBackboneConfig:
    """The PSP backbone's fields, shared by PSP and VSCG; a model Config holds one as ``backbone``."""

    embed_dim: int = 128  # width of the visual features entering the Bi-LSTM (fully: also of fa)
    att_hidden: int = 512  # AGVA hidden width
    lstm_hidden: int = 128  # Bi-LSTM hidden size per direction (features are 2x this)
    psp_hidden: int = 256  # PSP branch width
    threshold: float = 0.099  # PSP pruning threshold on the L1-normalised similarities
    dropout: float = 0.1  # PSP branch dropout (fully: also the fc dropout)


@dataclass
class PSPFullyBackboneConfig(PSPBackboneConfig):
    """The fully supervised backbone adds the ``fa`` / ``fv`` projections."""

    proj_dim: int = 256  # hidden width of the fa / fv projections


class PSPFullyEncoder(nn.Module):
    """Fully-supervised PSP encoder: ``fa`` -> AGVA -> ``fv`` -> Bi-LSTMs -> PSP.

    ``fa``/``fv`` are two bias-free Linear layers without activation (in -> proj_dim -> embed_dim).
    audio (B, T, Da), visual (B, T, H, W, Dv) -> audio, visual (B, T, 2*lstm_hidden), attention (B, T, R).
    """

    def __init__(self, audio_dim: int, visual_dim: int, regions: int, c: PSPFullyBackboneConfig) -> None:
        super().__init__()
        self.fa = nn.Sequential(nn.Linear(audio_dim, c.proj_dim, bias=False),
                                nn.Linear(c.proj_dim, c.embed_dim, bias=False))
        self.attention = AudioGuidedVisualAttention(c.embed_dim, visual_dim, c.att_hidden, regions)
        self.fv = nn.Sequential(nn.Linear(visual_dim, c.proj_dim, bias=False),
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

    audio (B, T, Da), visual (B, T, H, W, Dv) -> audio, visual (B, T, 2*lstm_hidden), attention (B, T, R).
    """

    def __init__(self, audio_dim: int, visual_dim: int, regions: int, c: PSPBackboneConfig, use_fc: bool,
                 fc_dropout: float) -> None:
        super().__init__()
        self.attention = AudioGuidedVisualAttention(audio_dim, visual_dim, c.att_hidden, regions)
        self.linear_v = nn.Linear(visual_dim, c.embed_dim)
        self.lstm = BiLSTMPair(audio_dim, c.embed_dim, c.lstm_hidden)
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


def weak_outputs(score: torch.Tensor, extras: Tensors) -> AVEOutput:
    """The weak models' outputs: per-segment scores and their time-average as the video logits (the loss
    takes the softmax)."""
    return AVEOutput(class_logits=score, video_logits=score.mean(1), attention=extras["attention"])


@MODELS.register("psp")
class PSP(AVEModel):
    """PSP, fully supervised. Outputs: ``class_logits`` (B, T, C) per segment, ``av_similarity`` (B, T)
    cosine of the final audio and visual features (for the AVPS loss), ``attention`` (B, T, R) AGVA weights.
    Prediction: argmax over the C = 29 classes (background = C-1)."""


    @dataclass
    class Config(AVEInputs):
        backbone: PSPFullyBackboneConfig = field(default_factory=PSPFullyBackboneConfig)
        head_hidden: int = 64  # hidden width of the segment classifier
        escm: ESCMConfig | None = None  # VSCG's ESCM after the encoder (VSCG paper Table IV); None: none

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = PSPFullyEncoder(cfg.audio_dim, cfg.visual_dim, cfg.att_regions, cfg.backbone)
        dim = 2 * cfg.backbone.lstm_hidden
        self.escm = ESCM.from_config(dim, cfg.escm, "fully")
        self.head = SegmentHead(dim, cfg.head_hidden, cfg.num_classes)

    def encode(self, audio: Tensor, visual: Tensor) -> tuple[Tensor, Tensor, Tensors]:
        a, v, alpha = self.encoder(audio, visual)  # (B, T, 2*lstm_hidden) x 2, (B, T, R)
        return a, v, {"attention": alpha}

    def outputs(self, audio: Tensor, visual: Tensor, extras: Tensors) -> AVEOutput:
        logits = self.head(0.5 * (audio + visual))  # (B, T, C)
        return AVEOutput(class_logits=logits, av_similarity=cosine_pairs(audio, visual), **extras)


@MODELS.register("psp_weak")
class PSPWeak(AVEModel):
    """PSP, weakly supervised (video-level labels only).

    Outputs: ``class_logits`` (B, T, C) weighted per-segment scores (test-time argmax), ``video_logits``
    (B, C) = their time-average (the loss scores its softmax against ``prob_label``), ``attention``
    (B, T, R)."""


    @dataclass
    class Config(AVEInputs):
        backbone: PSPBackboneConfig = field(  # PSP pruning threshold 0.095 (weak README command)
            default_factory=lambda: PSPBackboneConfig(threshold=0.095))
        head_hidden: int = 64  # hidden width of the segment classifier
        escm: WeakESCMConfig | None = None  # VSCG's weak ESCM after the encoder (Table IV); None: none

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = PSPWeakEncoder(cfg.audio_dim, cfg.visual_dim, cfg.att_regions, cfg.backbone,
                                      use_fc=False, fc_dropout=0.0)
        dim = 2 * cfg.backbone.lstm_hidden
        self.escm = ESCM.from_config(dim, cfg.escm, "weak")
        self.head = SegmentHead(dim, cfg.head_hidden, cfg.num_classes)
        self.weighting = TemporalWeighting(cfg.num_classes)

    def encode(self, audio: Tensor, visual: Tensor) -> tuple[Tensor, Tensor, Tensors]:
        a, v, alpha = self.encoder(audio, visual)  # (B, T, 2*lstm_hidden) x 2, (B, T, R)
        return a, v, {"attention": alpha}

    def outputs(self, audio: Tensor, visual: Tensor, extras: Tensors) -> AVEOutput:
        return weak_outputs(self.weighting(self.head(0.5 * (audio + visual))), extras)  # scores (B, T, C)
