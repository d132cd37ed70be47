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
        """Gather the samples ``idx``. ``out`` is an earlier batch, handed back for reuse: a dataset may
        gather into those tensors (or their leading rows) when they are large enough, since fresh 100+ MB
        allocations cost page faults (~0.1 s per 128 MB here). A caller that passes ``out`` must no longer
        use the old batch."""
        raise NotImplementedError

    def scratch_batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """:meth:`batch` into one scratch batch that this dataset keeps and the next call overwrites.

        The training loop and evaluation gather every batch into the same resident memory this way (an
        evaluation's batches reuse the training batch's memory, and a smaller last batch uses its leading
        rows). Callers must not keep the returned tensors past the next call; clone what must survive."""
        scratch = getattr(self, "_scratch", None)
        if scratch is not None and not torch.is_inference_mode_enabled() and any(
            t.is_inference() for t in scratch.values()
        ):
            scratch = None  # made under inference_mode: such tensors cannot be written outside it
        out = self.batch(idx, out=scratch)
        if scratch is None or any(
            k not in scratch or t.untyped_storage().data_ptr() != scratch[k].untyped_storage().data_ptr()
            for k, t in out.items()
        ):
            self._scratch = out  # first call, or a batch larger than the scratch: it becomes the scratch
        return out

    def model_dims(self) -> dict[str, Any]:
        """Model-config fields the data fixes (feature dims, class count); filled in when present."""
        return {}
