"""Video-level (weak) losses for the dense W-DAVEL models. They read only ``video_labels`` from the batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch.nn import functional as F

from avloc.losses.base import Loss, need
from avloc.models.dense_blocks import js_agreement
from avloc.models.outputs import DenseOutput
from avloc.registry import LOSSES


def _labels(batch: Mapping[str, torch.Tensor], logits: torch.Tensor) -> torch.Tensor:
    labels = batch["video_labels"]
    if labels.shape != logits.shape:
        raise ValueError(
            f"dense loss: 'video_labels' {tuple(labels.shape)} does not match video logits {tuple(logits.shape)}"
        )
    return labels.to(logits.dtype)


@LOSSES.register("mil_bce")
class MILBCELoss(Loss):
    """Multi-label BCE between top-k pooled ``video_logits`` (B, C) and the multi-hot ``video_labels`` (B, C)."""

    @dataclass
    class Config:
        weight: float = 1.0  # scale of the BCE term

    def forward(self, out: DenseOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = need(out, "video_logits", "mil_bce loss").float()
        bce = F.binary_cross_entropy_with_logits(logits, _labels(batch, logits))
        return {"loss": self.cfg.weight * bce, "bce": bce.detach()}


@LOSSES.register("clasp")
class CLASPLoss(Loss):
    """Video-level BCE on CLASP's fused, audio and visual branches, the anchors' pseudo-labels and an optional
    anchor-consistency term.

    The pseudo-label term is a per-step BCE of the event CAS on the video's labelled classes: 1 at the
    anchors (after ATP spreads them), 0 at the background steps CSAI marks, each side averaged on its own
    (events and background are far from balanced). Its targets carry no gradient (the model picks them).
    The anchor term is the mean Jensen-Shannon divergence (normalised to [0, 1]) between the audio and
    visual class distributions at the valid anchors: anchors are meant to be moments where both
    modalities show the same event, so their predictions are pulled together there.
    """

    @dataclass
    class Config:
        fused_weight: float = 1.0  # BCE on the fused branch (the one used at inference)
        audio_weight: float = 1.0  # BCE on the audio branch (its CAS feeds MEAE)
        visual_weight: float = 1.0  # BCE on the visual branch
        anchor_weight: float = 0.1  # A/V consistency at the feature anchors (needs ATP feature propagation; else ignored)
        pseudo_weight: float = 1.0  # per-step BCE of the CAS on labelled classes: anchors -> 1, background -> 0 (balanced)

    def forward(self, out: DenseOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        parts: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=need(out, "video_logits", "clasp loss").device)
        for name, key, w in (
            ("fused", "video_logits", cfg.fused_weight),
            ("audio", "audio_video_logits", cfg.audio_weight),
            ("visual", "visual_video_logits", cfg.visual_weight),
        ):
            if w == 0.0:
                continue
            logits = need(out, key, "clasp loss").float()
            bce = F.binary_cross_entropy_with_logits(logits, _labels(batch, logits))
            total = total + w * bce
            parts[name] = bce.detach()
        if cfg.anchor_weight != 0.0 and out.anchor_index is not None:
            index, valid = out.anchor_index, out.anchor_valid
            c = out.audio_logits.shape[-1]
            la = out.audio_logits.float().gather(1, index.unsqueeze(-1).expand(-1, -1, c))
            lv = out.visual_logits.float().gather(1, index.unsqueeze(-1).expand(-1, -1, c))
            disagreement = 1.0 - js_agreement(la, lv)  # (B, K)
            w_valid = valid.to(disagreement.dtype)
            anchor = (disagreement * w_valid).sum() / w_valid.sum().clamp(min=1.0)
            total = total + cfg.anchor_weight * anchor
            parts["anchor"] = anchor.detach()
        if cfg.pseudo_weight != 0.0 and out.anchor_positive is not None:
            labelled = _labels(batch, need(out, "video_logits", "clasp loss")).bool().unsqueeze(1)  # (B, 1, C)
            pos, neg = out.anchor_positive & labelled, out.anchor_negative & labelled  # (B, T, C)
            bce = F.binary_cross_entropy_with_logits(out.cas_logits.float(), pos.float(), reduction="none")
            pseudo = 0.5 * ((bce * pos).sum() / pos.sum().clamp(min=1) + (bce * neg).sum() / neg.sum().clamp(min=1))
            total = total + cfg.pseudo_weight * pseudo
            parts["pseudo"] = pseudo.detach()
        return {"loss": total, **parts}
