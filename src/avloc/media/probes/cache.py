"""A feature cache for the backbone benchmark: one ``.npz`` of arrays per key, valid only for its list of inputs.

The list of input names is stored beside the arrays; a cache written for another list (inputs added, removed or
renamed) reads as absent and is recomputed. Written atomically (tmp + rename); read without unpickling.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


def _digest(names: list[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def load_cached(folder: Path, key: str, names: list[str]) -> dict[str, np.ndarray] | None:
    """The arrays saved under ``key`` for exactly these input ``names``, or None."""
    path = Path(folder) / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["inputs_sha256"]) != _digest(names):
                return None
            return {k: z[k] for k in z.files if k != "inputs_sha256"}
    except (OSError, ValueError, KeyError):
        return None


def save_cached(folder: Path, key: str, names: list[str], arrays: dict[str, np.ndarray]) -> None:
    """Save ``arrays`` under ``key`` with the digest of ``names``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.tmp.npz"
    np.savez(tmp, inputs_sha256=np.array(_digest(names)), **arrays)
    os.replace(tmp, folder / f"{key}.npz")
