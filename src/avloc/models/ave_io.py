"""Inputs of the AVE models: shape checks with clear messages and a random, label-consistent batch.

The batch keys mirror the ``ave`` dataset (see ``avloc.data``): ``audio`` (B, T, Da), ``visual``
(B, T, H, W, Dv), ``labels`` (B, T, C) one-hot with background = C-1, ``segment_labels`` (B, T) long,
``event_mask`` (B, T), ``video_label`` (B, C), ``video_class`` (B,) long, ``prob_label`` (B, C).
"""

from __future__ import annotations

from typing import Mapping

import torch


def check_ave_inputs(batch: Mapping[str, torch.Tensor], audio_dim: int, visual_dim: int, who: str) -> None:
    """Raise ValueError naming the key and shape when ``audio``/``visual`` do not fit model ``who``."""
    for key in ("audio", "visual"):
        if key not in batch:
            raise ValueError(f"{who}: batch has no '{key}' (keys: {sorted(batch)})")
    audio, visual = batch["audio"], batch["visual"]
    if audio.dim() != 3 or audio.shape[-1] != audio_dim:
        raise ValueError(f"{who}: 'audio' must be (B, T, {audio_dim}), got {tuple(audio.shape)}")
    if visual.dim() != 5 or visual.shape[-1] != visual_dim:
        raise ValueError(f"{who}: 'visual' must be (B, T, H, W, {visual_dim}), got {tuple(visual.shape)}")
    if audio.shape[:2] != visual.shape[:2]:
        raise ValueError(
            f"{who}: 'audio' {tuple(audio.shape)} and 'visual' {tuple(visual.shape)} disagree on (B, T)"
        )


def random_ave_batch(
    batch_size: int,
    generator: torch.Generator,
    audio_dim: int = 128,
    visual_dim: int = 512,
    grid: int = 7,
    segments: int = 10,
    num_classes: int = 29,
) -> dict[str, torch.Tensor]:
    """A random fully-labelled AVE batch: one event class per video on a random contiguous span of
    1..T segments, background (index C-1) elsewhere; features are non-negative like VGG/VGGish outputs."""
    g = generator
    bg = num_classes - 1
    cls = torch.randint(0, bg, (batch_size,), generator=g)
    length = torch.randint(1, segments + 1, (batch_size,), generator=g)
    start = (torch.rand(batch_size, generator=g) * (segments - length + 1)).long()
    t = torch.arange(segments)
    mask = (t >= start[:, None]) & (t < (start + length)[:, None])  # (B, T)
    seg = torch.where(mask, cls[:, None], torch.full_like(mask, bg, dtype=torch.long))
    k = mask.sum(1).float()
    video_label = torch.nn.functional.one_hot(cls, num_classes).float()
    prob_label = video_label * (k / segments)[:, None]
    prob_label[:, bg] = 1.0 - k / segments
    return {
        "audio": torch.rand(batch_size, segments, audio_dim, generator=g),
        "visual": torch.rand(batch_size, segments, grid, grid, visual_dim, generator=g),
        "labels": torch.nn.functional.one_hot(seg, num_classes).float(),
        "segment_labels": seg,
        "event_mask": mask.float(),
        "video_label": video_label,
        "video_class": cls,
        "prob_label": prob_label,
    }
