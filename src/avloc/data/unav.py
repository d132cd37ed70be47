"""UnAV-100 and ActivityNet-1.3 for dense (W-DAVEL) localization: annotation JSON + per-video .npy features.

Layout (ActionFormer / UnAV convention)::

    <root>/<annotations>                         {"database": {id: {duration, subset, annotations: [...]}}}
    <root>/<visual_dir>/<id><visual_suffixes[k]>  (T, D_k) float, concatenated along D -> visual (T, Dv)
    <root>/<audio_dir>/<id><audio_suffixes[k]>    (T', D_k) float, concatenated along D -> audio (T, Da)

Feature presets (put them in the ``data`` section of a config):

    I3D + VGGish (original UnAV-100 release; the defaults below):
        visual_suffixes [_rgb.npy, _flow.npy] (1024 + 1024 = 2048), audio_suffixes [_vggish.npy] (128),
        feat_stride 8, num_frames 24, fps 25  -> 0.32 s per step, centre of step i = (8 i + 12) / 25 s
    ONE-PEACE (CCNet / UniAV release for UnAV-100):
        visual_suffixes [_one_peace_video_finetune.npy] (1536), audio_suffixes [_one_peace_audio.npy] (1536),
        feat_stride 4, num_frames 16, fps 16  -> 0.25 s per step
    ONE-PEACE ActivityNet-1.3 (UniAV; dataset name "anet"): feat_stride 8, num_frames 16, fps 16 (0.5 s)

Time grid: step i of the (visual) features is centred at ``(i * feat_stride + 0.5 * num_frames) / fps``
seconds (ActionFormer FAQ). The visual stream (the first visual file) is the reference: every other stream
(flow, audio) whose length differs is linearly resampled onto it over the same time span (UnAV issue #7:
VGGish at another hop gives 32 instead of 112 steps for the same video; truncating would drop most of it).
Videos longer than ``max_seq_len`` are resampled or truncated (``long_policy``); resampling stretches
that video's step, which is kept per video in ``step_sec`` so predictions still map to seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.data.base import DataError, InMemoryDataset
from avloc.data.unav_annotations import checked_events, given_classes
from avloc.formats.activitynet import Segments, read_ground_truth
from avloc.registry import DATASETS


def grid_to_seconds(pos: np.ndarray | float, feat_stride: float, num_frames: float, fps: float) -> np.ndarray:
    """Feature index (may be fractional) -> seconds: ``(pos * feat_stride + 0.5 * num_frames) / fps``."""
    return (np.asarray(pos, dtype=np.float64) * feat_stride + 0.5 * num_frames) / fps


def resample(x: np.ndarray, length: int) -> np.ndarray:
    """Linear interpolation of ``x`` (T, D) to (length, D) over the same span (first/last steps kept)."""
    t = x.shape[0]
    if t == length:
        return x
    if t == 1 or length == 1:
        return np.repeat(x[:1] if length == 1 else x, length, axis=0)[:length].astype(np.float32)
    pos = np.linspace(0.0, t - 1, length)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo)[:, None].astype(np.float32)
    return (x[lo] * (1 - w) + x[hi] * w).astype(np.float32)


STORAGE = {"float32": torch.float32, "float16": torch.float16}  # data.storage: features held in RAM


class Rows:
    """A growing (rows, D) tensor in the storage dtype, reserved up front for ``capacity`` rows. Pages never
    written cost no RAM, so the features are held once (plus one video) instead of as per-video arrays and
    then their concatenation; outgrowing the reservation (a bound that did not hold) doubles it, copying once."""

    def __init__(self, capacity: int, dtype: torch.dtype) -> None:
        self.capacity, self.dtype, self.used = max(1, capacity), dtype, 0
        self.data: torch.Tensor | None = None

    def append(self, x: np.ndarray) -> None:
        """Copy (T, D) ``x`` in, converted to the storage dtype."""
        if self.data is None:
            self.data = torch.empty((self.capacity, x.shape[1]), dtype=self.dtype)
        if self.used + len(x) > len(self.data):
            grown = torch.empty((max(2 * len(self.data), self.used + len(x)), x.shape[1]), dtype=self.dtype)
            grown[: self.used] = self.data[: self.used]
            self.data = grown
        self.data[self.used : self.used + len(x)] = torch.from_numpy(x)
        self.used += len(x)

    def tensor(self) -> torch.Tensor:
        """The (used, D) rows written so far."""
        if self.data is None:
            raise DataError("no features were read")
        return self.data[: self.used]


@DATASETS.register("unav")
class UnAVDataset(InMemoryDataset):
    """Untrimmed videos with audio (B, T, Da) and visual (B, T, Dv) features and multi-hot video labels.

    Everything is read and checked once into RAM (one flat (sum T, D) tensor per modality, in the ``storage``
    dtype, converted to float32 per batch); every
    problem is a DataError naming the file. ``splits`` maps train/val/test to the videos of
    train_subset/val_subset/test_subset. Per-video metadata for the evaluator: ``video_ids``,
    ``durations`` (N,), ``lengths`` (N,) steps, ``step_sec`` (N,) and ``offset_sec`` (N,) (time of step
    i = offset + i * step), ``class_names``, and :meth:`ground_truth`.
    """

    task = "dense"

    @dataclass
    class Config:
        """Defaults = the original UnAV-100 release (I3D rgb+flow 2048-d, VGGish 128-d, 0.32 s steps).

        ONE-PEACE UnAV-100 preset: visual_suffixes [_one_peace_video_finetune.npy], audio_suffixes
        [_one_peace_audio.npy], visual_dim 1536, audio_dim 1536, feat_stride 4, num_frames 16, fps 16.
        """

        annotations: str = "unav100_annotations.json"  # JSON path, relative to the data root unless absolute
        visual_dir: str = "av_features"  # folder of visual .npy files (relative to root unless absolute)
        audio_dir: str = "av_features"  # folder of audio .npy files
        visual_suffixes: list[str] = field(
            default_factory=lambda: ["_rgb.npy", "_flow.npy"]
        )  # concatenated along D
        audio_suffixes: list[str] = field(default_factory=lambda: ["_vggish.npy"])  # concatenated along D
        visual_dim: int = (
            0  # expected total visual dim (I3D 2048, ONE-PEACE 1536); 0 = take from the first video
        )
        audio_dim: int = (
            0  # expected total audio dim (VGGish 128, ONE-PEACE 1536); 0 = take from the first video
        )
        feat_stride: int = 8  # frames between feature steps (I3D 8, ONE-PEACE 4)
        num_frames: int = 24  # frames per feature window (I3D 24, ONE-PEACE 16); step centre = +num_frames/2
        fps: float = 25.0  # frame rate the features were extracted at (I3D 25, ONE-PEACE 16)
        max_seq_len: int = 0  # longest kept sequence in steps; 0 = keep every video at full length
        long_policy: str = (
            "resample"  # longer than max_seq_len: resample (stretch step) | truncate (drop tail)
        )
        train_subset: str = "train"  # JSON subset name of the train split (ActivityNet: training)
        val_subset: str = "validation"  # JSON subset of the val split (model selection)
        test_subset: str = (
            "test"  # JSON subset of the test split (ActivityNet: validation; test has no labels)
        )
        class_names: list[str] = field(default_factory=list)  # fixed class list; [] = from the annotations
        duration_tolerance: float = (
            0.5  # seconds an annotation may pass [0, duration] (then clipped); more is an error
        )
        grid_tolerance: float = (
            0.2  # |feature span - duration| allowed, as a fraction of duration (+2 steps); <= 0 disables
        )
        skip_missing: bool = False  # drop videos whose feature files are missing (counted) instead of failing
        limit: int = 0  # keep only the first N videos of each split (0 = all): smoke tests and quick runs
        storage: str = "float32"  # features in RAM: float32 | float16 (half the RAM; float32 per batch)

        def __post_init__(self) -> None:
            if self.long_policy not in ("resample", "truncate"):
                raise ValueError(f"long_policy must be resample or truncate, got {self.long_policy!r}")
            if self.storage not in STORAGE:
                raise ValueError(f"storage must be one of {sorted(STORAGE)}, got {self.storage!r}")
            if not self.visual_suffixes or not self.audio_suffixes:
                raise ValueError("visual_suffixes and audio_suffixes need at least one file suffix each")
            if self.feat_stride <= 0 or self.fps <= 0 or self.num_frames < 0:
                raise ValueError("feat_stride and fps must be > 0 and num_frames >= 0")

    def __init__(self, cfg: Config, root: str | Path) -> None:
        super().__init__(cfg, root)
        ann_path = self._path(cfg.annotations)
        gt = read_ground_truth(ann_path)
        self.class_names = given_classes(cfg.class_names) or gt.class_names()
        events = checked_events(gt, self.class_names, cfg.duration_tolerance)  # video = index into gt
        wanted = {"train": cfg.train_subset, "val": cfg.val_subset, "test": cfg.test_subset}
        chosen: dict[str, list[str]] = {}
        for split, subset in wanted.items():
            ids = [v for v, s in zip(gt.video_ids, gt.subsets) if s == subset]
            if not ids:
                found = sorted({str(s) for s in gt.subsets})
                raise DataError(
                    f"{ann_path}: no video in subset {subset!r} ({split} split); subsets: {found}"
                )
            chosen[split] = ids[: cfg.limit] if cfg.limit > 0 else ids
        order = list(dict.fromkeys(v for ids in chosen.values() for v in ids))  # val == test shares videos
        index_of = {v: i for i, v in enumerate(gt.video_ids)}
        self.num_missing = 0
        self._seen_dims: dict[str, tuple[int, str]] = {}  # modality -> (dim, where it was first seen)
        videos: list[str] = []
        steps, lengths = [], []
        step0 = cfg.feat_stride / cfg.fps
        capacity = sum(self._max_steps(float(gt.durations[index_of[v]]), step0) for v in order)
        audio, visual = Rows(capacity, STORAGE[cfg.storage]), Rows(capacity, STORAGE[cfg.storage])
        kept: list[int] = []  # gt index of each loaded video
        for vid in order:
            dur = float(gt.durations[index_of[vid]])
            streams = self._load_streams(vid)
            if streams is None:
                self.num_missing += 1
                continue
            v, a = streams
            self._check_grid(vid, v.shape[0], dur)
            t, step = v.shape[0], step0
            if cfg.max_seq_len > 0 and t > cfg.max_seq_len:
                if cfg.long_policy == "truncate":
                    v, a = v[: cfg.max_seq_len], a[: cfg.max_seq_len]
                else:
                    step = step0 * (t - 1) / (cfg.max_seq_len - 1) if cfg.max_seq_len > 1 else step0
                    v, a = resample(v, cfg.max_seq_len), resample(a, cfg.max_seq_len)
            videos.append(vid), kept.append(index_of[vid])
            visual.append(v), audio.append(a), steps.append(step), lengths.append(v.shape[0])
        if not videos:
            raise DataError(
                f"no video of {ann_path} has its feature files (looked in {self._path(cfg.visual_dir)})"
            )
        pos = {v: i for i, v in enumerate(videos)}
        self.splits = {
            s: torch.tensor([pos[v] for v in ids if v in pos], dtype=torch.long) for s, ids in chosen.items()
        }
        for s, idx in self.splits.items():
            if idx.numel() == 0:
                raise DataError(f"split {s} ({wanted[s]}) has no video with feature files")
        self.video_ids = videos
        self.durations = gt.durations[kept]
        self.lengths = torch.tensor(lengths, dtype=torch.long)
        self.step_sec = np.array(steps, dtype=np.float64)
        self.offset_sec = np.full(len(videos), 0.5 * cfg.num_frames / cfg.fps, dtype=np.float64)
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), self.lengths.cumsum(0)])
        self.audio = audio.tensor()  # (sum T, Da) in the storage dtype
        self.visual = visual.tensor()  # (sum T, Dv)
        position = np.full(len(gt.video_ids), -1, dtype=np.int64)
        position[kept] = np.arange(len(kept))
        mine = events.take(position[events.video] >= 0)  # events of loaded videos, in file order
        self.gt_video = position[mine.video]
        self.gt_start, self.gt_end = mine.start, mine.end
        self.gt_label = mine.label.astype(np.int64)
        labels = torch.zeros(len(videos), len(self.class_names))
        labels[torch.from_numpy(self.gt_video), torch.from_numpy(self.gt_label)] = 1.0
        self.video_labels = labels  # (N, C) multi-hot

    def _max_steps(self, duration: float, step0: float) -> int:
        """An upper bound of the steps a video of ``duration`` keeps (what the grid check lets through, or
        max_seq_len), to reserve the feature rows before reading: a wrong bound only costs one copy."""
        cfg = self.cfg
        bound = math.ceil(duration * (1 + max(cfg.grid_tolerance, 0.2)) / step0) + 3
        return min(bound, cfg.max_seq_len) if cfg.max_seq_len > 0 else bound

    # ---------------------------------------------------------------- files
    def _path(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else self.root / q

    def _read(self, path: Path) -> np.ndarray:
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read as .npy ({exc})") from exc
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise DataError(f"{path}: features must be a non-empty (T, D) array, got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.number):
            raise DataError(f"{path}: features must be numeric, got dtype {x.dtype}")
        x = x.astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).sum())
            raise DataError(f"{path}: {bad} NaN/inf values")
        return x

    def _stream(
        self, vid: str, folder: str, suffixes: list[str], expect: int, what: str, length: int | None
    ) -> np.ndarray | None:
        paths = [self._path(folder) / f"{vid}{suf}" for suf in suffixes]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            if self.cfg.skip_missing:
                return None
            raise DataError(f"{missing[0]}: {what} feature file missing (video {vid})")
        parts = [self._read(p) for p in paths]
        ref = length if length is not None else parts[0].shape[0]
        x = np.concatenate([resample(p, ref) for p in parts], axis=1)
        want, source = (expect, f"{what}_dim in the config") if expect else self._seen_dims.get(what, (0, ""))
        if want and x.shape[1] != want:
            sizes = "+".join(str(p.shape[1]) for p in parts)
            raise DataError(
                f"{paths[0]}: {what} features have dim {sizes} = {x.shape[1]}, expected {want} ({source})"
            )
        self._seen_dims.setdefault(what, (x.shape[1], f"as in {paths[0]}"))
        return x

    def _load_streams(self, vid: str) -> tuple[np.ndarray, np.ndarray] | None:
        cfg = self.cfg
        v = self._stream(vid, cfg.visual_dir, cfg.visual_suffixes, cfg.visual_dim, "visual", None)
        if v is None:
            return None
        a = self._stream(vid, cfg.audio_dir, cfg.audio_suffixes, cfg.audio_dim, "audio", v.shape[0])
        return None if a is None else (v, a)

    def _check_grid(self, vid: str, t: int, dur: float) -> None:
        cfg = self.cfg
        if cfg.grid_tolerance <= 0:
            return
        span = (
            float(grid_to_seconds(t - 1, cfg.feat_stride, cfg.num_frames, cfg.fps))
            + 0.5 * cfg.num_frames / cfg.fps
        )
        slack = cfg.grid_tolerance * dur + 2 * cfg.feat_stride / cfg.fps
        if abs(span - dur) > slack:
            raise DataError(
                f"{self._path(cfg.visual_dir) / (vid + cfg.visual_suffixes[0])}: {t} steps cover "
                f"{span:.1f} s with feat_stride {cfg.feat_stride}, num_frames {cfg.num_frames}, "
                f"fps {cfg.fps}, "
                "but the video "
                f"lasts {dur:.1f} s: wrong feature preset? (grid_tolerance {cfg.grid_tolerance})"
            )

    # ---------------------------------------------------------------- engine interface
    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """audio (B, T, Da), visual (B, T, Dv), mask (B, T) bool, video_labels (B, C), index (B,).

        T is the longest sequence of the batch; padded steps are zero and False in ``mask``.
        """
        idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
        lens = self.lengths[idx]
        t = int(lens.max()) if idx.numel() else 0
        steps = torch.arange(t)
        mask = steps[None, :] < lens[:, None]  # (B, T)
        rows = self.offsets[idx][:, None] + torch.minimum(steps[None, :], (lens - 1)[:, None])
        m = mask[..., None].to(torch.float32)  # (B, T, 1): float16 storage * m promotes to float32
        return {
            "audio": self.audio[rows] * m,
            "visual": self.visual[rows] * m,
            "mask": mask,
            "video_labels": self.video_labels[idx],
            "index": idx.clone(),
        }

    def model_dims(self) -> dict[str, Any]:
        return {
            "audio_dim": int(self.audio.shape[1]),
            "visual_dim": int(self.visual.shape[1]),
            "num_classes": len(self.class_names),
        }

    # ---------------------------------------------------------------- evaluator interface
    def seconds(self, video: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Feature position (fractional allowed) of ``video`` (dataset index) -> seconds in [0, duration]."""
        video = np.asarray(video, dtype=np.int64)
        t = self.offset_sec[video] + np.asarray(pos, dtype=np.float64) * self.step_sec[video]
        return np.clip(t, 0.0, self.durations[video])

    def ground_truth(self, split: str) -> Segments:
        """GT segments of a split: video = dataset index, label = class index, times in seconds."""
        vids = self.splits[split].numpy()
        keep = np.isin(self.gt_video, vids)
        return Segments(self.gt_video[keep], self.gt_start[keep], self.gt_end[keep], self.gt_label[keep])


@DATASETS.register("anet")
class ActivityNetDataset(UnAVDataset):
    """ActivityNet-1.3 with audio (UniAV ONE-PEACE features): same loader, ActivityNet subset names.

    The official test subset has no labels, so val and test both use "validation" (UniAV, ActionFormer).
    """

    @dataclass
    class Config(UnAVDataset.Config):
        """UniAV ONE-PEACE ActivityNet grid (0.5 s steps). UniAV's file names are not documented: set the
        suffixes to those of your copy (the loader names any missing file)."""

        annotations: str = "activity_net.v1-3.min.json"  # ActivityNet JSON (labels by name, no label_id)
        visual_suffixes: list[str] = field(
            default_factory=lambda: ["_one_peace_video.npy"]
        )  # concatenated along D
        audio_suffixes: list[str] = field(
            default_factory=lambda: ["_one_peace_audio.npy"]
        )  # concatenated along D
        visual_dim: int = 1536  # ONE-PEACE visual
        audio_dim: int = 1536  # ONE-PEACE audio
        feat_stride: int = 8  # ONE-PEACE ANet: 16 fps, stride 8 -> 0.5 s per step
        num_frames: int = 16  # window of 16 frames (1 s)
        fps: float = 16.0  # frame rate of the feature extraction
        train_subset: str = "training"  # ActivityNet subset names
        val_subset: str = "validation"  # model selection
        test_subset: str = "validation"  # reported numbers (test labels are not public)
