"""What the engine expects of a registered evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from avloc.data.base import InMemoryDataset
from avloc.models.base import AVModel


class Evaluator:
    """Scores a model on one split. ``primary`` names the metric used for model selection (on val)."""

    primary: str = ""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    @torch.no_grad()
    def __call__(
        self, model: AVModel, data: InMemoryDataset, split: str, device: torch.device, batch_size: int
    ) -> dict[str, float]:
        raise NotImplementedError

    def finalize(
        self, model: AVModel, data: InMemoryDataset, run_dir: Path, device: torch.device, batch_size: int
    ) -> dict[str, Any]:
        """Called once with the selected model at the end of training: write artefacts, return extra report keys."""
        return {}
