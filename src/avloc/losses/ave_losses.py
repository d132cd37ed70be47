"""Losses of the AVE methods PSP and VSCG, fully and weakly supervised.

Fully supervised losses read the segment-level keys (``segment_labels``, ``event_mask``, ``video_class``);
weakly supervised ones read only the video-level ``prob_label``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F

from avloc.losses.base import Loss
from avloc.registry import LOSSES

L1_EPS = 1e-8  # guard of the AVPS normalisation (official `sum + 1e-8`)
Tensors = Mapping[str, torch.Tensor]


def _need(mapping: Mapping[str, torch.Tensor], key: str, who: str, what: str) -> torch.Tensor:
    if key not in mapping:
        raise KeyError(f"loss '{who}' needs {what} key '{key}' (got: {sorted(mapping)})")
    return mapping[key]


def avps_targets(event_mask: torch.Tensor) -> torch.Tensor:
    """PSP's soft pair labels, built fresh from each batch: (B, T) event mask -> (B, T) targets.

    ``1/k`` on the k event segments, 0 on background. A video with no event segment gets ``1/T``
    everywhere, as the official code does (it then treats the background column as "the" category).
    The official loader fills these targets into a buffer it never clears, so background positions keep
    the 1/k of earlier batches (about a third of training samples get a wrong target); here nothing is
    carried between batches.
    """
    k = event_mask.sum(-1, keepdim=True)
    uniform = torch.full_like(event_mask, 1.0 / event_mask.shape[-1])
    return torch.where(k > 0, event_mask / k.clamp(min=1.0), uniform)


def avps_loss(similarity: torch.Tensor, event_mask: torch.Tensor) -> torch.Tensor:
    """PSP's audio-visual pair similarity loss: MSE between ``relu(cos_t) / sum_t relu(cos_t)`` and the
    soft labels of :func:`avps_targets`. similarity, event_mask: (B, T)."""
    s = F.relu(similarity)
    s = s / (s.sum(-1, keepdim=True) + L1_EPS)
    return F.mse_loss(s, avps_targets(event_mask))


def negative_pair_filter_loss(similarity: torch.Tensor, event_mask: torch.Tensor) -> torch.Tensor:
    """VSCG's negative pair filter (NPF) loss, as implemented here.

    ``L = sum_{b,t} m_bt (1 - cos_bt) / max(1, sum_{b,t} m_bt)``: every positive (event) audio-visual
    pair is pulled towards cosine 1, and every negative (background) pair is filtered out of the loss,
    so it is neither pulled together nor pushed into a distribution over time. PSP's AVPS instead
    normalises relu(cos) over all 10 segments and regresses background pairs to 0.
    The official VSCG code ships no separate NPF term (it uses PSP's AVPS with weight 1) and the paper's
    equation could not be consulted, so this definition is our reading of "filter out the irrelevant
    (negative) segment pairs". similarity, event_mask: (B, T).
    """
    return ((1.0 - similarity) * event_mask).sum() / event_mask.sum().clamp(min=1.0)


@LOSSES.register("psp")
class PSPLoss(Loss):
    """PSP fully supervised: per-segment cross-entropy + ``lambda_avps`` x AVPS.

    Reads ``out['logits']`` (B, T, C), ``out['av_similarity']`` (B, T), ``batch['segment_labels']`` (B, T),
    ``batch['event_mask']`` (B, T)."""

    @dataclass
    class Config:
        lambda_avps: float = 100.0  # weight of the AVPS pair-similarity loss (PSP README: --LAMBDA 100)

    def forward(self, out: Tensors, batch: Tensors) -> dict[str, torch.Tensor]:
        logits = _need(out, "logits", "psp", "model output")
        labels = _need(batch, "segment_labels", "psp", "batch")
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        sim = _need(out, "av_similarity", "psp", "model output")
        avps = avps_loss(sim, _need(batch, "event_mask", "psp", "batch"))
        return {"loss": ce + self.cfg.lambda_avps * avps, "ce": ce.detach(), "avps": avps.detach()}


PAIR_TERMS = ("npf", "psp", "ce")


@LOSSES.register("vscg")
class VSCGLoss(Loss):
    """VSCG fully supervised: ``w_relevance`` BCEWithLogits(relevance, event_mask) + ``w_category``
    CE(category, video_class) + ``w_pair`` x pair term.

    ``pair`` (paper Table V): ``npf`` (negative pair filter, :func:`negative_pair_filter_loss`), ``psp``
    (PSP's AVPS, :func:`avps_loss`; the official VSCG code uses this with weight 1), ``ce`` (no pair term).
    Videos whose ``video_class`` is background (>= the number of category logits) add no category loss.
    """

    @dataclass
    class Config:
        w_relevance: float = 1.0  # weight of the per-segment event/background BCE
        w_category: float = 1.0  # weight of the video-level category cross-entropy
        w_pair: float = 1.0  # weight of the pair-similarity term
        pair: str = "npf"  # pair term (Table V): npf | psp | ce

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        if cfg.pair not in PAIR_TERMS:
            raise ValueError(f"vscg loss: pair must be one of {PAIR_TERMS}, got {cfg.pair!r}")

    def forward(self, out: Tensors, batch: Tensors) -> dict[str, torch.Tensor]:
        relevance_logits = _need(out, "relevance", "vscg", "model output")
        mask = _need(batch, "event_mask", "vscg", "batch").to(relevance_logits.dtype)
        relevance = F.binary_cross_entropy_with_logits(relevance_logits, mask)
        logits = _need(out, "category", "vscg", "model output")
        cls = _need(batch, "video_class", "vscg", "batch")
        valid = cls < logits.shape[-1]
        ce = F.cross_entropy(logits, cls.clamp(max=logits.shape[-1] - 1), reduction="none")
        category = (ce * valid).sum() / valid.sum().clamp(min=1)
        parts = {"relevance": relevance, "category": category}
        loss = self.cfg.w_relevance * relevance + self.cfg.w_category * category
        if self.cfg.pair != "ce":
            sim = _need(out, "av_similarity", "vscg", "model output")
            pair = negative_pair_filter_loss(sim, mask) if self.cfg.pair == "npf" else avps_loss(sim, mask)
            loss = loss + self.cfg.w_pair * pair
            parts["pair"] = pair
        return {"loss": loss, **{k: v.detach() for k, v in parts.items()}}


@LOSSES.register("psp_weak_bce")
class PSPWeakBCE(Loss):
    """PSP weakly supervised: BCE(``out['video_probs']``, ``batch['prob_label']``), both (B, C).

    ``prob_label`` holds k/T for the video's event and (T-k)/T for background (video-level only)."""

    @dataclass
    class Config:
        pass

    def forward(self, out: Tensors, batch: Tensors) -> dict[str, torch.Tensor]:
        target = _need(batch, "prob_label", "psp_weak_bce", "batch")
        bce = F.binary_cross_entropy(_need(out, "video_probs", "psp_weak_bce", "model output"), target)
        return {"loss": bce}


@LOSSES.register("vscg_smooth")
class VSCGSmoothLoss(Loss):
    """VSCG weakly supervised: ``w_main`` BCE(video_probs, prob_label) + ``w_smooth`` BCE(video_probs_smooth,
    prob_label), where ``video_probs_smooth`` is the double softmax (the paper's smooth loss)."""

    @dataclass
    class Config:
        w_main: float = 2.0  # weight of the BCE on the video probabilities
        w_smooth: float = 1.0  # weight of the BCE on the double-softmax ("smooth") probabilities

    def forward(self, out: Tensors, batch: Tensors) -> dict[str, torch.Tensor]:
        target = _need(batch, "prob_label", "vscg_smooth", "batch")
        main = F.binary_cross_entropy(_need(out, "video_probs", "vscg_smooth", "model output"), target)
        smooth_probs = _need(out, "video_probs_smooth", "vscg_smooth", "model output")
        smooth = F.binary_cross_entropy(smooth_probs, target)
        loss = self.cfg.w_main * main + self.cfg.w_smooth * smooth
        return {"loss": loss, "main": main.detach(), "smooth": smooth.detach()}
