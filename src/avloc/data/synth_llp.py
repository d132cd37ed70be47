"""Synthetic LLP features in the exact layout of the ``llp`` dataset, from the real LLP annotations.

Why: the LLP features (a Google Drive archive) are not reachable offline; the AVVP pipeline (reader, HAN,
the official metrics) still needs data that goes through the same loader and is learnable from
video-level labels only, with audio and visual events that differ in time and in presence.

What is real: the clips (a seeded sample of each split list), their video-level labels and, for val and
test clips, their per-second audio and visual events (the official eval files, copied row for row). Train
clips get per-modality events drawn here (their truth lives in ``synth_meta.json``): each labelled class
is heard only (``p_audio_only``), seen only (``p_visual_only``) or both, and in each modality it spans
the clip (``p_full``) or a random run of seconds.

Features, per clip: a class present in a modality at second t adds ``amp * P[c]`` (P: fixed random unit
class prototypes, one per feature stream, consecutive classes in families that share a direction, so
siblings are confusable) to that modality's streams at t: VGGish (10, 128) for audio, ResNet-152
(80, 2048, 8 frames per second, each frame its own noise) and R(2+1)D-18 (10, 512) for visual. Plus a
per-clip offset, a slow background mix and Gaussian noise; "hard" clips (``p_hard``) get weaker events.
Same arguments, same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avloc.data import llp_files as F

SPLIT_FILES = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}
EVAL_FILES = {"audio": "AVVP_eval_audio.csv", "visual": "AVVP_eval_visual.csv"}
FEATURE_DIRS = {"audio": "feats/vggish", "visual": "feats/res152", "visual_st": "feats/r2plus1d_18"}


@dataclass
class SynthLLPConfig:
    """Knobs of the generator; the default widths are the official ones."""

    audio_dim: int = 128  # VGGish
    visual_dim: int = 2048  # ResNet-152, per frame
    st_dim: int = 512  # R(2+1)D-18
    frames_per_segment: int = 8  # ResNet-152 frames per second
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)  # of --videos: train / val / test
    p_audio_only: float = 0.3  # train clips: a labelled class is only heard
    p_visual_only: float = 0.05  # ... only seen (else both); LLP val/test: 34 % heard only, 3 % seen only
    p_full: float = 0.5  # ... spans the clip in a modality (else a random run of 1-9 s)
    event_amp: float = 3.0  # projection of an event on its class direction, per stream
    amp_jitter: float = 0.3  # per-event, per-modality amplitude multiplier ~ U(1 - j, 1 + j)
    family_size: int = 3  # consecutive classes share a direction (confusable siblings)
    family_share: float = 0.4  # cosine between two prototypes of one family
    p_hard: float = 0.3  # fraction of hard clips
    hard_amp: float = 0.5  # event scale in hard clips
    noise_std: float = 1.0  # per-dimension Gaussian noise of each second / frame
    background_amp: float = 1.5  # slow background mix (4 prototypes per stream)
    offset_std: float = 0.3  # per-clip constant offset, per dimension


def _prototypes(rng: np.random.Generator, n: int, dim: int, family: int, share: float) -> np.ndarray:
    """(n, dim) unit rows; rows of one family (consecutive ids) have cosine ``share``."""
    own = rng.standard_normal((n, dim))
    fam = rng.standard_normal((-(-n // family), dim))[np.arange(n) // family]
    own /= np.linalg.norm(own, axis=1, keepdims=True)
    fam /= np.linalg.norm(fam, axis=1, keepdims=True)
    p = np.sqrt(share) * fam + np.sqrt(1.0 - share) * own
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def _sample(rows: int, want: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of ``want`` of ``rows`` (file order kept)."""
    return np.sort(rng.choice(rows, size=min(want, rows), replace=False))


def _train_events(labels: np.ndarray, cfg: SynthLLPConfig, rng: np.random.Generator) -> np.ndarray:
    """(N, 2, 10, C) audio/visual per-second presence of the train clips' weak labels."""
    n, c = labels.shape
    t = np.arange(F.NUM_SEGMENTS)
    which = rng.random((n, c))
    heard = which >= cfg.p_visual_only  # (N, C)
    seen = (which < cfg.p_visual_only) | (which >= cfg.p_visual_only + cfg.p_audio_only)
    full = rng.random((n, 2, c)) < cfg.p_full
    length = rng.integers(1, F.NUM_SEGMENTS, size=(n, 2, c))
    start = (rng.random((n, 2, c)) * (F.NUM_SEGMENTS - length + 1)).astype(np.int64)
    start, end = np.where(full, 0, start), np.where(full, F.NUM_SEGMENTS, start + length)
    inside = (t[:, None] >= start[:, :, None]) & (t[:, None] < end[:, :, None])  # (N, 2, 10, C)
    present = np.stack([heard, seen], axis=1) & (labels > 0)[:, None]  # (N, 2, C)
    return (inside & present[:, :, None]).astype(np.float32)


def _render(y: np.ndarray, cfg: SynthLLPConfig, protos: dict[str, np.ndarray], bgs: dict[str, np.ndarray],
            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Features of N clips from their (N, 2, 10, C) audio/visual presence."""
    n = len(y)
    hard = np.where(rng.random(n) < cfg.p_hard, cfg.hard_amp, 1.0)  # (N,)
    out = {}
    for stream, mod in (("audio", 0), ("visual", 1), ("visual_st", 1)):
        dim = protos[stream].shape[1]
        jitter = rng.uniform(1 - cfg.amp_jitter, 1 + cfg.amp_jitter, size=(n, y.shape[-1]))  # (N, C)
        scale = cfg.event_amp * hard[:, None] * jitter  # (N, C)
        events = np.einsum("ntc,nc,cd->ntd", y[:, mod], scale, protos[stream])  # (N, 10, D)
        mix = np.cumsum(rng.standard_normal((n, F.NUM_SEGMENTS, len(bgs[stream]))), axis=1) / 3.0
        background = cfg.background_amp * mix @ bgs[stream]  # (N, 10, D)
        offset = cfg.offset_std * rng.standard_normal((n, 1, dim))
        base = events + background + offset  # (N, 10, D)
        if stream == "visual":  # every frame of a second shows that second, with its own noise
            base = np.repeat(base, cfg.frames_per_segment, axis=1)  # (N, 80, D)
        out[stream] = (base + cfg.noise_std * rng.standard_normal(base.shape)).astype(np.float32)
    return out


def write_synthetic_llp(out: Path, annotations: Path, videos: int = 200, seed: int = 0,
                        cfg: SynthLLPConfig | None = None) -> dict[str, Any]:
    """Write ``out/<the five LLP csv files>`` and ``out/feats/{vggish,res152,r2plus1d_18}/<id>.npy``.

    ``annotations``: a folder holding the official LLP csv files. Returns a summary (clips per split, dims).
    """
    cfg = cfg or SynthLLPConfig()
    if videos < 3:
        raise ValueError(f"videos must be >= 3 (one clip per split at least), got {videos}")
    annotations, out = Path(annotations), Path(out)
    rng = np.random.default_rng(seed)
    lists = {s: F.read_weak_list(annotations / f) for s, f in SPLIT_FILES.items()}
    want = [max(1, round(videos * f)) for f in cfg.split_fractions]
    picked = {s: _sample(len(w.filenames), k, rng) for (s, w), k in zip(lists.items(), want)}
    names = {s: [lists[s].filenames[i] for i in picked[s]] for s in lists}
    labels = {s: lists[s].labels[picked[s]] for s in lists}
    dense = {m: F.read_dense_events(annotations / f) for m, f in EVAL_FILES.items()}
    held_out = names["val"] + names["test"]
    y_eval = np.stack([F.segment_labels(dense[m], held_out)[0] for m in ("audio", "visual")], axis=1)
    y_train = _train_events(labels["train"], cfg, rng)
    c = len(F.CLASS_NAMES)
    dims = {"audio": cfg.audio_dim, "visual": cfg.visual_dim, "visual_st": cfg.st_dim}
    protos = {k: _prototypes(rng, c, d, cfg.family_size, cfg.family_share) for k, d in dims.items()}
    bgs = {k: _prototypes(rng, 4, d, 1, 0.0) for k, d in dims.items()}
    for folder in FEATURE_DIRS.values():
        (out / folder).mkdir(parents=True, exist_ok=True)
    clips = names["train"] + held_out
    y = np.concatenate([y_train, y_eval])
    for lo in range(0, len(clips), 64):
        feats = _render(y[lo : lo + 64], cfg, protos, bgs, rng)
        for i, name in enumerate(clips[lo : lo + 64]):
            for stream, folder in FEATURE_DIRS.items():
                np.save(out / folder / f"{name[:F.ID_CHARS]}.npy", feats[stream][i])
    _write_csvs(out, annotations, names, labels)
    meta = {"seed": seed, "config": asdict(cfg), "train_events": {
        name: {mod: [[F.CLASS_NAMES[k], int(t)] for t, k in zip(*np.nonzero(y_train[i, m]))]
               for m, mod in enumerate(("audio", "visual"))} for i, name in enumerate(names["train"])}}
    (out / "synth_meta.json").write_text(json.dumps(meta, sort_keys=True) + "\n")
    return {"clips": {s: len(v) for s, v in names.items()}, "dims": dims,
            "frames_per_segment": cfg.frames_per_segment}


def _write_csvs(out: Path, annotations: Path, names: dict[str, list[str]], labels: dict[str, np.ndarray]) -> None:
    """The sampled clips' rows of the split lists, and of the eval files the val/test clips' rows as they are."""
    for split, fname in SPLIT_FILES.items():
        rows = [f"{n}\t{','.join(F.CLASS_NAMES[k] for k in np.nonzero(lab)[0])}"
                for n, lab in zip(names[split], labels[split])]
        (out / fname).write_text("\n".join([chr(9).join(F.WEAK_HEADER), *rows]) + "\n")
    keep = set(names["val"] + names["test"])
    for fname in EVAL_FILES.values():
        lines = (annotations / fname).read_text(encoding="utf-8-sig").splitlines()
        kept = [line for line in lines[1:] if line.split("\t", 1)[0] in keep]
        (out / fname).write_text("\n".join([lines[0], *kept]) + "\n")
