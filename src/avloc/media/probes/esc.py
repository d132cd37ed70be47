"""How good an audio backbone's features are, measured the way SoundNet measured its own: ESC-10, linear SVM.

The protocol of the SoundNet authors' evaluation script (``eval_esc50.lua`` of cvondrick/soundnet, used for
the paper's Tables 4 and 6): each clip is repeated circularly and cut to 10 s; the network runs on the whole
10 s; the tapped layer's map (C, T) is cut into every window of ceil(T / 10) frames (one second; stride one
frame), each window flattened into one training example with the clip's label; liblinear ``-s 1 -c 0.01 -B 1``
trains on four folds; on the fifth, each clip's decision values are averaged over its windows and the class
with the largest average is the prediction. The score is the mean accuracy over the five official folds.

A backbone that is not SoundNet has no frame map of its own over 10 s, so it gets the same looped 10 s, cut into
1-s windows every 0.5 s, one ``embed`` vector per window; the SVM and the averaging are the same.

Features are cached per backbone and layer under the output folder (``esc10_<backbone>[_<layer>].npz``) with
the list of clips they came from; a cache made from another list of clips is recomputed, never trusted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avloc.evaluation.linear_svm import fit_linear_svm
from avloc.media.probes.cache import load_cached, save_cached
from avloc.media.backbones import AudioBackbone
from avloc.media.backbones.soundnet import SoundNet8
from avloc.media.decode import MediaError, decode_audio

LOOP_S = 10.0  # every clip is repeated circularly and cut to this many seconds
WINDOW_S, HOP_S = 1.0, 0.5  # windows of a backbone without its own frame map
SVM_C = 0.01
Net = Callable[[torch.Tensor], torch.Tensor]
_FILE = re.compile(r"^([1-5])-")  # ESC file names start with the fold: "F-FREESOUNDID-TAKE.ogg"


@dataclass(frozen=True)
class EscClip:
    path: Path
    fold: int
    label: int


def list_esc(folder: str | Path, limit_per_class: int = 0) -> tuple[list[EscClip], list[str]]:
    """The clips of an ESC folder (``NNN - Class/F-ID-TAKE.ogg``) in a fixed order, and the class names.

    ``limit_per_class`` > 0 keeps that many clips of each class, spread over the folds (for quick checks)."""
    folder = Path(folder)
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and " - " in d.name) if folder.is_dir() else []
    if not class_dirs:
        raise FileNotFoundError(f"{folder}: no ESC class folders ('NNN - Class')")
    clips: list[EscClip] = []
    for label, d in enumerate(class_dirs):
        files = sorted(p for p in d.iterdir() if p.suffix in (".ogg", ".wav") and _FILE.match(p.name))
        if not files:
            raise FileNotFoundError(f"{d}: no clips named 'F-ID-TAKE.ogg'")
        if limit_per_class:  # round-robin over the folds, so that every fold keeps some of each class
            per_fold = [[p for p in files if p.name[0] == f] for f in sorted({p.name[0] for p in files})]
            files = sorted([p for rank in zip(*per_fold) for p in rank][:limit_per_class])
        clips += [EscClip(p, int(p.name[0]), label) for p in files]
    return clips, [d.name.split(" - ", 1)[1] for d in class_dirs]


def looped(wave: np.ndarray, rate: int, seconds: float = LOOP_S) -> np.ndarray:
    """(S,) -> (seconds * rate,): the clip repeated circularly and cut, as the SoundNet script does."""
    n = int(round(seconds * rate))
    if len(wave) == 0:
        return np.zeros(n, np.float32)
    return np.resize(np.asarray(wave, np.float32), n)  # np.resize repeats the array cyclically


def window_protocol(backbone: AudioBackbone) -> str:
    """How ``clip_windows`` cuts a clip for ``backbone``, in words (for reports)."""
    if isinstance(backbone, SoundNet8):
        return f"{backbone.cfg.layer} map of the looped 10 s, every 1-s (ceil(T/10)-frame) window, flattened"
    return f"looped 10 s, {WINDOW_S:g}-s windows every {HOP_S:g} s, one embedding each"


@torch.no_grad()
def clip_windows(backbone: AudioBackbone, wave: np.ndarray, net: Net | None = None) -> torch.Tensor:
    """(S,) mono wave at the backbone's rate -> (W, D) window features of one clip under the protocol above.

    ``net`` runs the network (an ``EngineNet`` of ``backbone`` or, for SoundNet, of ``map_net(layer)``)."""
    x = looped(wave, backbone.sample_rate)
    if isinstance(backbone, SoundNet8):
        layer_map = net or backbone.map_net(backbone.cfg.layer)
        fmap = layer_map(torch.from_numpy(x)[None].to(backbone.device))[0].float()  # (C, T)
        width = math.ceil(fmap.shape[1] / LOOP_S)  # frames in one second
        win = fmap.unfold(1, width, 1)  # (C, T - width + 1, width)
        return win.permute(1, 0, 2).reshape(win.shape[1], -1).float().cpu()  # (W, C * width), channel-major
    starts = np.arange(0.0, LOOP_S - WINDOW_S + 1e-9, HOP_S)  # (W,)
    return backbone.embed(x, starts, WINDOW_S, net=net).float().cpu()  # (W, D)


def esc_features(clips: list[EscClip], backbone: AudioBackbone, key: str, cache_dir: Path | None,
                 net: Net | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Window features (N, D) float32 of every clip and each window's clip index (N,), cached under ``key``."""
    names = [f"{c.path.parent.name}/{c.path.name}" for c in clips]
    names.append(f"protocol: {window_protocol(backbone)}")  # a cache of another protocol is not this one
    cached = load_cached(cache_dir, key, names) if cache_dir is not None else None
    if cached is not None:
        return cached["features"], cached["clip"]
    feats, owner = [], []
    for i, clip in enumerate(clips):
        wave = decode_audio(clip.path, backbone.sample_rate)
        if wave is None:
            raise MediaError(clip.path, "no audio stream")
        w = clip_windows(backbone, wave, net).numpy()  # (W, D)
        feats.append(w)
        owner.append(np.full(len(w), i, np.int64))
    out = {"features": np.concatenate(feats).astype(np.float32), "clip": np.concatenate(owner)}
    if cache_dir is not None:
        save_cached(cache_dir, key, names, out)
    return out["features"], out["clip"]


def fold_accuracies(features: np.ndarray, clip_of: np.ndarray, labels: np.ndarray, folds: np.ndarray,
                    n_classes: int, c: float = SVM_C) -> dict[int, float]:
    """Per test fold: clip accuracy of the SVM trained on the windows of the other folds."""
    x = torch.from_numpy(features).double()  # (N, D)
    clip_of_t = torch.from_numpy(clip_of)
    win_fold = folds[clip_of]  # (N,)
    win_label = torch.from_numpy(labels[clip_of])  # (N,)
    out: dict[int, float] = {}
    for fold in sorted(set(folds.tolist())):
        train = torch.from_numpy(win_fold != fold)
        test = ~train
        if not bool(train.any()):
            continue
        svm = fit_linear_svm(x[train], win_label[train], n_classes, c=c)
        scores = svm.decision(x[test])  # (Nt, K)
        owner = clip_of_t[test]
        sums = torch.zeros(len(labels), n_classes, dtype=scores.dtype).index_add_(0, owner, scores)  # (clips, K)
        counts = torch.zeros(len(labels), dtype=scores.dtype).index_add_(0, owner, torch.ones_like(owner, dtype=scores.dtype))
        in_fold = torch.from_numpy(folds == fold)
        pred = (sums[in_fold] / counts[in_fold, None]).argmax(1)  # (clips in fold,) mean decision value
        out[int(fold)] = float((pred == torch.from_numpy(labels)[in_fold]).double().mean())
    return out


def esc_accuracy(clips: list[EscClip], backbone: AudioBackbone, key: str, cache_dir: Path | None,
                 c: float = SVM_C, net: Net | None = None) -> dict[str, object]:
    """Mean and per-fold ESC accuracy of ``backbone`` under the SoundNet protocol (``net``: see ``clip_windows``)."""
    feats, clip_of = esc_features(clips, backbone, key, cache_dir, net)
    labels = np.array([cl.label for cl in clips])
    folds = np.array([cl.fold for cl in clips])
    per_fold = fold_accuracies(feats, clip_of, labels, folds, int(labels.max()) + 1, c)
    return {"accuracy": float(np.mean(list(per_fold.values()))), "folds": per_fold, "clips": len(clips),
            "windows": int(len(feats)), "dim": int(feats.shape[1]), "windows_from": window_protocol(backbone)}
