"""What the models return: one small type per task, so one concept has one name in every model.

Every AVE model returns an :class:`AVEOutput`, every dense (W-DAVEL) model a :class:`DenseOutput`, every
audio-visual video parsing (AVVP) model an :class:`AVVPOutput`. A field
a model does not produce is None; losses and evaluators read the fields (``avloc.losses.base.need`` turns
a missing one into an error that names the loss and the field, raised when the run is built).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import Tensor

Output = TypeVar("Output", "AVEOutput", "DenseOutput", "AVVPOutput")


@dataclass
class AVEOutput:
    """One forward pass of an AVE model (B videos of T one-second segments, C classes incl. background)."""

    class_logits: Tensor  # (B, T, C) per segment or (B, C') per video (C' = C-1 or C); argmax: the class
    event_logits: Tensor | None = None  # (B, T) logits of "the segment holds the event" (VSCG, CMBS)
    av_gate: Tensor | None = None  # (B, T) probability that a segment is audio-visual (CMBS gates)
    video_logits: Tensor | None = None  # (B, C) video-level class logits of the weak models
    cas_video_logits: Tensor | None = None  # (B, C-1) CMBS: top-k pooled class activations of both modalities
    audio_gate_logits: Tensor | None = None  # (B, T) CMBS: logits of the audio gate
    video_gate_logits: Tensor | None = None  # (B, T) CMBS: logits of the visual gate
    av_similarity: Tensor | None = None  # (B, T) cosine of the final audio and visual features (pair losses)
    attention: Tensor | None = None  # (B, T, R) audio-guided visual attention over the R regions


@dataclass
class DenseOutput:
    """One forward pass of a dense model (B padded videos of T feature steps, C event classes)."""

    cas: Tensor  # (B, T, C) class activation sequence: per-step class probabilities, 0 at padded steps
    cas_logits: Tensor  # (B, T, C) logits of ``cas``
    video_logits: Tensor  # (B, C) video-level class logits (top-k mean of ``cas_logits`` over valid steps)
    audio_logits: Tensor | None = None  # (B, T, C) CLASP: per-step logits of the audio branch
    visual_logits: Tensor | None = None  # (B, T, C) CLASP: per-step logits of the visual branch
    audio_video_logits: Tensor | None = None  # (B, C) CLASP: video logits of the audio branch
    visual_video_logits: Tensor | None = None  # (B, C) CLASP: video logits of the visual branch
    salience: Tensor | None = None  # (B, T, C) CLASP: MEAE agreement per step and class (no gradient), 0 at padding
    anchor_index: Tensor | None = None  # (B, K) CLASP: steps chosen as anchors
    anchor_valid: Tensor | None = None  # (B, K) bool: which anchors are real (not padding)
    anchor_attention: Tensor | None = None  # (B, T, K) CLASP: audio attention of every step over the anchors
    anchor_positive: Tensor | None = None  # (B, T, C) bool CLASP: per-class anchor steps (pseudo-positives)
    anchor_negative: Tensor | None = None  # (B, T, C) bool CLASP: per-class background steps (pseudo-negatives)


@dataclass
class AVVPOutput:
    """One forward pass of an AVVP model (B clips of T one-second segments, C classes, modality 0 audio, 1 visual).

    Probabilities, not logits: the AVVP losses and thresholds work on them (the official MMIL pooling sums
    attention-weighted probabilities).
    """

    segment_prob: Tensor  # (B, T, 2, C) per segment, per modality class probabilities
    video_prob: Tensor  # (B, C) modality-agnostic video probabilities (pooled over time and modality)
    audio_prob: Tensor  # (B, C) audio video probabilities (pooled over time)
    visual_prob: Tensor  # (B, C) visual video probabilities (pooled over time)


def present_fields(out: AVEOutput | DenseOutput | AVVPOutput) -> list[str]:
    """Names of the fields ``out`` holds (not None), for error messages."""
    return [f.name for f in dataclasses.fields(out) if getattr(out, f.name) is not None]


def float32_fields(out: Output) -> Output:
    """A copy whose floating-point fields are float32 (under bf16 autocast the losses stay fp32)."""
    def cast(v: Tensor | None) -> Tensor | None:
        return v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v

    return dataclasses.replace(out, **{f.name: cast(getattr(out, f.name)) for f in dataclasses.fields(out)})
