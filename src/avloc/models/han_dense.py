"""``han_dense``: HAN as a weakly-supervised dense localization (W-DAVEL) baseline on untrimmed videos.

Why: HAN with attentive MMIL pooling is the field's standard weakly-supervised audio-visual model
(:mod:`avloc.models.han`); on the UnAV-100 / ActivityNet layouts it is the baseline a dense method has
to beat. The same network on a different input: the per-step audio and visual features of the dense
datasets (the visual stream is already one vector per step, so there is no frame averaging and no
second visual stream) projected to D, one hybrid attention layer shared by both directions (padded steps
are never attended to), per-step per-modality class probabilities, attentive MMIL pooling over the valid
steps and the two modalities, trained with HAN's loss (:class:`~avloc.losses.avvp_losses.HANLoss`).

Its class activation sequence is the audio-visual evidence of each step: the geometric mean of the
audio and the visual probabilities, sqrt(P_audio * P_visual), since a dense event must be heard AND
seen (AVVP's audio-visual decision is audio AND visual); it then goes through the same proposal pipeline
as every dense model (:mod:`avloc.evaluation.proposals`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from avloc.models.avvp_blocks import HybridAttentionLayer, MMILHead, attentive_mmil
from avloc.models.base import AVModel, Batch, DenseInputs
from avloc.models.dense_blocks import check_dense_inputs
from avloc.models.mil import dense_example_batch
from avloc.models.outputs import DenseOutput
from avloc.registry import MODELS

EPS = 1e-6  # probabilities are clamped to [EPS, 1 - EPS] before their logits are taken


def prob_logit(p: Tensor) -> Tensor:
    """logit(p) of a probability clamped away from 0 and 1 (sigmoid(logit) gives p back)."""
    p = p.clamp(EPS, 1.0 - EPS)
    return torch.log(p) - torch.log1p(-p)


@MODELS.register("han_dense")
class HANDense(AVModel):
    """Inputs: audio (B, T, Da), visual (B, T, Dv), mask (B, T) bool. Returns a DenseOutput whose logits are
    those of HAN's probabilities: ``cas`` sqrt(P_a P_v) (0 at padding), ``video_logits`` of the MMIL video
    probability, ``audio_logits`` / ``visual_logits`` (B, T, C) and ``audio_video_logits`` /
    ``visual_video_logits`` (B, C) of each modality."""

    task = "dense"

    @dataclass
    class Config(DenseInputs):
        hidden: int = 512  # D (official HAN: 512)
        heads: int = 1  # attention heads (official: 1)
        ffn: int = 512  # feed-forward width (official: 512)
        layers: int = 1  # HAN layers (official: 1)
        dropout: float = 0.1  # attention, residual and feed-forward dropout (official: 0.1)
        prior_prob: float = 0.01  # initial per-step class probability (bias = its logit); official: bias 0

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        if not 0.0 < cfg.prior_prob < 1.0:
            raise ValueError(f"han_dense: prior_prob must be in (0, 1), got {cfg.prior_prob}")
        if cfg.layers < 1 or cfg.hidden % cfg.heads:
            raise ValueError(f"han_dense: layers >= 1 and hidden divisible by heads, got {cfg.layers}, "
                             f"{cfg.hidden}/{cfg.heads}")
        self.audio_proj = nn.Linear(cfg.audio_dim, cfg.hidden)
        self.visual_proj = nn.Linear(cfg.visual_dim, cfg.hidden)
        self.han = nn.ModuleList(HybridAttentionLayer(cfg.hidden, cfg.heads, cfg.ffn, cfg.dropout)
                                 for _ in range(cfg.layers))
        self.head = MMILHead(cfg.hidden, cfg.num_classes)
        # 100 sparse classes (1.6 per video): probabilities starting at 0.5 leave the negatives' gradient to
        # swamp the positives for many epochs (as for every dense head here, `class_head`).
        nn.init.constant_(self.head.prob.bias, -math.log((1.0 - cfg.prior_prob) / cfg.prior_prob))

    def forward(self, batch: Batch) -> DenseOutput:
        audio, visual, mask = batch["audio"], batch["visual"], batch["mask"]
        check_dense_inputs(audio, visual, mask)
        a, v = self.audio_proj(audio), self.visual_proj(visual)  # (B, T, D) each
        for layer in self.han:
            a, v = layer(a, v, padding=~mask), layer(v, a, padding=~mask)
        prob, time_logits, modality_logits = self.head(torch.stack([a, v], dim=2))  # (B, T, 2, C) each
        video, audio_prob, visual_prob = attentive_mmil(prob, time_logits, modality_logits, mask)  # (B, C)
        valid = mask.unsqueeze(-1)  # (B, T, 1)
        cas = torch.sqrt(prob[:, :, 0] * prob[:, :, 1]) * valid  # (B, T, C)
        return DenseOutput(
            cas=cas,
            cas_logits=prob_logit(cas),
            video_logits=prob_logit(video),
            audio_logits=prob_logit(prob[:, :, 0]),
            visual_logits=prob_logit(prob[:, :, 1]),
            audio_video_logits=prob_logit(audio_prob),
            visual_video_logits=prob_logit(visual_prob),
        )

    def example_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        c = self.cfg
        return dense_example_batch(batch_size, generator, c.audio_dim, c.visual_dim, c.num_classes, steps=12)
