"""The weakly-supervised AVVP loss of HAN: video-level BCE plus "individual guided learning" of the audio and
visual video probabilities with label-smoothed, modality-aware copies of the weak labels.

The weak label y (B, C) says an event occurs, not in which modality. The official training
(``main_avvp.py``) supervises the pooled video probability with y and each modality's pooled probability
with a smoothed copy, P_m = s_m * y + (1 - s_m) / 2; the official values are audio s = 1.0 (y itself) and
visual s = 0.9 (a labelled event's visual target is 0.95, an absent one's 0.05): the modality-agnostic label
is trusted less for what is seen. Probabilities are clamped to [1e-7, 1 - 1e-7] before the BCE, as there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch.nn import functional as F

from avloc.losses.base import Loss, need
from avloc.models.outputs import AVVPOutput, DenseOutput
from avloc.registry import LOSSES


def smoothed(labels: torch.Tensor, keep: float) -> torch.Tensor:
    """``keep * y + (1 - keep) * 0.5``: the official label smoothing of a modality's video targets."""
    return keep * labels + (1.0 - keep) * 0.5


# A dense model (``han_dense``) returns the logits of the same three probabilities in its DenseOutput.
DENSE_FIELDS = {"video_prob": "video_logits", "audio_prob": "audio_video_logits", "visual_prob": "visual_video_logits"}


def _prob(out: AVVPOutput | DenseOutput, key: str) -> torch.Tensor:
    if isinstance(out, DenseOutput):
        return torch.sigmoid(need(out, DENSE_FIELDS[key], "han loss").float())
    return need(out, key, "han loss").float()


@LOSSES.register("han")
class HANLoss(Loss):
    """BCE(video_prob, y) + BCE(audio_prob, smooth(y, audio_keep)) + BCE(visual_prob, smooth(y, visual_keep)).

    Reads an AVVPOutput's probabilities, or the sigmoid of a dense HAN's ``video_logits``,
    ``audio_video_logits`` and ``visual_video_logits``."""

    @dataclass
    class Config:
        audio_keep: float = 1.0  # smoothing of the audio targets (official a = 1.0: none)
        visual_keep: float = 0.9  # smoothing of the visual targets (official v = 0.9)
        clamp: float = 1e-7  # probabilities are clamped to [clamp, 1 - clamp] (official 1e-7)

    def forward(self, out: AVVPOutput | DenseOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        y = need(batch, "video_labels", "han loss").float()  # (B, C)
        parts = {}
        for name, key, target in (("video", "video_prob", y), ("audio", "audio_prob", smoothed(y, c.audio_keep)),
                                  ("visual", "visual_prob", smoothed(y, c.visual_keep))):
            prob = _prob(out, key)  # (B, C)
            if prob.shape != y.shape:
                raise ValueError(f"han loss: '{key}' {tuple(prob.shape)} does not match 'video_labels' "
                                 f"{tuple(y.shape)}")
            parts[name] = F.binary_cross_entropy(prob.clamp(c.clamp, 1.0 - c.clamp), target)
        loss = parts["video"] + parts["audio"] + parts["visual"]
        return {"loss": loss, **{k: v.detach() for k, v in parts.items()}}
