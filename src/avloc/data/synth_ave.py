"""Synthetic AVE data in exactly the official file layout, learnable but not trivially.

``write_synthetic_ave(out, videos, seed)`` writes ``Annotations.txt``, ``audio_feature.h5`` (N, 10, 128),
``visual_feature.h5`` (N, 10, 7, 7, 512), ``labels.h5`` (N, 10, 29), ``labels_closs.h5``, ``mil_labels.h5``,
``{train,val,test}_order.h5`` (split in the official 3339/402/402 proportions) and the weak setting's
background-only ``*_noisy.h5`` files, with the official keys, so the ``ave`` loader reads it unchanged.
Same seed -> same bytes.

Generative model (one "world" of prototypes fixed by ``WORLD_SEED``; ``seed`` only draws the videos):

* **Classes.** The 28 real AVE names with the real per-class counts (scaled to ``videos``), lines grouped
  by class like the official file. Each class has one non-negative, sparse prototype per modality (like
  VGGish / VGG-19 pool5 ReLU features). Classes come in families that share most of a prototype, and the
  sharing differs per modality, so each modality has its own confusions: vehicles sound alike (audio
  share 0.8) but look different (0.5); plucked strings look alike (visual 0.8); male and female speech
  look alike (visual 0.9, both "a person") and sound partly alike (audio 0.6).
* **Events.** Like AVE: about 2/3 of the videos hold the event over the full 0-10 s, the others over a
  random interval of 2-9 s (real length histogram). A segment is an event only when the object is both
  audible and visible. Outside the interval a partial video is either clean (40%), or the sound carries
  on while the object is off screen (30%, audible but not visible), or the object stays in view but
  silent (30%, visible but silent); these segments are background, so only audio-visual agreement
  labels them right.
* **Audio** (10, 128): ``relu(gain * (scene ambience + s_a * on_a(t) * A_a * P_a[c] + distractor)
  + style_a + AR(1) noise - threshold)``.
* **Visual** (10, 7, 7, 512): a scene background (scene prototype times a smooth random spatial map,
  plus a static per-video texture of sparse, exponential spikes), and the sounding object as a blob of
  1-4 cells at a random place that persists over the video with small random drift, adding
  ``s_v * on_v(t) * A_v * P_v[c]`` on its cells; the same gain / style / AR(1) noise / threshold / ReLU
  as audio.
* **Nuisance.** Per video: a global gain (loudness / brightness), an additive style vector per modality,
  one of 8 scene types shared by both modalities; noise is AR(1) over the 10 segments (rho 0.7).
* **Easy and hard videos.** Signal strength is drawn per video and per modality independently (75% easy,
  25% hard, where hard is near the noise), jittered per segment, so one modality is often weak and the
  other has to carry the decision.
* **Distractors.** 40% of videos show a silent object of another class elsewhere in the frame (about as
  strong as the sounding one, so vision alone cannot tell which object sounds), 15% play a faint
  off-screen sound of another class over some interval; and 30% of the videos that have background
  segments free of any single-modality event show an audible and visible out-of-vocabulary (non-AVE)
  event there instead.
* **Noisy videos** (weak setting): ``noisy`` extra videos (default ``round(178 * videos / 4143)``) holding
  only out-of-vocabulary events, labelled background, like AVE's 178 AudioSet negatives.

Intended difficulty: PSP-like models reach roughly 60-85 % segment accuracy; audio-only or visual-only
cues are clearly worse than both together (see ``tests/test_synth_ave.py`` for a cheap probe).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from avloc.data import ave_labels as L

WORLD_SEED = 20180908  # fixes the prototypes, so datasets with different seeds share one world
AUDIO_DIM, VISUAL_DIM, GRID, T = 128, 512, 7, L.NUM_SEGMENTS
CHUNK_VIDEOS = 32  # videos rendered per chunk; part of the byte-exact output, do not change lightly
H5_LIBVER = ("earliest", "v110")  # fixed HDF5 format version -> same bytes on every h5py build

# Per-class line counts of the official Annotations.txt (class order of AVE_CLASSES).
AVE_CLASS_COUNTS = (188, 176, 171, 184, 188, 175, 178, 187, 172, 163, 182, 138, 102, 99, 186, 176, 160, 183,
                    100, 83, 69, 160, 60, 64, 180, 109, 154, 156)
OFFICIAL_SPLIT = (3339, 402, 402)  # train / val / test rows of the official split
OFFICIAL_NOISY, OFFICIAL_VIDEOS = 178, 4143
P_FULL = 2750 / 4143  # share of official videos whose event spans 0-10 s
LENGTH_WEIGHTS = (214, 220, 217, 196, 200, 139, 111, 95)  # official counts of partial lengths 2..9 s

# Families: (member class indices, audio share, visual share) of the prototype they have in common.
FAMILIES = (
    ((1, 5, 19), 0.6, 0.9),  # speech / baby: people look alike
    ((3, 4, 6, 11, 13, 15, 20), 0.8, 0.5),  # engines sound alike, vehicles look different
    ((7, 9, 14, 17, 27), 0.5, 0.8),  # plucked / bowed strings look alike
    ((8, 12, 26), 0.6, 0.5),  # wind instruments
    ((2, 18, 22, 23, 25), 0.5, 0.6),  # animals
    ((0, 10, 16, 21, 24), 0.3, 0.3),  # everything else
)
N_SCENES, N_OOV = 8, 6  # scene types; out-of-vocabulary event classes (noisy videos, distractors)
RHO = 0.7  # AR(1) correlation of the noise between consecutive segments

# Amplitudes (pre-ReLU units). Audio lands near real VGGish (mean ~0.2, ~60% zeros, max ~4).
AUDIO = dict(ambience=1.5, event=3.9, noise=0.45, style=0.22, threshold=0.45, density=0.3)
VISUAL = dict(ambience=1.6, texture=0.4, texture_density=0.03, event=10.0, noise=0.3, style=0.15,
              threshold=0.45, density=0.06)
EASY_SHARE = 0.75  # share of (video, modality) pairs with a strong signal
EASY_STRENGTH, HARD_STRENGTH = (0.7, 1.3), (0.15, 0.5)  # uniform ranges of the per-video signal strength
MODES = (0.4, 0.3, 0.3)  # partial videos outside the event: clean / audible-not-visible / visible-silent
SECONDARY = (0.45, 0.4, 0.15)  # none / silent visual distractor / faint audio distractor
P_OOV = 0.3  # chance that a video with event-free background segments shows an out-of-vocabulary event there
# Uniform strength ranges of the secondary source, by kind (index 0 unused).
SECONDARY_STRENGTH = ((0.0, 0.0), (0.5, 1.0), (0.3, 0.6), (0.6, 1.2))
# Blob shapes: cell offsets from the top-left cell (unused slots repeat (0, 0)) and their probabilities.
BLOBS = np.array([
    [(0, 0), (0, 0), (0, 0), (0, 0)],  # 1 cell
    [(0, 0), (0, 1), (0, 0), (0, 0)],  # 2 cells, horizontal
    [(0, 0), (1, 0), (0, 0), (0, 0)],  # 2 cells, vertical
    [(0, 0), (0, 1), (1, 0), (0, 0)],  # 3 cells, L
    [(0, 0), (0, 1), (1, 0), (1, 1)],  # 4 cells, square
])
BLOB_P = (0.25, 0.125, 0.125, 0.25, 0.25)
DRIFT_P = 0.1  # chance per segment and axis that the object moves one cell


@dataclass
class World:
    """Prototypes shared by every synthetic dataset: rows 0..27 AVE classes, 28.. out-of-vocabulary."""

    audio: np.ndarray  # (28 + N_OOV, AUDIO_DIM) unit-norm, non-negative
    visual: np.ndarray  # (28 + N_OOV, VISUAL_DIM)
    scene_audio: np.ndarray  # (N_SCENES, AUDIO_DIM)
    scene_visual: np.ndarray  # (N_SCENES, VISUAL_DIM)


def _sparse(rng: np.random.Generator, n: int, dim: int, density: float) -> np.ndarray:
    """(n, dim) non-negative, sparse, unit-norm rows."""
    x = (rng.random((n, dim)) < density) * rng.gamma(2.0, 1.0, (n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_world() -> World:
    rng = np.random.default_rng(WORLD_SEED)
    protos = {}
    for name, dim, dens, col in (("audio", AUDIO_DIM, AUDIO["density"], 1),
                                 ("visual", VISUAL_DIM, VISUAL["density"], 2)):
        own = _sparse(rng, L.BACKGROUND + N_OOV, dim, dens)
        fam = _sparse(rng, len(FAMILIES), dim, dens)
        p = own.copy()
        for f, fam_def in enumerate(FAMILIES):
            share = fam_def[col]
            idx = list(fam_def[0])
            p[idx] = np.sqrt(share) * fam[f] + np.sqrt(1 - share) * own[idx]
        protos[name] = p / np.linalg.norm(p, axis=1, keepdims=True)
    return World(protos["audio"], protos["visual"], _sparse(rng, N_SCENES, AUDIO_DIM, 0.5),
                 _sparse(rng, N_SCENES, VISUAL_DIM, 0.5))


# ----------------------------------------------------------------------------------------- layout
def class_counts(videos: int) -> np.ndarray:
    """(28,) videos per class, proportional to the official counts (largest remainder)."""
    w = np.asarray(AVE_CLASS_COUNTS, dtype=np.float64)
    exact = videos * w / w.sum()
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(-(exact - counts), kind="stable")[: videos - counts.sum()]] += 1
    return counts


def split_sizes(videos: int) -> tuple[int, int, int]:
    """Train / val / test sizes in the official proportions (val, test >= 1 from 3 videos on)."""
    val = round(videos * OFFICIAL_SPLIT[1] / OFFICIAL_VIDEOS)
    if videos >= 3:
        val = max(1, val)
    return videos - 2 * val, val, val


def default_noisy(videos: int) -> int:
    """Noisy background videos for a dataset of ``videos``: the official 178 per 4143, >= 2 from 20 on."""
    noisy = round(OFFICIAL_NOISY * videos / OFFICIAL_VIDEOS)
    return max(2, noisy) if videos >= 20 else noisy


def _intervals(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Event [start, end) per video: full 0-10 with P_FULL, else the real length histogram."""
    full = rng.random(n) < P_FULL
    w = np.asarray(LENGTH_WEIGHTS, dtype=np.float64)
    length = rng.choice(np.arange(2, 2 + len(w)), size=n, p=w / w.sum())
    start = (rng.random(n) * (T - length + 1)).astype(np.int64)
    start = np.where(full, 0, start)
    end = np.where(full, T, start + length)
    return start, end


# ----------------------------------------------------------------------------------------- per-video draws
def _draw_videos(rng: np.random.Generator, category: np.ndarray, start: np.ndarray, end: np.ndarray,
                 noisy: int) -> dict[str, np.ndarray]:
    """Everything random about each video except the per-element noise (small arrays, N + noisy rows).

    Noisy videos (the last ``noisy`` rows) have no AVE event: only an out-of-vocabulary one.
    """
    n = len(category) + noisy
    t = np.arange(T)
    cat = np.concatenate([category, np.zeros(noisy, np.int64)])
    s = np.concatenate([start, np.zeros(noisy, np.int64)])
    e = np.concatenate([end, np.zeros(noisy, np.int64)])  # noisy: empty interval
    is_noisy = np.arange(n) >= len(category)
    inside = (t >= s[:, None]) & (t < e[:, None])
    outside = ~inside & ~is_noisy[:, None]
    dist = np.where(t < s[:, None], s[:, None] - t, t - e[:, None] + 1)  # segments away from the event
    mode = rng.choice(3, size=n, p=MODES)
    ext = outside & (dist <= rng.integers(1, T + 1, size=n)[:, None])
    on_a = inside | (ext & (mode == 1)[:, None])
    on_v = inside | (ext & (mode == 2)[:, None])

    # Secondary source: 0 none, 1 silent visual distractor, 2 faint audio distractor, 3 OOV event. The OOV
    # event fills the background segments that carry no single-modality event (noisy videos: an interval).
    free = outside & ~on_a & ~on_v
    kind = rng.choice(3, size=n, p=SECONDARY)
    kind = np.where(free.any(1) & (rng.random(n) < P_OOV), 3, kind)
    kind = np.where(is_noisy, 3, kind)
    other = (cat + rng.integers(1, L.BACKGROUND, size=n)) % L.BACKGROUND  # a different AVE class
    sec_cls = np.where(kind == 3, L.BACKGROUND + rng.integers(0, N_OOV, size=n), other)
    o_s, o_e = _intervals(rng, n)
    interval = (t >= o_s[:, None]) & (t < o_e[:, None])
    oov = (kind == 3)[:, None] & np.where(is_noisy[:, None], interval, free)
    sec_a = ((kind == 2)[:, None] & interval) | oov
    sec_v = (kind == 1)[:, None] | oov
    lo, hi = np.asarray(SECONDARY_STRENGTH).T
    sec_strength = rng.uniform(lo[kind], hi[kind])

    def strength() -> np.ndarray:
        easy = rng.random(n) < EASY_SHARE
        g = np.where(easy, rng.uniform(*EASY_STRENGTH, size=n), rng.uniform(*HARD_STRENGTH, size=n))
        return g[:, None] * rng.uniform(0.8, 1.2, size=(n, T))  # per-segment jitter

    # The object's blob: shape, start cell, drift; the secondary object's static blob.
    shape = rng.choice(len(BLOBS), size=n, p=BLOB_P)
    moves = rng.choice([-1, 0, 1], size=(n, T, 2), p=[DRIFT_P / 2, 1 - DRIFT_P, DRIFT_P / 2])
    moves[:, 0] = 0
    pos = np.clip(rng.integers(0, GRID - 1, size=(n, 1, 2)) + np.cumsum(moves, axis=1), 0, GRID - 2)
    return dict(
        cat=cat, on_a=on_a, on_v=on_v, g_a=strength(), g_v=strength(),
        sec_cls=sec_cls, sec_a=sec_a, sec_v=sec_v, sec_strength=sec_strength,
        shape=shape, pos=pos, sec_shape=rng.choice(3, size=n), sec_pos=rng.integers(0, GRID - 1, size=(n, 2)),
        scene=rng.integers(0, N_SCENES, size=n), gain=rng.uniform(0.7, 1.3, size=n),
        ramp=rng.uniform(-0.4, 0.4, size=(n, 2)), weight=rng.uniform(0.7, 1.0, size=(n, GRID, GRID)),
    )


def _blob_mask(shape: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """(B, S, GRID, GRID) 0/1 cells of blob ``shape`` (B,) whose top-left cell is ``pos`` (B, S, 2)."""
    b, steps = pos.shape[:2]
    off = BLOBS[shape]  # (B, 4, 2)
    ys = pos[:, :, None, 0] + off[:, None, :, 0]  # (B, S, 4)
    xs = pos[:, :, None, 1] + off[:, None, :, 1]
    mask = np.zeros((b, steps, GRID, GRID), np.float32)
    bi = np.broadcast_to(np.arange(b)[:, None, None], ys.shape)
    si = np.broadcast_to(np.arange(steps)[None, :, None], ys.shape)
    mask[bi, si, ys, xs] = 1.0
    return mask


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """``scale`` * standard normal noise of ``shape`` (B, T, ...), AR(1)-correlated along T with ``RHO``.

    Built in place, one segment slice at a time (n_t = rho n_{t-1} + sqrt(1 - rho^2) e_t): one pass over
    the array instead of a (T, T) matmul, which matters for the 4 GB visual file.
    """
    x = rng.standard_normal(shape, dtype=np.float32)
    x *= scale
    x[:, 1:] *= np.float32(np.sqrt(1 - RHO**2))
    for t in range(1, T):
        x[:, t] += np.float32(RHO) * x[:, t - 1]
    return x


def _render(world: World, v: dict[str, np.ndarray],
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Audio (B, T, 128) and visual (B, T, 7, 7, 512) float32 for the videos in ``v`` (one chunk)."""
    b = len(v["cat"])
    gain = v["gain"].astype(np.float32)

    # Audio: ambience + event + faint secondary sound, then style, AR(1) noise, threshold, ReLU.
    a = AUDIO["ambience"] * world.scene_audio[v["scene"]][:, None, :]
    a = a + (AUDIO["event"] * v["g_a"] * v["on_a"])[..., None] * world.audio[v["cat"]][:, None, :]
    sec = AUDIO["event"] * v["sec_strength"][:, None] * v["sec_a"]  # (B, T)
    a = a + sec[..., None] * world.audio[v["sec_cls"]][:, None]
    a = gain[:, None, None] * a + AUDIO["style"] * rng.standard_normal((b, 1, AUDIO_DIM), dtype=np.float32)
    a = a + _ar1(rng, (b, T, AUDIO_DIM), AUDIO["noise"]) - AUDIO["threshold"]
    a = np.maximum(a, 0).astype(np.float32)

    # Visual objects: the sounding object is a drifting blob carrying its class prototype while visible,
    # the secondary object a static blob; one batched matmul paints both: (B, T*G*G, 2) @ (B, 2, D).
    obj = _blob_mask(v["shape"], v["pos"]) * v["weight"][:, None]  # (B, T, G, G)
    obj *= (VISUAL["event"] * v["g_v"] * v["on_v"])[..., None, None]
    sec = _blob_mask(v["sec_shape"], np.broadcast_to(v["sec_pos"][:, None], (b, 1, 2)))  # (B, 1, G, G)
    sec = sec * (VISUAL["event"] * v["sec_strength"][:, None] * v["sec_v"])[..., None, None]  # (B, T, G, G)
    cells = np.stack([obj, sec], axis=-1).reshape(b, T * GRID * GRID, 2).astype(np.float32)
    protos = np.stack([world.visual[v["cat"]], world.visual[v["sec_cls"]]], axis=1)  # (B, 2, D)
    x = np.matmul(cells, protos).reshape(b, T, GRID, GRID, VISUAL_DIM)
    # Scene: scene prototype times a smooth spatial ramp, plus a static per-video cell texture.
    grid = (np.arange(GRID) - (GRID - 1) / 2) / ((GRID - 1) / 2)
    ramp = 0.6 + v["ramp"][:, 0, None, None] * grid[:, None] + v["ramp"][:, 1, None, None] * grid[None, :]
    scene = VISUAL["ambience"] * ramp[..., None] * world.scene_visual[v["scene"]][:, None, None, :]
    scene = scene.astype(np.float32)
    # Static per-video texture: sparse spikes (share texture_density of the cells x channels), exponential
    # heights; u / density < 1 on the spikes keeps -log1p(-x) finite.
    u = rng.random((b, GRID, GRID, VISUAL_DIM), dtype=np.float32) / np.float32(VISUAL["texture_density"])
    scene -= VISUAL["texture"] * np.log1p(-np.where(u < 1, u, 0))
    x += scene[:, None]
    x *= gain[:, None, None, None, None]
    style = VISUAL["style"] * rng.standard_normal((b, 1, 1, 1, VISUAL_DIM), dtype=np.float32)
    x += style - np.float32(VISUAL["threshold"])
    x += _ar1(rng, (b, T, GRID, GRID, VISUAL_DIM), VISUAL["noise"])
    np.maximum(x, 0, out=x)
    return a, x


# ----------------------------------------------------------------------------------------- writing
def _h5(path: Path, key: str, data: np.ndarray) -> None:
    """Write one contiguous, untimestamped dataset (byte-reproducible)."""
    with h5py.File(path, "w", libver=H5_LIBVER) as f:
        f.create_dataset(key, data=data, track_times=False)


def _write_features(out: Path, names: tuple[str, str], world: World, v: dict[str, np.ndarray], rows: slice,
                    seed: int, stream: int, dtype: str) -> None:
    """Render videos ``rows`` of ``v`` CHUNK_VIDEOS at a time straight into the audio / visual files."""
    n = rows.stop - rows.start
    with h5py.File(out / names[0], "w", libver=H5_LIBVER) as fa, \
            h5py.File(out / names[1], "w", libver=H5_LIBVER) as fv:
        da = fa.create_dataset("avadataset", shape=(n, T, AUDIO_DIM), dtype=dtype, track_times=False)
        dv = fv.create_dataset("avadataset", shape=(n, T, GRID, GRID, VISUAL_DIM), dtype=dtype,
                               track_times=False)
        for c, a0 in enumerate(range(0, n, CHUNK_VIDEOS)):
            a1 = min(n, a0 + CHUNK_VIDEOS)
            chunk = {k: val[rows.start + a0 : rows.start + a1] for k, val in v.items()}
            audio, visual = _render(world, chunk, np.random.default_rng([seed, stream, c]))
            da[a0:a1] = audio.astype(dtype, copy=False)
            dv[a0:a1] = visual.astype(dtype, copy=False)


def write_synthetic_ave(out: Path, videos: int, seed: int, dtype: str = "float64", noisy: int = -1) -> None:
    """Write a synthetic AVE dataset with ``videos`` rows in the official layout under ``out``.

    dtype: on-disk feature dtype ("float64" like the official files, or "float32": half the size).
    noisy: background-only extra videos; -1 = round(178 * videos / 4143) (>= 2 from 20 videos on), 0 = none.
    """
    if videos < 1:
        raise ValueError(f"videos must be >= 1, got {videos}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    if noisy < 0:
        noisy = default_noisy(videos)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0])
    category = np.repeat(np.arange(L.BACKGROUND), class_counts(videos))
    start, end = _intervals(rng, videos)
    ids = [f"syn{i + 1:05d}" for i in range(videos)]
    L.write_annotations(out / "Annotations.txt", category, ids, start, end)

    perm = rng.permutation(videos)
    n_train, n_val, _ = split_sizes(videos)
    for name, order in (("train", perm[:n_train]), ("val", perm[n_train : n_train + n_val]),
                        ("test", perm[n_train + n_val :])):
        _h5(out / f"{name}_order.h5", "order", order.astype(np.int64))

    ann = L.Annotations(category, ids, ["good"] * videos, start, end, out / "Annotations.txt")
    seg = L.segment_labels(ann)
    _h5(out / "labels.h5", "avadataset", L.one_hot_labels(seg).numpy())
    _h5(out / "labels_closs.h5", "avadataset", L.event_mask(ann).numpy())
    _h5(out / "mil_labels.h5", "avadataset", L.mil_labels(ann).numpy())

    world = make_world()
    v = _draw_videos(rng, category, start, end, noisy)
    _write_features(out, ("audio_feature.h5", "visual_feature.h5"), world, v, slice(0, videos), seed, 1,
                    dtype)
    if noisy:
        _write_features(out, ("audio_feature_noisy.h5", "visual_feature_noisy.h5"), world, v,
                        slice(videos, videos + noisy), seed, 2, dtype)
        bg = np.zeros((noisy, L.NUM_CLASSES), np.float32)
        bg[:, L.BACKGROUND] = 1.0
        _h5(out / "labels_noisy.h5", "avadataset", bg)
