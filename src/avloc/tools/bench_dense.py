"""``avloc bench dense``: seconds per training epoch, peak RSS and validation time of MIL and CLASP at UnAV-100 size.

The original UnAV-100 release has 6,489 training and 2,134 validation videos of 42 s on average, with I3D
RGB+flow (2,048-d) and VGGish (128-d) features on a 0.32 s grid (about 131 steps per video) and 100 classes.
Without ``--data`` features of exactly that size are generated in memory (random values: speed and memory do
not depend on them, and writing 11 GB of .npy files first would cost minutes), stored like the ``unav``
dataset's ``storage`` (float16 by default: 4.9 GB instead of 9.8 GB for both splits) and converted to
float32 per batch. With ``--data`` a ``unav`` dataset folder (real or ``avloc synth unav``) is loaded instead.
Each epoch goes through the engine's own ``train_one_epoch`` with the shipped configs
(``configs/unav/{mil,clasp}.yaml``), so the figure is what ``avloc train`` spends per epoch; ``--steps N``
times N batches of a random subset instead and extrapolates to the epoch (said so in the output). The
arithmetic bound divides the epoch's FLOPs (forward + backward, torch's counter) by the measured float32
matmul rate.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.config import load_config
from avloc.data.base import InMemoryDataset
from avloc.engine import distributed as dist_utils
from avloc.engine.build import (
    build_evaluator,
    build_loss,
    build_model,
    build_optimizer,
    load_data,
    resolve_device,
)
from avloc.engine.loop import batches_per_epoch, train_one_epoch
from avloc.engine.memory import peak_rss_mb, reset_peak_rss
from avloc.formats.activitynet import Segments
from avloc.tools.bench import matmul_rate, step_flops, timed_share
from avloc.tools.paths import config_path

BENCH_CONFIGS = {"mil": "unav/mil.yaml", "clasp": "unav/clasp.yaml"}
UNAV_TRAIN_VIDEOS, UNAV_VAL_VIDEOS = 6489, 2134
UNAV_MEAN_SECONDS, UNAV_STD_SECONDS, UNAV_MIN_SECONDS, UNAV_MAX_SECONDS = 42.15, 12.0, 10, 60  # reference notes 2.3
UNAV_STEP_SECONDS, UNAV_OFFSET_SECONDS = 8 / 25, 12 / 25  # I3D: stride 8 frames at 25 fps, 24-frame windows
STORAGE = {"float16": torch.float16, "float32": torch.float32}
CHUNK_ROWS = 65_536  # feature rows generated at a time: the float32 draw never exceeds one chunk


class InMemoryDense(InMemoryDataset):
    """Dense features held as flat (sum T, D) tensors in the storage dtype, batched exactly like the ``unav``
    dataset (audio (B, T, Da), visual (B, T, Dv) float32, mask (B, T) bool, video_labels (B, C), index
    (B,)), with the time grid and ground truth the ``dense_map`` evaluator reads."""

    task = "dense"

    def __init__(self, audio: torch.Tensor, visual: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor,
                 splits: dict[str, torch.Tensor], ground_truth: Segments) -> None:
        super().__init__(None, ".")
        self.audio, self.visual, self.lengths, self.video_labels = audio, visual, lengths, labels
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
        self.splits = splits
        n = len(lengths)
        self.step_sec = np.full(n, UNAV_STEP_SECONDS)
        self.offset_sec = np.full(n, UNAV_OFFSET_SECONDS)
        self.durations = lengths.numpy() * UNAV_STEP_SECONDS
        self.video_ids = [f"bench{i:05d}" for i in range(n)]
        self.class_names = [f"class{c:03d}" for c in range(labels.shape[1])]
        self._gt = ground_truth

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        lens = self.lengths[idx]
        steps = torch.arange(int(lens.max()))
        mask = steps[None, :] < lens[:, None]  # (B, T)
        rows = self.offsets[idx][:, None] + torch.minimum(steps[None, :], (lens - 1)[:, None])  # (B, T)
        m = mask[..., None].to(torch.float32)  # (B, T, 1)
        return {"audio": self.audio[rows].float() * m, "visual": self.visual[rows].float() * m, "mask": mask,
                "video_labels": self.video_labels[idx], "index": idx.clone()}

    def ground_truth(self, split: str) -> Segments:
        keep = np.isin(self._gt.video, self.splits[split].numpy())
        return Segments(self._gt.video[keep], self._gt.start[keep], self._gt.end[keep], self._gt.label[keep])

    def model_dims(self) -> dict[str, Any]:
        return {"audio_dim": int(self.audio.shape[1]), "visual_dim": int(self.visual.shape[1]),
                "num_classes": int(self.video_labels.shape[1])}


def _random_rows(total: int, dim: int, dtype: torch.dtype, gen: torch.Generator) -> torch.Tensor:
    """(total, dim) standard-normal values in ``dtype``, drawn a chunk at a time (no full float32 copy)."""
    out = torch.empty(total, dim, dtype=dtype)
    for start in range(0, total, CHUNK_ROWS):
        chunk = out[start : start + CHUNK_ROWS]
        chunk.copy_(torch.randn(chunk.shape, generator=gen))
    return out


def unav_scale_features(train: int = UNAV_TRAIN_VIDEOS, val: int = UNAV_VAL_VIDEOS, audio_dim: int = 128,
                        visual_dim: int = 2048, num_classes: int = 100, storage: str = "float16",
                        seed: int = 0) -> InMemoryDense:
    """Random features at UnAV-100 size on its 0.32 s grid: durations ~ N(42 s, 12 s) clipped to [10, 60],
    1-3 labelled segments per video. Values are irrelevant to speed; shapes and lengths are what count."""
    if storage not in STORAGE:
        raise ValueError(f"storage must be one of {sorted(STORAGE)}, got {storage!r}")
    videos = train + val
    rng = np.random.default_rng(seed)
    dur = np.clip(rng.normal(UNAV_MEAN_SECONDS, UNAV_STD_SECONDS, videos), UNAV_MIN_SECONDS, UNAV_MAX_SECONDS)
    lengths = torch.from_numpy(np.maximum(1, np.round(dur / UNAV_STEP_SECONDS)).astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    total = int(lengths.sum())
    audio = _random_rows(total, audio_dim, STORAGE[storage], gen)
    visual = _random_rows(total, visual_dim, STORAGE[storage], gen)
    n_seg = rng.integers(1, 4, videos)  # 1-3 segments per video
    video = np.repeat(np.arange(videos), n_seg)
    label = rng.integers(0, num_classes, len(video))
    span = lengths.numpy()[video] * UNAV_STEP_SECONDS
    start = rng.uniform(0.0, 0.7, len(video)) * span
    end = np.minimum(span, start + rng.uniform(0.1, 0.5, len(video)) * span)
    labels = torch.zeros(videos, num_classes)
    labels[torch.from_numpy(video), torch.from_numpy(label)] = 1.0
    splits = {"train": torch.arange(train), "val": torch.arange(train, videos)}
    return InMemoryDense(audio, visual, lengths, labels, splits, Segments(video, start, end, label))


def bench_dense(data_dir: Path | None, videos: int = UNAV_TRAIN_VIDEOS, epochs: int = 1,
                models: tuple[str, ...] = ("mil", "clasp"), json_out: str | None = None,
                val_videos: int = UNAV_VAL_VIDEOS, storage: str = "float16", steps: int = 0) -> dict[str, Any]:
    """Train each model ``epochs`` epochs (or ``steps`` batches, extrapolated), then score the validation split;
    return seconds per epoch, the FLOP bound, validation time and peak RSS (MiB)."""
    if epochs < 1 or videos < 1 or steps < 0:
        raise ValueError("bench dense: epochs and videos must be >= 1, steps >= 0")
    reset_peak_rss()
    t0 = time.perf_counter()
    if data_dir is None:
        data: InMemoryDataset = unav_scale_features(videos, val_videos, storage=storage)
        source = (f"in-memory random features (synthetic), {videos} train + {val_videos} val videos, I3D+VGGish "
                  f"dims, 0.32 s grid, {storage} storage")
    else:
        data = load_data(load_config(config_path(BENCH_CONFIGS["mil"]), [f"data.storage={storage}"]), data_dir)
        source = f"{data_dir} ({storage} storage)"
    data_seconds = time.perf_counter() - t0
    lengths = torch.as_tensor(data.lengths)[data.splits["train"]]  # type: ignore[attr-defined]
    all_steps = int(torch.as_tensor(data.lengths).sum())  # type: ignore[attr-defined]
    feature_bytes = data.audio.element_size() * all_steps * sum(  # type: ignore[attr-defined]
        data.model_dims()[k] for k in ("audio_dim", "visual_dim"))
    result: dict[str, Any] = {
        "data": source, "train_videos": int(len(lengths)), "val_videos": int(len(data.splits["val"])),
        "mean_steps": float(lengths.float().mean()), "feature_gib": feature_bytes / 2**30,
        "data_seconds": data_seconds, "rss_after_data_mb": peak_rss_mb(), "threads": torch.get_num_threads(),
        "models": {},
    }
    rate = matmul_rate(rows=32 * 131)
    result["matmul_gflops"] = rate / 1e9
    device = resolve_device("auto")
    info = dist_utils.DistInfo()
    full_train = data.splits["train"]
    for name in models:
        cfg = load_config(config_path(BENCH_CONFIGS[name]), ["train.progress=false"])
        torch.manual_seed(cfg.train.seed)
        model = build_model(cfg, data).to(device)
        loss_fn = build_loss(cfg).to(device)
        opt = build_optimizer(cfg, model, device)
        evaluator = build_evaluator(cfg)
        bs = cfg.train.batch_size
        sample = {k: v.to(device) for k, v in data.batch(full_train[:bs]).items()}
        flops_step = step_flops(model, loss_fn, sample)
        epoch_steps = batches_per_epoch(len(full_train), cfg.train)
        times, cpu = [], []
        with timed_share(data, cfg.train, steps) as share:  # share: full epoch / timed part
            for epoch in range(epochs):
                t1, c1 = time.perf_counter(), time.process_time()
                train_one_epoch(model, loss_fn, opt, data, cfg, epoch, device, info)
                times.append((time.perf_counter() - t1) * share)
                cpu.append((time.process_time() - c1) * share)
        timed_steps = round(epoch_steps / share)
        t2 = time.perf_counter()
        metrics = evaluator(model, data, "val", device, cfg.train.eval_batch_size)
        eval_seconds = time.perf_counter() - t2
        per_epoch = float(np.mean(times))
        scale = float(lengths.float().mean()) / sample["mask"].sum(1).float().mean().item()
        flops_epoch = flops_step * epoch_steps * scale
        result["models"][name] = {
            "params": model.num_parameters(), "batch_size": bs, "steps_per_epoch": epoch_steps,
            "timed_steps": timed_steps, "extrapolated": timed_steps < epoch_steps,
            "seconds_per_epoch": per_epoch, "epoch_seconds": times,
            "cpu_seconds_per_epoch": float(np.mean(cpu)), "flops_per_epoch": flops_epoch,
            "bound_seconds": flops_epoch / rate, "ratio_to_bound": per_epoch / max(flops_epoch / rate, 1e-12),
            "eval_val_seconds": eval_seconds, "val_mAP_avg_random_features": metrics[evaluator.primary],
            "peak_rss_mb_so_far": peak_rss_mb(),
        }
    result["peak_rss_mb"] = peak_rss_mb()
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=2) + "\n")
    return result
