"""VSCG: Video-level Semantic Consistency Guidance (Jiang, Yin, Dang; IEEE TMM 2023), fully and weakly.

VSCG is PSP's backbone followed by ESCM (CERE + ISCE, see :class:`avloc.models.blocks.ESCM`): the
video-level event summary of each modality initialises a bidirectional GRU per modality, so every segment
is re-encoded knowing what the whole video is about.

* Fully supervised: a relevance head (Linear(256, 1) per segment) says "event or background" and a
  category head (Linear(256, 28) on the max over time of the fused features) names the one event of the
  video; a segment is background when ``sigmoid(relevance) <= relevance_threshold`` (official: 0.7).
* Weakly supervised: PSP-weak's per-segment head and weighting branch; ``video_logits`` = time-average
  of the scores, whose softmax the loss scores, and whose double softmax is the paper's "smooth" branch
  (as in the official code).

The official code registers many layers its forward never uses (``L1``/``L2``, ``v_classify``,
``a_classify``, ``audio_gated``, ``video_gated``, ``linear_v``, ``ESCM.L1``); they are not built here,
so ``vscg`` has ~2.51 M parameters rather than the official 2.63 M.

``ablation`` selects the variants of the paper's Table III (ESCM components):
``full`` | ``no_escm`` (PSP backbone + VSCG heads) | ``no_isce`` (zero-initialised GRUs, no CERE) |
``isce_avg`` / ``isce_max`` (GRU initial state from average / max pooling over time instead of CERE) |
``cere_unshared`` (separate CERE convs for audio and visual).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from avloc.models.ave_base import AVEModel, Tensors
from avloc.models.base import AVEInputs
from avloc.models.blocks import ESCM, ESCMConfig, WeakESCMConfig, cosine_pairs, xavier_
from avloc.models.outputs import AVEOutput
from avloc.models.psp import (
    PSPBackboneConfig,
    PSPFullyBackboneConfig,
    PSPFullyEncoder,
    PSPWeakEncoder,
    SegmentHead,
    TemporalWeighting,
    weak_outputs,
)
from avloc.registry import MODELS

ABLATIONS = ("full", "no_escm", "no_isce", "isce_avg", "isce_max", "cere_unshared")


def build_escm(ablation: str, dim: int, cfg: ESCMConfig, mode: str) -> ESCM | None:
    """The ESCM of a Table III variant (None for ``no_escm``)."""
    if ablation not in ABLATIONS:
        raise ValueError(f"vscg: ablation must be one of {ABLATIONS}, got {ablation!r}")
    if ablation == "no_escm":
        return None
    init = {"no_isce": "zero", "isce_avg": "avg", "isce_max": "max"}.get(ablation, "cere")
    return ESCM.from_config(dim, cfg, mode, init, cere_shared=ablation != "cere_unshared")


@MODELS.register("vscg")
class VSCG(AVEModel):
    """VSCG, fully supervised. Outputs: ``event_logits`` (B, T) (the relevance head), ``class_logits``
    (B, C-1) video event logits (the category head), ``av_similarity`` (B, T) cosine of the final
    audio/visual features, ``attention`` (B, T, R) AGVA weights."""


    @dataclass
    class Config(AVEInputs):
        backbone: PSPFullyBackboneConfig = field(  # PSP dropout 0.2 in VSCG (PSP: 0.1); threshold 0.099
            default_factory=lambda: PSPFullyBackboneConfig(dropout=0.2))  # is hard-coded in the official
        escm: ESCMConfig = field(default_factory=ESCMConfig)  # ESCM (dropout after the ISCE fc)
        relevance_threshold: float = 0.7  # segment is an event when sigmoid(relevance) > this
        ablation: str = "full"  # Table III: full | no_escm | no_isce | isce_avg | isce_max | cere_unshared

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = PSPFullyEncoder(cfg.audio_dim, cfg.visual_dim, cfg.att_regions, cfg.backbone)
        dim = 2 * cfg.backbone.lstm_hidden
        self.escm = build_escm(cfg.ablation, dim, cfg.escm, "fully")
        self.relevance = nn.Linear(dim, 1)
        self.category = nn.Linear(dim, cfg.num_classes - 1)
        xavier_(self.relevance, self.category)

    def encode(self, audio: Tensor, visual: Tensor) -> tuple[Tensor, Tensor, Tensors]:
        a, v, alpha = self.encoder(audio, visual)  # (B, T, 2*lstm_hidden) x 2, (B, T, R)
        return a, v, {"attention": alpha}

    def outputs(self, audio: Tensor, visual: Tensor, extras: Tensors) -> AVEOutput:
        fused = 0.5 * (audio + visual)  # (B, T, dim)
        return AVEOutput(
            event_logits=self.relevance(fused).squeeze(-1),  # (B, T)
            class_logits=self.category(fused.amax(1)),  # (B, C-1) video event logits
            av_similarity=cosine_pairs(audio, visual),  # (B, T)
            **extras,
        )

    def event_gate(self, out: AVEOutput) -> Tensor:
        return torch.sigmoid(out.event_logits) > self.cfg.relevance_threshold


@MODELS.register("vscg_weak")
class VSCGWeak(AVEModel):
    """VSCG, weakly supervised. Outputs: ``class_logits`` (B, T, C) (test-time argmax), ``video_logits``
    (B, C) (their time-average; the loss takes the softmax and the double softmax), ``attention``
    (B, T, R)."""


    @dataclass
    class Config(AVEInputs):
        backbone: PSPBackboneConfig = field(default_factory=PSPBackboneConfig)  # threshold 0.099: official
        psp_fc_dropout: float = 0.2  # dropout after the PSP fc layers
        escm: WeakESCMConfig = field(default_factory=WeakESCMConfig)  # ESCM (dropout on the GRU outputs)
        head_hidden: int = 64  # hidden width of the segment classifier
        ablation: str = "full"  # Table III variants, as for `vscg` (weak ESCM: cross-initialised GRUs)

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = PSPWeakEncoder(cfg.audio_dim, cfg.visual_dim, cfg.att_regions, cfg.backbone,
                                      use_fc=True, fc_dropout=cfg.psp_fc_dropout)
        dim = 2 * cfg.backbone.lstm_hidden
        self.escm = build_escm(cfg.ablation, dim, cfg.escm, "weak")
        self.head = SegmentHead(dim, cfg.head_hidden, cfg.num_classes)
        self.weighting = TemporalWeighting(cfg.num_classes)

    def encode(self, audio: Tensor, visual: Tensor) -> tuple[Tensor, Tensor, Tensors]:
        a, v, alpha = self.encoder(audio, visual)  # (B, T, 2*lstm_hidden) x 2, (B, T, R)
        return a, v, {"attention": alpha}

    def outputs(self, audio: Tensor, visual: Tensor, extras: Tensors) -> AVEOutput:
        return weak_outputs(self.weighting(self.head(0.5 * (audio + visual))), extras)  # scores (B, T, C)
