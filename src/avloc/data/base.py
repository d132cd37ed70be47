"""What the engine expects of a registered dataset: validated tensors in RAM, gathered by index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


class DataError(ValueError):
    """Bad input data; the message names the file, key, shape or value that is wrong."""


class InMemoryDataset:
    """Base class of registered datasets.

    Constructed once per run as ``cls(cfg, root)``; it reads and checks every file, keeps float32 tensors
    in RAM and never touches the disk again. ``splits`` maps split name ("train", "val", "test") to a
    LongTensor of sample indices, and ``batch(idx)`` gathers a dict of tensors (on CPU) for those indices.
    """

    task: str = ""

    def __init__(self, cfg: Any, root: str | Path) -> None:
        self.cfg = cfg
        self.root = Path(root)
        self.splits: dict[str, torch.Tensor] = {}

    def batch(self, idx: torch.Tensor, out: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Gather the samples ``idx``. ``out`` is the previous batch, handed back for reuse: a dataset may
        gather into those tensors when shapes match (fresh 100+ MB allocations cost page faults on every
        step). A caller that passes ``out`` must no longer use the old batch."""
        raise NotImplementedError

    def model_dims(self) -> dict[str, Any]:
        """Model-config fields the data fixes (feature dims, class count); filled in when present."""
        return {}
