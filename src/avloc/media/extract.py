"""Video files -> the feature files ``avloc train`` / ``eval`` / ``predict`` read, with pretrained backbones.

Three layouts:
* ``ave``: AVE's official h5 files ``audio_feature.h5`` (N, 10, Da) and ``visual_feature.h5`` (N, 10, 7, 7,
  Dv), key ``avadataset``, rows in the order of an ``Annotations.txt`` (or of the inputs). Segment l is the
  second [l, l + 1): 16 frames at l + i/16 s, each through the visual backbone, averaged after it (AVE's
  recipe); one audio window per segment (VGGish: AVE's back-to-back 0.96 s examples).
* ``unav``: per video ``av_features/<id>_<visual>.npy`` (T, Dv, spatially pooled) and ``<id>_<audio>.npy``
  (T, Da) on one grid: window i covers [i * stride, i * stride + window) s; frames sampled at ``fps`` and
  averaged per window, audio embedded per window, so both streams have the same T by construction.
* ``llp``: LLP's feature folders (:mod:`avloc.media.llp_layout`): per clip the first 10 s, audio one row per
  second as for ``ave``, the visual backbone's spatially pooled features of ``frames_per_segment`` frames per
  second (8 officially) unaveraged, and their per-second mean as the third stream.

Every folder gets ``features.json`` (``FeatureMeta``): backbones, dims, grid, the data-config section for
``avloc train``, and per video its seconds, steps and flags. Writing a folder of many videos (resumable,
atomic per video): :mod:`avloc.media.extract_folder`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from avloc.formats.feature_sidecar import META_FILE, read_sidecar
from avloc.media.backbones import BACKBONES, AudioBackbone, VisualBackbone, create_backbone
from avloc.media.backbones.base import RESIZE_PRECISIONS, backbone_config, default_layer
from avloc.media.backbones.vgg import ave_audio_starts
from avloc.media.decode import SILENCE, MediaError, decode_audio, iter_frames, probe, usable_seconds
from avloc.media.engines import CHOICES, PRECISION_CHOICES, EngineNet
from avloc.media.llp_layout import llp_data_config
from avloc.media.prefetch import prefetch


AVE_SEGMENTS = 10
FEATURE_DIR = "av_features"
DECODE_CHUNK = 32  # frames decoded and resized together, then fed to the visual net ``batch`` at a time


@dataclass
class ExtractConfig:
    """How features are made; everything here is recorded in ``features.json``."""

    format: str = "ave"  # ave | unav | llp
    visual: str = "efficientnet_lite0"
    audio: str = "aisfx"
    visual_weights: str = ""  # weight file; "" = the backbone's package or the weights folder
    audio_weights: str = ""
    audio_layer: str = ""  # tapped layer of the audio backbone (soundnet8: pool5 | conv6 | conv7); "" = default
    frames_per_segment: int = 0  # ave / llp: frames per one-second segment; 0 = the layout's (ave 16, llp 8)
    stride: float = 0.32  # unav: seconds between window starts
    window: float = 0.96  # unav: window length in seconds
    fps: float = 12.5  # unav: frames per second sampled for the visual stream (stride * fps must be whole)
    resize: str = "squash"  # squash (AVE) | center_crop
    resize_precision: str = "fp32"  # fp32 (reference) | uint8 (5-15x cheaper resize, pixels within 1 grey level)
    batch: int = 0  # frames per visual backbone call; 0 = 2 on CPU (a small batch stays in cache), 64 on GPU
    device: str = "cpu"
    engine: str = "auto"  # auto (fastest measured here) | torch | onnxruntime | openvino: see media/engines
    precision: str = "fp32"  # fp32 | bf16 (CPUs with bf16 units, GPUs) | auto (the faster, bf16 where checked)

    def __post_init__(self) -> None:
        if self.engine not in CHOICES or self.precision not in PRECISION_CHOICES:
            raise ValueError(f"engine must be one of {', '.join(CHOICES)} and precision one of "
                             f"{', '.join(PRECISION_CHOICES)}, got {self.engine!r} / {self.precision!r}")
        if not self.audio_layer and self.audio in BACKBONES.names():  # record the layer, never "the default"
            self.audio_layer = default_layer(self.audio)
        if self.resize_precision not in RESIZE_PRECISIONS:
            raise ValueError(f"resize_precision must be one of {', '.join(RESIZE_PRECISIONS)}, "
                             f"got {self.resize_precision!r}")
        if self.format not in ("ave", "unav", "llp"):
            raise ValueError(f"format must be 'ave', 'unav' or 'llp', got {self.format!r}")
        if self.frames_per_segment == 0:  # LLP's ResNet-152 frames are 8 per second; AVE averages 16
            self.frames_per_segment = 8 if self.format == "llp" else 16
        if self.frames_per_segment < 1 or self.batch < 0:
            raise ValueError("frames_per_segment must be >= 1 and batch >= 0 (0 = by device)")
        if self.format == "unav":
            if self.stride <= 0 or self.window <= 0 or self.fps <= 0:
                raise ValueError("stride, window and fps must be > 0")
            for name, sec in (("stride", self.stride), ("window", self.window)):
                if abs(sec * self.fps - round(sec * self.fps)) > 1e-6 or round(sec * self.fps) < 1:
                    raise ValueError(f"{name} {sec} s x fps {self.fps} must be a whole number of frames")

    @property
    def frames_per_stride(self) -> int:
        return round(self.stride * self.fps)

    @property
    def frames_per_window(self) -> int:
        return round(self.window * self.fps)


@dataclass
class FeatureMeta:
    """The sidecar ``features.json``: what made a folder of features, and per video its seconds and flags."""

    config: ExtractConfig
    visual_dim: int
    audio_dim: int
    grid: int
    audio_rate: int
    videos: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {path, seconds, steps, flags[, row]}
    failed: list[dict[str, Any]] = field(default_factory=list)  # [{row (ave), id, reason[, path]}]: no features
    classes_file: str = ""  # ave: the class list beside the features ("": AVE's 28 classes)
    engines: dict[str, str] = field(default_factory=dict)  # visual / audio -> the engine that ran, e.g. "openvino fp32"

    def recipe(self) -> dict[str, Any]:
        """What makes two feature folders interchangeable: the backbones, their settings and the grid (not
        where, in what batches or by which engine they ran, nor the resize's precision: every engine makes
        interchangeable features)."""
        return {k: v for k, v in asdict(self.config).items()
                if k not in ("device", "batch", "visual_weights", "audio_weights", "engine", "precision",
                             "resize_precision")}

    def describe(self) -> str:
        c = self.config
        return f"{c.visual} {self.visual_dim}-d / {c.audio} {self.audio_dim}-d ({c.format})"

    def data_config(self) -> dict[str, Any]:
        """The ``data`` section that makes ``avloc train`` read these features."""
        c = self.config
        if c.format == "ave":
            return {"name": "ave", **({"classes_file": self.classes_file} if self.classes_file else {})}
        if c.format == "llp":
            return llp_data_config()
        return {"name": "unav", "visual_dir": FEATURE_DIR, "audio_dir": FEATURE_DIR,
                "visual_suffixes": [f"_{c.visual}.npy"], "audio_suffixes": [f"_{c.audio}.npy"],
                "visual_dim": self.visual_dim, "audio_dim": self.audio_dim, "feat_stride": c.frames_per_stride,
                "num_frames": c.frames_per_window, "fps": c.fps}

    def to_json(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "visual_dim": self.visual_dim, "audio_dim": self.audio_dim,
                "grid": self.grid, "audio_rate": self.audio_rate, "engines": self.engines, "data": self.data_config(),
                "videos": self.videos, "failed": self.failed}


def read_feature_meta(folder: str | Path) -> FeatureMeta:
    """The ``FeatureMeta`` of a folder written by ``extract_videos`` (its ``features.json``)."""
    return feature_meta_from_json(read_sidecar(folder), str(Path(folder) / META_FILE))


def feature_meta_from_json(raw: dict[str, Any], where: str) -> FeatureMeta:
    """Parse a ``features.json`` object (or a run's copy of one without the videos); errors name ``where``."""
    try:
        made = dict(raw["config"])
        if "audio_layer" not in made and made.get("audio") in BACKBONES.names():
            # written before the layer was an option: it holds the layer that was tapped then
            made["audio_layer"] = getattr(BACKBONES.get(made["audio"]), "legacy_layer", "")
        cfg = ExtractConfig(**made)
        return FeatureMeta(cfg, int(raw["visual_dim"]), int(raw["audio_dim"]), int(raw["grid"]),
                           int(raw["audio_rate"]), dict(raw.get("videos", {})), list(raw.get("failed", [])),
                           str((raw.get("data") or {}).get("classes_file", "")), dict(raw.get("engines", {})))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: malformed feature sidecar ({exc})") from None


def unav_steps(seconds: float, stride: float, window: float) -> int:
    """Windows of the UnAV grid in a clip: every start i * stride with the window inside it, at least one."""
    return max(1, math.floor((seconds - window) / stride + 1e-6) + 1)


class Extractor:
    """The two backbones and the per-video recipe of one ``ExtractConfig``; ``times`` sums the stages."""

    def __init__(self, cfg: ExtractConfig, random_weights: bool = False) -> None:
        self.cfg = cfg
        if random_weights:  # timing only (``avloc bench extract`` without the user's VGG files)
            visual = BACKBONES.get(cfg.visual)().eval()
            audio = BACKBONES.get(cfg.audio)(backbone_config(cfg.audio, cfg.audio_layer)).eval()
        else:
            visual = create_backbone(cfg.visual, cfg.visual_weights or None)
            audio = create_backbone(cfg.audio, cfg.audio_weights or None, cfg.audio_layer)
        self.visual: VisualBackbone = visual.to(cfg.device)
        self.audio: AudioBackbone = audio.to(cfg.device)
        for name, net, kind in ((cfg.visual, self.visual, VisualBackbone), (cfg.audio, self.audio, AudioBackbone)):
            if not isinstance(net, kind):
                raise ValueError(f"backbone '{name}' is not a {kind.__name__}; choose from {BACKBONES.names()}")
        self.visual.fold_batchnorm().to(memory_format=torch.channels_last)  # faster depthwise/3x3 convs on CPU
        self.audio.fold_batchnorm()
        self.visual_net = EngineNet(self.visual, cfg.visual, cfg.engine, cfg.precision)  # runs visual.forward
        self.audio_net = EngineNet(self.audio, cfg.audio, cfg.engine, cfg.precision)  # runs audio.forward
        self.batch = cfg.batch or (64 if self.visual.device.type == "cuda" else 2)
        self.times = {"decode": 0.0, "resize": 0.0, "visual": 0.0, "audio": 0.0}

    def meta(self) -> FeatureMeta:
        engines = {"visual": self.visual_net.describe(), "audio": self.audio_net.describe()}
        return FeatureMeta(self.cfg, self.visual.out_dim, self.audio.out_dim, self.visual.grid,
                           self.audio.sample_rate, engines=engines)

    def embed_audio(self, wave: np.ndarray, starts_s: np.ndarray, window_s: float) -> torch.Tensor:
        """(S,) waveform -> (T, Da) float32 CPU: the audio backbone's windows through the chosen engine."""
        return self.audio.embed(wave, starts_s, window_s, net=self.audio_net).float().cpu()

    def frame_times(self, seconds: float) -> tuple[np.ndarray, int]:
        """The sampled frame times and the number of steps of a clip of ``seconds``."""
        c = self.cfg
        if c.format in ("ave", "llp"):
            return (np.arange(AVE_SEGMENTS * c.frames_per_segment) / c.frames_per_segment), AVE_SEGMENTS
        steps = unav_steps(seconds, c.stride, c.window)
        n = (steps - 1) * c.frames_per_stride + c.frames_per_window
        return np.arange(n) / c.fps, steps

    def _frames(self, path: Path, times: np.ndarray, flags: list[str],
                stats: dict[str, float]) -> Iterator[torch.Tensor]:
        """Decoded and resized chunks: (n, 3, S, S) float channels-last, ``DECODE_CHUNK`` frames at a time."""
        frames_iter = iter_frames(path, times, chunk=DECODE_CHUNK, flags=flags, stats=stats)
        while True:
            t0 = time.perf_counter()
            item = next(frames_iter, None)
            t1 = time.perf_counter()
            self.times["decode"] += t1 - t0
            if item is None:
                return
            x = self.visual.preprocess(item[1], self.cfg.resize, self.cfg.resize_precision).contiguous(
                memory_format=torch.channels_last)  # (n, 3, S, S)
            self.times["resize"] += time.perf_counter() - t1
            yield x

    def frame_features(self, path: str | Path, times: np.ndarray, flags: list[str] | None = None,
                       stats: dict[str, float] | None = None) -> torch.Tensor:
        """The visual backbone's features of the frames at ``times`` (see ``_visual``), decoded and resized in
        a thread beside the network; decoder flags go to ``flags``."""
        frames = self._frames(Path(path), times, flags if flags is not None else [], stats if stats is not None else {})
        return self._visual(prefetch(frames))

    @torch.no_grad()
    def _visual(self, chunks: Iterator[torch.Tensor]) -> torch.Tensor:
        """Per-frame features: (N, grid, grid, Dv) maps for AVE, (N, Dv) pooled for UnAV and LLP, float32 CPU."""
        out = []
        for x in chunks:
            t0 = time.perf_counter()
            for part in x.split(self.batch):
                fmap = self.visual_net(part)  # (n, Dv, g, g)
                fmap = fmap.permute(0, 2, 3, 1) if self.cfg.format == "ave" else fmap.mean((2, 3))
                out.append(fmap.float().cpu())
            self.times["visual"] += time.perf_counter() - t0
        return torch.cat(out)

    @torch.no_grad()
    def video(self, path: str | Path) -> tuple[np.ndarray, np.ndarray, float, list[str]]:
        """audio (T, Da), visual (T, g, g, Dv) for AVE, (T, Dv) for UnAV or (T * K, Dv) frames for LLP,
        seconds, flags of one file."""
        path = Path(path)
        c = self.cfg
        t0 = time.perf_counter()
        info = probe(path)
        if info.duration <= 0:
            raise MediaError(path, "empty video stream (duration 0)")
        flags: list[str] = ["video_truncated"] if info.truncated else []  # probe: the header promised more
        until = AVE_SEGMENTS + 1.0 if c.format != "unav" else None  # AVE and LLP read only the first 10 s
        self.times["decode"] += time.perf_counter() - t0
        times, steps = self.frame_times(info.duration)
        stats: dict[str, float] = {}
        video_flags: list[str] = []
        audio_flags: list[str] = []
        sound: list[np.ndarray | None] = [None]

        def produce() -> Iterator[torch.Tensor]:  # runs in the prefetch thread: frames, then the audio track
            yield from self._frames(path, times, video_flags, stats)
            if info.has_audio:
                t1 = time.perf_counter()
                sound[0] = decode_audio(path, self.audio.sample_rate, audio_flags, until)
                self.times["decode"] += time.perf_counter() - t1

        feats = self._visual(prefetch(produce()))  # (N, ...): the networks run while the next frames decode
        wave = sound[0]
        flags += audio_flags + video_flags
        seconds = usable_seconds(info.duration, stats, flags)  # a truncated file: what decodes, not its header
        if c.format == "unav":
            steps = min(steps, unav_steps(seconds, c.stride, c.window))
        if c.format != "unav":
            # AVE: (10, g, g, Dv) per-second means; LLP: (10 * K, Dv) frames, the model averages them
            visual = feats.view(AVE_SEGMENTS, c.frames_per_segment, *feats.shape[1:]).mean(1) if c.format == "ave" \
                else feats
            starts, window = ave_audio_starts(self.audio, AVE_SEGMENTS)
            if seconds < AVE_SEGMENTS - 1e-3:
                flags.append("shorter_than_10s")
            elif seconds > AVE_SEGMENTS + 0.5:
                flags.append("longer_than_10s_first_10s_used")
        else:
            csum = torch.cat([torch.zeros(1, feats.shape[1]), feats.double().cumsum(0)])  # (N + 1, Dv)
            first = torch.arange(steps) * c.frames_per_stride  # (T,) first frame of each window
            visual = ((csum[first + c.frames_per_window] - csum[first]) / c.frames_per_window).float()  # (T, Dv)
            starts, window = np.arange(steps) * c.stride, c.window
            if seconds < c.window:
                flags.append("shorter_than_window")
        if wave is None:
            flags.append("no_audio")
            audio = torch.zeros(len(starts), self.audio.out_dim)
        else:
            if len(wave) == 0 or float(np.abs(wave).max()) < SILENCE:
                flags.append("silent")
            t1 = time.perf_counter()
            audio = self.embed_audio(wave, starts, window)  # (T, Da)
            self.times["audio"] += time.perf_counter() - t1
        return audio.numpy(), visual.numpy(), float(seconds), list(dict.fromkeys(flags))


def features_for_video(path: str | Path, meta: FeatureMeta,
                       extractor: Extractor | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Features of one video made exactly as the folder described by ``meta`` (same backbones and grid)."""
    ex = extractor if extractor is not None and extractor.cfg == meta.config else Extractor(meta.config)
    audio, visual, seconds, _ = ex.video(path)
    return audio, visual, seconds
