"""Do a composed class's pictures carry over from the training split to the others?

A composed real-media benchmark labels a second audio-visual only when its photo shows the sound's class, so a
trained model must recognise the class in photos it has never seen. With one photo per ImageNet class, a sound
class's photos in val and test are other ImageNet classes than its training photos (a chain saw in training, a
lumbermill in test), and whether a model can learn the class from pictures at all depends on how alike these
are. This probe answers that before any model is trained: a class-balanced multinomial logistic regression on
a visual backbone's pooled features, trained on the training split's photos of every seen class and the
unrelated photos, scored per class on the val and test photos (recall) and on the unrelated ones (kept
unrelated). The regularisation is chosen on val. A class the probe does not recognise on val cannot be learnt
from this photo folder by any model trained on the composed set.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avloc.media.backbones import VisualBackbone
from avloc.formats.atomic import write_text_atomic
from avloc.media.compose.sources import SPLITS, MediaSources, collect_sources, read_class_map
from avloc.media.probes.cache import load_cached, save_cached
from avloc.media.probes.imagenet import IMAGE_SUFFIXES, read_image

L2_GRID = (1e-3, 1e-2, 1e-1, 1.0)
UNRELATED = "unrelated"


@dataclass
class TransferResult:
    """Per split (val, test): recall of each seen class and of ``unrelated``; photos per class; chosen L2."""

    classes: list[str]
    recall: dict[str, dict[str, float]]
    photos: dict[str, dict[str, int]]
    l2: float

    def as_dict(self) -> dict:
        return {"classes": self.classes, "recall": self.recall, "photos": self.photos, "l2": self.l2}


def _weights_digest(backbone: VisualBackbone) -> str:
    """A short digest of the backbone's parameters and buffers: the cache key must change with its weights file
    or options (``create_backbone(name, weights=...)``), not only with its name."""
    h = hashlib.sha256()
    for name, t in backbone.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


@torch.no_grad()
def pooled_features(files: list[Path], backbone: VisualBackbone, cache_dir: Path | None = None,
                    mode: str = "squash") -> dict[str, np.ndarray]:
    """File name -> (C,) float32 spatially pooled feature map of each photo (resized as ``avloc extract``
    does); cached per backbone, weights and resize mode under ``cache_dir``."""
    names = [p.name for p in files]
    key = f"pooled_{backbone.registered_name}_{mode}_{_weights_digest(backbone)}"
    cached = load_cached(cache_dir, key, names) if cache_dir is not None else None
    if cached is None:
        rows = [backbone(backbone.preprocess(read_image(p)[None], mode)).float().mean((2, 3)).cpu().numpy()
                for p in files]  # [(1, C)]: photos differ in size, one at a time
        cached = {"features": np.concatenate(rows).astype(np.float32)}
        if cache_dir is not None:
            save_cached(cache_dir, key, names, cached)
    return dict(zip(names, cached["features"]))


def _split_arrays(sources: MediaSources, features: dict[str, np.ndarray], split: str
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) features and (N,) labels of one split: seen classes 0..K-1, unrelated photos K."""
    files = [(p, k) for k, c in enumerate(sources.visual_classes) for p in sources.photos[split][c]]
    files += [(p, len(sources.visual_classes)) for p in sources.unrelated[split]]
    x = torch.from_numpy(np.stack([features[p.name] for p, _ in files])).double()
    return x, torch.tensor([k for _, k in files])


def _fit(x: torch.Tensor, y: torch.Tensor, n_out: int, l2: float) -> torch.nn.Linear:
    """Class-balanced softmax regression, ``l2`` * ||W||^2, by L-BFGS from zeros (deterministic)."""
    lin = torch.nn.Linear(x.shape[1], n_out).double()
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    counts = torch.bincount(y, minlength=n_out).double()
    weight = torch.where(counts > 0, counts.sum() / (n_out * counts.clamp(min=1)), torch.zeros_like(counts))
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(x), y, weight=weight) + l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return lin


def _recall(lin: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor, names: list[str]) -> dict[str, float]:
    with torch.no_grad():
        pred = lin(x).argmax(1)  # (N,)
    return {n: round(float((pred[y == k] == k).double().mean()), 4) for k, n in enumerate(names) if (y == k).any()}


def photo_transfer(sources: MediaSources, features: dict[str, np.ndarray]) -> TransferResult:
    """Train on the training split's photos, choose the L2 strength by mean val recall over every class and
    ``unrelated`` (ties: the smaller), and report val and test recall per class (see the module docstring)."""
    if not sources.visual_classes:
        raise ValueError("no seen class: the class map gives no class three or more photos")
    names = sources.visual_classes + [UNRELATED]
    data = {s: _split_arrays(sources, features, s) for s in SPLITS}
    mean, std = data["train"][0].mean(0), data["train"][0].std(0) + 1e-6  # (C,) standardise on train
    data = {s: ((x - mean) / std, y) for s, (x, y) in data.items()}
    best = None
    for l2 in L2_GRID:
        lin = _fit(*data["train"], len(names), l2)
        recall = {s: _recall(lin, *data[s], names) for s in ("val", "test")}
        score = float(np.mean(list(recall["val"].values())))
        if best is None or score > best[0]:
            best = (score, l2, recall)
    _, l2, recall = best
    photos = {s: {n: int((data[s][1] == k).sum()) for k, n in enumerate(names)} for s in SPLITS}
    return TransferResult(classes=sources.visual_classes, recall=recall, photos=photos, l2=l2)


def transfer_table(esc: Path, images: Path, class_maps: dict[str, Path], out: Path, backbone: VisualBackbone
                   ) -> dict[str, dict]:
    """Per class map (label -> file): the probe's val/test recall per seen class; writes ``photos.json`` and
    ``photos.md`` under ``out`` (features cached in ``out/cache``)."""
    if not images.is_dir():
        raise FileNotFoundError(f"{images}: not a folder of photos")
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    features = pooled_features(files, backbone, out / "cache")
    report = {}
    for name, path in class_maps.items():
        mapping, not_unrelated = read_class_map(path)
        sources = collect_sources(esc, images, mapping, str(path), not_unrelated)
        report[name] = photo_transfer(sources, features).as_dict()
    lines = [f"Photo transfer ({backbone.registered_name}, pooled features; class-balanced logistic regression "
             "trained on the train split's photos, L2 chosen on val): recall of each seen class's val / test photos "
             "(photos)", "", "| class map | class | val | test |", "|---|---|---|---|"]
    for name, r in report.items():
        for c in r["classes"] + [UNRELATED]:
            cells = [f"{r['recall'][s].get(c, float('nan')) * 100:.0f} % ({r['photos'][s][c]})"
                     for s in ("val", "test")]
            lines.append(f"| {name} | {c} | {cells[0]} | {cells[1]} |")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "photos.json", json.dumps(report, indent=1) + "\n")
    write_text_atomic(out / "photos.md", "\n".join(lines) + "\n")
    return report
