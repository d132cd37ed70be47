"""Synthetic UnAV-100-style features in the exact on-disk layout of the `unav` dataset (I3D + VGGish names).

Why: the real UnAV-100 features are not reachable offline; tests, demos and the dense benchmark need data
that exercises the same loader and is learnable from video-level labels, but not trivially.

Generative model, per video with T steps on the I3D grid (step i centred at (i*stride + frames/2)/fps):
- An annotated event of class c adds ``a(t) * P_a[c]`` to audio and ``a(t) * P_v[c]`` to visual, where
  P_a, P_v are fixed random class prototypes and a(t) a smooth box (logistic onsets, ``onset_sec``) with
  independent per-modality amplitudes. Overlapping events overlap in the features (their evidence sums).
- Confusable classes: consecutive class ids form families of ``family_size`` (UnAV-100 lists its
  siblings together: man / woman / kid speaking, ...) whose prototypes share a family direction, so
  siblings have cosine ``family_share``: an event also lights up its siblings' directions.
- Distractors (not annotated) carry class evidence in ONE modality only (audible-only or visible-only);
  most of them (``p_distractor_same``) use a class of the video's own events, at other times and stronger
  than an event's per-modality evidence, so a model that adds audio and visual evidence localizes them as
  confident false positives, while audio-visual agreement rejects them. Same-class events and distractors
  keep ``min_gap`` apart (UnAV-100 never overlaps two events of one class).
- Nuisance per modality: a slowly varying mix of (low-rank) background prototypes and a per-video offset;
  plus AR(1) noise. "Hard" videos (``p_hard``) get weaker events and stronger noise.
With a real annotation file the real videos (seeded stratified sample), splits, durations, events and class
names are used; otherwise everything is sampled (``num_classes`` classes, 10-60 s, 1-4 events).
Also written: ``synth_meta.json`` (distractors and difficulty per video) and ``synth_prototypes.npz``
(the class prototypes), for diagnostics and tests; the loader ignores both.
Same arguments, same bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ANNOTATION_FILE = "unav100_annotations.json"
FEATURE_DIR = "av_features"
SUFFIXES = {"rgb": "_rgb.npy", "flow": "_flow.npy", "audio": "_vggish.npy"}


@dataclass
class SynthUnavConfig:
    """Knobs of the generator; the defaults are calibrated so weak MIL is clearly above 0 but far from 1."""

    num_classes: int = 100  # classes when sampling our own annotations
    audio_dim: int = 128  # `<id>_vggish.npy` width
    rgb_dim: int = 64  # `<id>_rgb.npy` width
    flow_dim: int = 64  # `<id>_flow.npy` width (visual = rgb + flow = 128, the issue-13 benchmark)
    feat_stride: int = 8  # the `unav` dataset defaults (I3D grid): 0.32 s per step
    num_frames: int = 24
    fps: float = 25.0
    min_duration: float = 10.0  # sampled video durations (s)
    max_duration: float = 60.0
    max_events: int = 4  # 1..max_events annotated events per sampled video
    p_full: float = 0.3  # chance a sampled event spans the whole video (UnAV: 36 % of videos)
    p_repeat: float = 0.4  # chance a further event repeats a class already in the video
    min_gap: float = 2.0  # seconds between events (and same-class distractors) of one class (UnAV p10: 2.3 s)
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train / validation / test when sampling
    event_amp: float = (
        3.0  # prototype scale of an event, per modality (evidence projected on its class direction)
    )
    amp_jitter: float = 0.35  # per-event, per-modality amplitude multiplier ~ U(1 - j, 1 + j)
    distractor_rate: float = 3.0  # mean single-modality distractors per video (Poisson; some find no room)
    distractor_amp: float = (
        5.0  # prototype scale of a distractor: above an event's per-modality evidence, below its A+V sum
    )
    p_distractor_same: float = 0.9  # distractor uses a class of the video's own events (else any class)
    onset_sec: float = 0.3  # logistic onset/offset time constant (s)
    family_size: int = 4  # confusable classes: consecutive ids in families of this size (1 = all distinct)
    family_share: float = 0.5  # cosine between the prototypes of two classes of one family
    p_hard: float = 0.3  # fraction of hard videos
    hard_amp: float = 0.5  # event/distractor scale in hard videos
    noise_std: float = 0.5  # std of the per-step AR(1) noise in easy videos
    hard_noise: float = 2.0  # noise std multiplier in hard videos
    ar_rho: float = 0.7  # AR(1) coefficient of the per-step noise
    num_background: int = 16  # background prototypes per modality (independent slow mixes)
    background_amp: float = 3.0  # scale of the slowly varying (low-rank, learnable) background mix
    offset_std: float = 0.5  # per-video constant offset, per dimension


def write_synthetic_unav(
    out: Path, videos: int, seed: int, annotations: Path | None = None, cfg: SynthUnavConfig | None = None
) -> dict[str, Any]:
    """Write ``out/unav100_annotations.json`` + ``out/av_features/<id>_{rgb,flow,vggish}.npy``.

    Returns a summary (videos, classes, events, distractors, subset sizes, dims).
    """
    cfg = cfg or SynthUnavConfig()
    if videos < 1:
        raise ValueError(f"videos must be >= 1, got {videos}")
    out = Path(out)
    rng = np.random.default_rng(seed)
    if annotations is not None:
        db, class_names = _sample_real(Path(annotations), videos, rng)
    else:
        db, class_names = _sample_own(cfg, videos, rng)
    cls_index = {n: i for i, n in enumerate(class_names)}
    n_cls = len(class_names)
    dim_v = cfg.rgb_dim + cfg.flow_dim
    proto_a = _class_prototypes(rng, n_cls, cfg.audio_dim, cfg.family_size, cfg.family_share)
    proto_v = _class_prototypes(rng, n_cls, dim_v, cfg.family_size, cfg.family_share)
    bg_a = _prototypes(rng, cfg.num_background, cfg.audio_dim)
    bg_v = _prototypes(rng, cfg.num_background, dim_v)
    feat_dir = out / FEATURE_DIR
    feat_dir.mkdir(parents=True, exist_ok=True)
    ids = list(db)
    meta: dict[str, Any] = {}
    chunk = 128
    for lo in range(0, len(ids), chunk):
        part = ids[lo : lo + chunk]
        feats_a, feats_v, info = _render(
            cfg, [db[v] for v in part], cls_index, proto_a, proto_v, bg_a, bg_v, rng
        )
        for i, vid in enumerate(part):
            np.save(feat_dir / f"{vid}{SUFFIXES['rgb']}", feats_v[i][:, : cfg.rgb_dim])
            np.save(feat_dir / f"{vid}{SUFFIXES['flow']}", feats_v[i][:, cfg.rgb_dim :])
            np.save(feat_dir / f"{vid}{SUFFIXES['audio']}", feats_a[i])
            meta[vid] = info[i]
    np.savez(
        out / "synth_prototypes.npz", audio=proto_a.astype(np.float32), visual=proto_v.astype(np.float32)
    )
    (out / ANNOTATION_FILE).write_text(json.dumps({"version": "unav100-synthetic", "database": db}, indent=1))
    (out / "synth_meta.json").write_text(
        json.dumps(
            {"seed": seed, "config": asdict(cfg), "class_names": class_names, "videos": meta}, indent=1
        )
    )
    subsets = [e["subset"] for e in db.values()]
    return {
        "videos": len(db),
        "classes": n_cls,
        "events": sum(len(e["annotations"]) for e in db.values()),
        "distractors": sum(len(m["distractors"]) for m in meta.values()),
        "subsets": {s: subsets.count(s) for s in ("train", "validation", "test")},
        "audio_dim": cfg.audio_dim,
        "visual_dim": dim_v,
        "out": str(out),
    }


def num_steps(duration: float, cfg: SynthUnavConfig) -> int:
    """Steps of an I3D-style extractor: windows of num_frames frames every feat_stride frames (>= 1)."""
    frames = int(math.floor(duration * cfg.fps))
    return max(1, (frames - cfg.num_frames) // cfg.feat_stride + 1)


def _prototypes(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """(n, dim) random unit directions: an amplitude-a source projects to a on its own direction, while
    unit-variance noise projects to std 1 on any direction, so ``event_amp`` is a per-step SNR."""
    p = rng.standard_normal((n, dim))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def _class_prototypes(rng: np.random.Generator, n: int, dim: int, family_size: int, share: float) -> np.ndarray:
    """(n, dim) unit class directions; classes i // family_size == j // family_size share a family
    direction, so two siblings have cosine ~``share`` (exactly, up to the random directions' overlap)."""
    if family_size < 1 or not 0.0 <= share < 1.0:
        raise ValueError(f"family_size must be >= 1 and family_share in [0, 1), got {family_size}, {share}")
    own = _prototypes(rng, n, dim)
    if family_size == 1 or share == 0.0:
        return own
    family = _prototypes(rng, -(-n // family_size), dim)[np.arange(n) // family_size]  # (n, dim)
    p = math.sqrt(share) * family + math.sqrt(1.0 - share) * own
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def _sample_real(path: Path, videos: int, rng: np.random.Generator) -> tuple[dict[str, Any], list[str]]:
    """A seeded sample of real videos, stratified by subset (proportional), in the file's order."""
    try:
        db = json.loads(path.read_text())["database"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: cannot read an annotation JSON with a 'database' ({exc})") from exc
    names: dict[int, str] = {}
    for e in db.values():
        for a in e.get("annotations", []):
            names.setdefault(int(a["label_id"]), str(a["label"]))
    class_names = [names[k] for k in sorted(names)]
    by_subset: dict[str, list[str]] = {}
    for vid, e in db.items():
        by_subset.setdefault(e["subset"], []).append(vid)
    total = len(db)
    videos = min(videos, total)
    subsets = sorted(by_subset)
    want = {s: int(math.floor(videos * len(by_subset[s]) / total)) for s in subsets}
    rest = videos - sum(want.values())
    for s in sorted(subsets, key=lambda s: -(videos * len(by_subset[s]) / total - want[s]))[:rest]:
        want[s] += 1
    keep: set[str] = set()
    for s in subsets:
        keep.update(rng.choice(by_subset[s], size=min(want[s], len(by_subset[s])), replace=False).tolist())
    return {v: db[v] for v in db if v in keep}, class_names


def _sample_own(
    cfg: SynthUnavConfig, videos: int, rng: np.random.Generator
) -> tuple[dict[str, Any], list[str]]:
    """Own annotations: same-class events never overlap and keep ``min_gap`` apart (as in UnAV-100)."""
    names = [f"class_{i:03d}" for i in range(cfg.num_classes)]
    subset_names = ("train", "validation", "test")
    fr = np.asarray(cfg.split_fractions, dtype=np.float64)
    db: dict[str, Any] = {}
    for i in range(videos):
        dur = round(float(rng.uniform(cfg.min_duration, cfg.max_duration)), 2)
        taken: dict[int, list[tuple[float, float]]] = {}
        anns = []
        for _ in range(int(rng.integers(1, cfg.max_events + 1))):
            span = None
            if taken and rng.random() < cfg.p_repeat:
                c = int(rng.choice(sorted(taken)))
                span = _free_span(rng, dur, taken[c], cfg.min_gap)
            if span is None:
                c = int(rng.integers(cfg.num_classes))
                span = (
                    _event_span(rng, dur, cfg.p_full)
                    if c not in taken
                    else _free_span(rng, dur, taken[c], cfg.min_gap)
                )
            if span is None:
                continue
            taken.setdefault(c, []).append(span)
            anns.append({"segment": [span[0], span[1]], "label": names[c], "label_id": c})
        subset = subset_names[int(rng.choice(3, p=fr / fr.sum()))]
        db[f"syn{i:06d}"] = {"duration": dur, "subset": subset, "annotations": anns}
    return db, names


def _event_span(rng: np.random.Generator, dur: float, p_full: float) -> tuple[float, float]:
    """Full video with prob p_full, else a log-uniform length in [1 s, dur] at a uniform position."""
    if rng.random() < p_full:
        return 0.0, dur
    length = float(np.exp(rng.uniform(np.log(1.0), np.log(dur))))
    s = float(rng.uniform(0.0, dur - length))
    return round(s, 2), round(min(dur, s + length), 2)


def _free_span(
    rng: np.random.Generator, dur: float, taken: list[tuple[float, float]], gap: float, tries: int = 20
) -> tuple[float, float] | None:
    """A partial span at least ``gap`` away from every span in ``taken``; None when none is found."""
    for _ in range(tries):
        s, e = _event_span(rng, dur, 0.0)
        if all(e + gap <= ts or s >= te + gap for ts, te in taken):
            return s, e
    return None


def _render(
    cfg: SynthUnavConfig,
    entries: list[dict[str, Any]],
    cls_index: dict[str, int],
    proto_a: np.ndarray,
    proto_v: np.ndarray,
    bg_a: np.ndarray,
    bg_v: np.ndarray,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[np.ndarray], list[dict[str, Any]]]:
    """Features of a chunk of videos at once: (T_i, Da) audio and (T_i, Dv) visual per video."""
    n = len(entries)
    n_cls = proto_a.shape[0]
    lengths = np.array([num_steps(float(e["duration"]), cfg) for e in entries])
    t_max = int(lengths.max())
    centres = (np.arange(t_max) * cfg.feat_stride + 0.5 * cfg.num_frames) / cfg.fps  # (T,) seconds
    hard = rng.random(n) < cfg.p_hard
    scale = np.where(hard, cfg.hard_amp, 1.0)
    noise = cfg.noise_std * np.where(hard, cfg.hard_noise, 1.0)
    # Flattened list of evidence sources: (video, class, start, end, amp_audio, amp_visual).
    rows: list[tuple[int, int, float, float, float, float]] = []
    info: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        dur = float(e["duration"])
        own: list[int] = []
        spans: dict[int, list[tuple[float, float]]] = {}
        for a in e["annotations"]:
            c = cls_index[str(a["label"])]
            own.append(c)
            spans.setdefault(c, []).append((float(a["segment"][0]), float(a["segment"][1])))
            amp = cfg.event_amp * scale[i] * rng.uniform(1 - cfg.amp_jitter, 1 + cfg.amp_jitter, size=2)
            rows.append((i, c, float(a["segment"][0]), float(a["segment"][1]), amp[0], amp[1]))
        dis = []
        for _ in range(int(rng.poisson(cfg.distractor_rate))):
            c, span = int(rng.integers(n_cls)), None
            if own and rng.random() < cfg.p_distractor_same:  # a class of the video, away from its events
                c = int(rng.choice(own))
                span = _free_span(rng, dur, spans[c], cfg.min_gap)
                if span is None:
                    continue
            if span is None:
                span = _free_span(rng, dur, spans.get(c, []), cfg.min_gap)
                if span is None:
                    continue
            amp = cfg.distractor_amp * scale[i] * rng.uniform(1 - cfg.amp_jitter, 1 + cfg.amp_jitter)
            modality = "audio" if rng.random() < 0.5 else "visual"
            rows.append(
                (
                    i,
                    c,
                    span[0],
                    span[1],
                    amp if modality == "audio" else 0.0,
                    amp if modality == "visual" else 0.0,
                )
            )
            dis.append({"segment": [span[0], span[1]], "class": c, "modality": modality})
        info.append({"hard": bool(hard[i]), "distractors": dis})
    src = np.array(rows, dtype=np.float64).reshape(-1, 6)
    vi, ci = src[:, 0].astype(np.int64), src[:, 1].astype(np.int64)
    tau = cfg.onset_sec
    act = _sigmoid((centres[None] - src[:, 2:3]) / tau) * _sigmoid(
        (src[:, 3:4] - centres[None]) / tau
    )  # (S, T)
    cas_a = np.zeros((n, n_cls, t_max))
    cas_v = np.zeros((n, n_cls, t_max))
    np.add.at(cas_a, (vi, ci), act * src[:, 4:5])
    np.add.at(cas_v, (vi, ci), act * src[:, 5:6])
    # Nuisance per modality: a slowly varying mix of background prototypes + a per-video offset.
    k_bg = bg_a.shape[0]
    w_a = _smooth(rng.standard_normal((n, t_max, k_bg)), 0.9) * cfg.background_amp / math.sqrt(k_bg)
    w_v = _smooth(rng.standard_normal((n, t_max, k_bg)), 0.9) * cfg.background_amp / math.sqrt(k_bg)
    off_a = rng.standard_normal((n, 1, proto_a.shape[1])) * cfg.offset_std
    off_v = rng.standard_normal((n, 1, proto_v.shape[1])) * cfg.offset_std
    aud = cas_a.transpose(0, 2, 1) @ proto_a + w_a @ bg_a + off_a
    vis = cas_v.transpose(0, 2, 1) @ proto_v + w_v @ bg_v + off_v
    aud += _smooth(rng.standard_normal(aud.shape), cfg.ar_rho) * noise[:, None, None]
    vis += _smooth(rng.standard_normal(vis.shape), cfg.ar_rho) * noise[:, None, None]
    a32, v32 = aud.astype(np.float32), vis.astype(np.float32)
    return [a32[i, : lengths[i]] for i in range(n)], [v32[i, : lengths[i]] for i in range(n)], info


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _smooth(x: np.ndarray, rho: float) -> np.ndarray:
    """Stationary AR(1) along axis 1 with unit variance: y_t = rho y_{t-1} + sqrt(1 - rho^2) x_t."""
    y = np.empty_like(x)
    y[:, 0] = x[:, 0]
    c = math.sqrt(1.0 - rho * rho)
    for t in range(1, x.shape[1]):  # bounded by the steps of the longest video in the chunk
        y[:, t] = rho * y[:, t - 1] + c * x[:, t]
    return y
