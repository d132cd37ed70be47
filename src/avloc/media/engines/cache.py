"""The on-disk cache of ONNX exports and of ``auto``'s measured choices.

An export is named by a digest of everything that determines it: the backbone's name, its parameters and
buffers (after BatchNorm folding), the source files of every avloc class inside it, the input's per-sample
shape, the engine, and the versions of torch and the engine's library. Edit a layer, load other weights or
upgrade a library and the digest changes, so a stale export is never served; old files are simply unused.
Files are written to a temporary name and renamed, so a killed process never leaves half an export.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

CACHE_ENV = "AVLOC_ENGINE_CACHE"  # folder of exports and measured choices (default ~/.cache/avloc/engines)
ONNX_OPSET = 17


def cache_dir() -> Path:
    """``$AVLOC_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/avloc/engines``, else ``~/.cache/avloc/engines``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "avloc" / "engines"


def module_digest(core: nn.Module) -> str:
    """SHA-256 of a module's tensors (names, shapes, dtypes, bytes), its modules' typed settings (``cfg``) and
    the source of its own classes.

    Torch's built-in layers are covered by the torch version in the cache key; classes defined elsewhere
    (avloc's blocks) contribute the whole source file they live in, helper functions included.
    """
    h = hashlib.sha256()
    tensors = dict(core.named_parameters())
    tensors.update(core.named_buffers())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    for name, m in core.named_modules():  # settings that change the forward (e.g. SoundNet's tapped layer)
        if getattr(m, "cfg", None) is not None:
            h.update(f"{name}|cfg|{m.cfg!r}|".encode())
    files = sorted({inspect.getsourcefile(type(m)) or "" for m in core.modules()
                    if not type(m).__module__.startswith("torch.")})
    for f in files:
        h.update(f.encode())
        h.update(Path(f).read_bytes() if f and Path(f).is_file() else b"")
    return h.hexdigest()


def cache_key(parts: dict[str, Any]) -> str:
    """A short stable digest of a JSON-able description."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_onnx(core: nn.Module, sample_shape: tuple[int, ...], path: Path) -> Path:
    """``path`` holding the ONNX graph of ``core`` on (batch, *sample_shape) float32 input, batch dynamic.

    Exported once: an existing file at ``path`` (its name is the digest) is reused as it is."""
    if path.is_file():
        return path
    example = torch.zeros(2, *sample_shape)  # (2, ...): a batch of 2 keeps the batch axis symbolic

    def write(tmp: Path) -> None:
        buf = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(core.cpu().eval(), (example,), buf, dynamo=False, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
                              opset_version=ONNX_OPSET)
        tmp.write_bytes(buf.getvalue())

    atomic_write(path, write)
    return path


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object at ``path``; an absent or unreadable file is an empty cache, never an error."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1, sort_keys=True)))

