"""The one skeleton of every AVE model: ``check inputs -> encode(audio, visual) -> [ESCM] -> outputs ->
decode``. A method supplies its stages only (``encode``, ``outputs`` and, for a gated method,
``event_gate``); the base checks the batch, runs the optional ESCM plug-in, builds the example batch
from the model's own Config and decodes "event class where the gate passes, background elsewhere"."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from avloc.models.ave_io import check_ave_inputs, random_ave_batch
from avloc.models.base import AVModel, Batch
from avloc.models.blocks import ESCM

Tensors = dict[str, torch.Tensor]


class AVEModel(AVModel):
    """Base of the AVE models. Subclasses set ``self.cfg`` (with ``audio_dim``, ``visual_dim``,
    ``num_classes``) and ``self.escm`` (an :class:`ESCM` or None), and implement the stages below."""

    task = "ave"
    escm: ESCM | None

    def forward(self, batch: Batch) -> Tensors:
        c = self.cfg
        check_ave_inputs(batch, c.audio_dim, c.visual_dim, self.registered_name)  # type: ignore[attr-defined]
        audio, visual, extras = self.encode(batch["audio"], batch["visual"])  # (B, T, D) each
        if self.escm is not None:
            audio, visual = self.escm(audio, visual)  # (B, T, D) each, re-encoded with the video summary
        return self.outputs(audio, visual, extras)

    def encode(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Tensors]:
        """audio (B, T, Da), visual (B, T, H, W, Dv) -> audio, visual (B, T, D) and extra outputs."""
        raise NotImplementedError

    def outputs(self, audio: torch.Tensor, visual: torch.Tensor, extras: Tensors) -> Tensors:
        """The method's heads on the (B, T, D) streams, plus the encoder's extra outputs."""
        raise NotImplementedError

    def class_scores(self, out: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Scores whose argmax names the class: per segment (B, T, C) or per video (B, C')."""
        raise NotImplementedError

    def event_gate(self, out: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """(B, T) bool: segments that hold an event (None: the class argmax alone decides)."""
        return None

    def segment_predictions(self, out: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, T) long: the class argmax; with a gate, the event class where it passes, background elsewhere."""
        scores = self.class_scores(out)
        gate = self.event_gate(out)
        if gate is None:
            return scores.argmax(-1)
        cls = scores.argmax(-1, keepdim=True).expand_as(gate)  # (B, T): the video's event class
        return torch.where(gate, cls, torch.full_like(cls, self.cfg.num_classes - 1))

    def example_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        c: Any = self.cfg
        grid = math.isqrt(getattr(c, "att_regions", 49))
        return random_ave_batch(batch_size, generator, c.audio_dim, c.visual_dim, grid, num_classes=c.num_classes)
