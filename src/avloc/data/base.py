"""What the engine expects of a registered dataset: validated tensors in RAM, gathered by index."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

import torch


class DataError(ValueError):
    """Bad input data; the message names the file, key, shape or value that is wrong."""


class InMemoryDataset:
    """Base class of registered datasets.

    Constructed once per run as ``cls(cfg, root)``; it reads and checks every file, keeps float32 tensors
    in RAM and never touches the disk again. ``splits`` maps split name ("train", "val", "test") to a
    LongTensor of sample indices, and ``batch(idx)`` / ``batches(chunks)`` gather dicts of tensors (on CPU).
    """

    task: str = ""

    def __init__(self, cfg: Any, root: str | Path) -> None:
        self.cfg = cfg
        self.root = Path(root)
        self.splits: dict[str, torch.Tensor] = {}

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gather the samples ``idx`` into fresh tensors."""
        raise NotImplementedError

    def batches(self, chunks: Iterable[torch.Tensor]) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of ``chunks`` (index tensors) in order. A batch is valid until the next one is drawn:
        a dataset may gather every batch into the same memory (clone what must outlive the step)."""
        for idx in chunks:
            yield self.batch(idx)

    def model_dims(self) -> dict[str, Any]:
        """Model-config fields the data fixes (feature dims, class count); filled in when present."""
        return {}
