"""Checkpoints that hold tensors and plain values only: written atomically, loaded with weights_only."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or holds something other than tensors and plain values."""


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """Write ``obj`` next to ``path`` then rename it into place, so a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_safe(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint without unpickling arbitrary objects (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt/unsafe files
        raise CheckpointError(f"{path}: not a loadable avloc checkpoint ({exc})") from exc
    if not isinstance(obj, dict) or "model" not in obj:
        raise CheckpointError(f"{path}: expected a dict with a 'model' state, got {type(obj).__name__}")
    return obj
