"""Top-1 / top-5 of a visual backbone's ImageNet head on a folder of labelled photos, per resize mode.

The photos are named ``<wnid>_<anything>.<ext>``; the sorted set of wnids is the class order of ImageNet-1k
heads. This checks the head, its class order and the preprocessing (channel order, scale, normalisation,
resize) on real pictures. Images are decoded with PyAV (FFmpeg's image decoders), greyscale ones expanded to
RGB. Logits are cached per backbone and resize mode under the output folder.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from avloc.media.probes.cache import load_cached, save_cached
from avloc.media.backbones import VisualBackbone
from avloc.media.decode import MediaError

_WNID = re.compile(r"^(n\d{8})_")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def list_images(folder: str | Path, limit: int = 0) -> tuple[list[Path], np.ndarray, list[str]]:
    """Photos of ``folder`` (sorted), each one's class index (N,) in the sorted wnid order, and that order.

    ``limit`` > 0 keeps that many photos, evenly spaced over the class order (the labels keep the full order).
    """
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and _WNID.match(p.name)) \
        if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"{folder}: no photos named '<wnid>_<name>.JPEG'")
    wnids = sorted({_WNID.match(p.name).group(1) for p in files})
    index = {w: i for i, w in enumerate(wnids)}
    if limit:
        files = [files[i] for i in np.linspace(0, len(files) - 1, min(limit, len(files))).round().astype(int)]
    return files, np.array([index[_WNID.match(p.name).group(1)] for p in files]), wnids


def read_image(path: Path) -> np.ndarray:
    """uint8 (H, W, 3) RGB of an image file."""
    import av

    try:
        with av.open(str(path)) as box:
            frame = next(box.decode(video=0))
            return frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, StopIteration) as exc:
        raise MediaError(path, f"not a readable image ({exc})") from None


@torch.no_grad()
def image_logits(files: list[Path], backbone: VisualBackbone, mode: str, key: str, cache_dir: Path | None,
                 net: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 resize_precision: str = "fp32") -> np.ndarray:
    """(N, 1000) float32 ImageNet logits of the photos resized by ``mode`` (squash | center_crop) with the
    resize in ``resize_precision``; ``net`` runs the backbone's network (an ``EngineNet``), by default itself."""
    names = [p.name for p in files]
    cached = load_cached(cache_dir, key, names) if cache_dir is not None else None
    if cached is not None:
        return cached["logits"]
    run = net or backbone
    rows = [backbone.head(run(backbone.preprocess(read_image(p)[None], mode, resize_precision))).float().cpu().numpy()
            for p in files]  # [(1, 1000)]: photos differ in size, one at a time
    logits = np.concatenate(rows).astype(np.float32)
    if cache_dir is not None:
        save_cached(cache_dir, key, names, {"logits": logits})
    return logits


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """{"top1": ..., "top5": ...}: the share of rows whose label is among the k largest logits."""
    order = np.argsort(-logits, axis=1)  # (N, C)
    hit = order == labels[:, None]  # (N, C)
    return {f"top{k}": float(hit[:, :k].any(1).mean()) for k in ks}
