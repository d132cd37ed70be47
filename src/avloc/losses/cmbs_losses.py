"""Losses of CMBS (Xia & Zhao, CVPR 2022), supervised and weakly supervised.

Supervised (``supv_main.py``): ``BCEWithLogits(relevance, event_mask) + gate term + CE(event_scores,
video_class) + CE(av_score, video_class)``. The official gate term is ``BCEWithLogits(g_a * g_v, mask)``:
it treats the *probability* ``g_a * g_v`` in (0, 1) as a logit, so the probability it implies is
confined to (0.5, 0.73): the term can never fit its 0/1 target, never vanishes, and its gradient does
not shrink as the gates become right. We use the binary cross-entropy of the probability
itself, computed in log space for stability: ``log p = logsigmoid(l_a) + logsigmoid(l_v)``.
``official_gate_loss: true`` reproduces the official term.

Weak (``weakly_main.py``): ``MultiLabelSoftMarginLoss`` on the video level vs ``video_label``; the official
feeds it softmax outputs (``official_softmax_mlsm: true``), by default it gets the logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F

from avloc.losses.avel_losses import AVELWeakLoss, need
from avloc.losses.base import Loss
from avloc.registry import LOSSES

LOG_EPS = 1e-12  # keeps log(1 - p) finite when p rounds to 1 (about -27.6 at the limit)


def product_gate_bce(
    audio_logits: torch.Tensor, video_logits: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Mean BCE of ``p = sigmoid(audio_logits) * sigmoid(video_logits)`` vs ``target`` (all (B, T)).

    ``log p`` is exact in log space; ``log(1 - p) = log(-expm1(log p))`` with log p capped just below 0."""
    log_p = F.logsigmoid(audio_logits) + F.logsigmoid(video_logits)
    log_not_p = torch.log(-torch.expm1(log_p.clamp(max=-LOG_EPS)))
    return -(target * log_p + (1.0 - target) * log_not_p).mean()


def video_class_ce(scores: torch.Tensor, video_class: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of event-class ``scores`` (B, E) vs ``video_class`` (B,), ignoring videos whose class
    is background (== E: no event to classify); 0 when the batch has none."""
    valid = video_class < scores.shape[-1]
    per = F.cross_entropy(scores, video_class.clamp(max=scores.shape[-1] - 1), reduction="none")
    return (per * valid).sum() / valid.sum().clamp(min=1)


@LOSSES.register("cmbs")
class CMBSLoss(Loss):
    """Supervised CMBS loss; reads ``event_mask`` (B, T) and ``video_class`` (B,) from the batch."""

    @dataclass
    class Config:
        relevance_weight: float = 1.0  # BCE of the per-segment event relevance
        gate_weight: float = 1.0  # BCE of the audio x visual gate vs the event mask
        event_weight: float = 1.0  # CE of the video event scores
        cas_weight: float = 1.0  # CE of the CAS video score (av_score)
        official_gate_loss: bool = False  # official: BCEWithLogits on the gate *probability*

    def forward(
        self, out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        c, who = self.cfg, "cmbs loss"
        mask = need(batch, "event_mask", who)
        video_class = need(batch, "video_class", who)
        relevance = F.binary_cross_entropy_with_logits(need(out, "relevance", who), mask)
        if c.official_gate_loss:
            gate = F.binary_cross_entropy_with_logits(need(out, "av_gate", who), mask)
        else:
            gate_logits = need(out, "audio_gate_logits", who), need(out, "video_gate_logits", who)
            gate = product_gate_bce(*gate_logits, mask)
        event = video_class_ce(need(out, "event_scores", who), video_class)
        cas = video_class_ce(need(out, "av_score", who), video_class)
        loss = c.relevance_weight * relevance + c.gate_weight * gate
        loss = loss + c.event_weight * event + c.cas_weight * cas
        return {
            "loss": loss,
            "relevance": relevance.detach(),
            "gate": gate.detach(),
            "event": event.detach(),
            "cas": cas.detach(),
        }


@LOSSES.register("cmbs_weak")
class CMBSWeakLoss(AVELWeakLoss):
    """Weak CMBS loss: the multi-label soft margin of ``video_logits`` (B, C) vs ``video_label`` (B, C),
    the same objective as weak AVEL (only the pooling that produces ``video_logits`` differs)."""

    @dataclass
    class Config(AVELWeakLoss.Config):
        pass
