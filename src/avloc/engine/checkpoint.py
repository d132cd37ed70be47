"""Checkpoints that hold tensors and plain values only: written atomically, loaded with weights_only, verified.

Every checkpoint carries a SHA-256 of its content (``sha256``: tensors' dtype, shape and bytes, plain values),
and a load checks both the zip records' CRC-32 and that digest: ``torch.load`` itself reads a flipped byte
inside a tensor without a word.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

DIGEST_KEY = "sha256"


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt or holds something other than tensors and plain values."""


def _update(digest: Any, obj: Any) -> None:
    """Feed ``obj`` into ``digest`` in a canonical order (insertion order, which torch.save keeps)."""
    if isinstance(obj, torch.Tensor):
        flat = obj.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{flat.dtype}{tuple(obj.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().data)  # raw bytes of any dtype (bf16 too)
    elif isinstance(obj, dict):
        digest.update(f"D{len(obj)}".encode())
        for key, val in obj.items():
            digest.update(repr(key).encode())
            _update(digest, val)
    elif isinstance(obj, (list, tuple)):
        digest.update(f"L{len(obj)}".encode())
        for val in obj:
            _update(digest, val)
    else:
        digest.update(f"V{type(obj).__name__}:{obj!r}".encode())


def content_digest(obj: dict[str, Any]) -> str:
    """SHA-256 of a checkpoint dict's content, the stored ``sha256`` key left out."""
    digest = hashlib.sha256()
    _update(digest, {k: v for k, v in obj.items() if k != DIGEST_KEY})
    return digest.hexdigest()


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """Write ``obj`` (plus its content digest) next to ``path`` then rename it into place, so a kill never
    leaves half a file. A failed write (a full disk) keeps the old file and names the path in the error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({**obj, DIGEST_KEY: content_digest(obj)}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()  # reads every record and compares its CRC-32
    except (zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"{path}: not a complete checkpoint zip, truncated or not written by "
                              f"torch.save ({exc})") from exc
    if bad is not None:
        raise CheckpointError(f"{path}: bad zip checksum in record {bad!r}: the file is corrupt")


def _reason(exc: Exception) -> str:
    """One line out of torch's error: for a refused pickle, the global it names (torch's text runs 10 lines)."""
    text = str(exc)
    unsafe = re.search(r"^\s*(?:WeightsUnpickler error: )?(.*GLOBAL.*?)(?:\. Please use.*)?$", text, flags=re.M)
    if unsafe:
        return f"refused: it holds pickled code, not only tensors; {unsafe.group(1).rstrip('.')}"
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def load_safe(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint without unpickling arbitrary objects (``weights_only=True``), after checking its
    zip checksums, and compare its stored content digest (files without one, from before, load unchecked)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    _check_zip(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt/unsafe files
        raise CheckpointError(f"{path}: not a loadable avloc checkpoint ({_reason(exc)})") from exc
    if not isinstance(obj, dict) or "model" not in obj:
        raise CheckpointError(f"{path}: expected a dict with a 'model' state, got {type(obj).__name__}")
    stored = obj.pop(DIGEST_KEY, None)
    if stored is not None and stored != content_digest(obj):
        raise CheckpointError(f"{path}: content digest mismatch: the file is corrupt")
    return obj
