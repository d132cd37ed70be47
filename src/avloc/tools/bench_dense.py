"""``avloc bench dense``: seconds per training epoch and peak RSS of the MIL baseline and CLASP at UnAV-100 scale.

UnAV-100 has 6,489 training videos of 42 s on average. Without ``--data`` the features are generated in
memory with the dims of the original release (I3D RGB+flow 2048, VGGish 128, 100 classes) on a 1 s grid
(about 42 steps per video): 6,489 x 42 x 2,176 float32 values are ~2.4 GB, which would cost minutes of
disk writes and reads for numbers that do not depend on the values. With ``--data`` a ``unav`` dataset
folder (real or ``avloc synth unav``) is loaded instead. Each epoch goes through the engine's own
``train_one_epoch`` with the shipped configs (``configs/unav/{mil,clasp}.yaml``), so the figure is what
``avloc train`` spends per epoch, evaluation excluded. The arithmetic bound divides the epoch's FLOPs
(forward + backward, torch's counter) by the measured float32 matmul rate.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.tools.bench import matmul_rate, step_flops
from avloc.config import load_config
from avloc.data.base import InMemoryDataset
from avloc.engine import distributed as dist_utils
from avloc.engine.loop import (build_loss, build_model, build_optimizer, load_data, resolve_device,
                               train_one_epoch)
from avloc.engine.memory import peak_rss_mb
from avloc.tools.paths import config_path

BENCH_CONFIGS = {"mil": "unav/mil.yaml", "clasp": "unav/clasp.yaml"}
UNAV_TRAIN_VIDEOS = 6489
UNAV_MEAN_SECONDS, UNAV_STD_SECONDS, UNAV_MIN_SECONDS, UNAV_MAX_SECONDS = 42.15, 12.0, 10, 60  # reference notes 2.3


class InMemoryDense(InMemoryDataset):
    """Dense features held as flat (sum T, D) tensors, batched exactly like the ``unav`` dataset:
    audio (B, T, Da), visual (B, T, Dv), mask (B, T) bool, video_labels (B, C), index (B,)."""

    task = "dense"

    def __init__(self, audio: torch.Tensor, visual: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__(None, ".")
        self.audio, self.visual, self.lengths, self.video_labels = audio, visual, lengths, labels
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
        self.splits = {"train": torch.arange(len(lengths))}

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        lens = self.lengths[idx]
        steps = torch.arange(int(lens.max()))
        mask = steps[None, :] < lens[:, None]
        rows = self.offsets[idx][:, None] + torch.minimum(steps[None, :], (lens - 1)[:, None])
        m = mask[..., None].to(torch.float32)
        return {"audio": self.audio[rows] * m, "visual": self.visual[rows] * m, "mask": mask,
                "video_labels": self.video_labels[idx], "index": idx.clone()}

    def model_dims(self) -> dict[str, Any]:
        return {"audio_dim": int(self.audio.shape[1]), "visual_dim": int(self.visual.shape[1]),
                "num_classes": int(self.video_labels.shape[1])}


def unav_scale_features(videos: int, audio_dim: int = 128, visual_dim: int = 2048, num_classes: int = 100,
                        seed: int = 0) -> InMemoryDense:
    """Random features at UnAV-100 scale: durations ~ N(42 s, 12 s) clipped to [10, 60] on a 1 s grid,
    1-3 labels per video. Values are irrelevant to speed; shapes and lengths are what count."""
    rng = np.random.default_rng(seed)
    dur = np.clip(rng.normal(UNAV_MEAN_SECONDS, UNAV_STD_SECONDS, videos), UNAV_MIN_SECONDS, UNAV_MAX_SECONDS)
    lengths = torch.from_numpy(np.round(dur).astype(np.int64))
    total = int(lengths.sum())
    gen = torch.Generator().manual_seed(seed)
    audio = torch.randn(total, audio_dim, generator=gen)
    visual = torch.randn(total, visual_dim, generator=gen)
    labels = torch.zeros(videos, num_classes)
    n_lab = torch.from_numpy(rng.integers(1, 4, videos))
    for k in range(3):  # at most 3 labels: three vectorised draws, not a loop over videos
        pick = torch.from_numpy(rng.integers(0, num_classes, videos))
        labels[torch.arange(videos)[n_lab > k], pick[n_lab > k]] = 1.0
    return InMemoryDense(audio, visual, lengths, labels)


def bench_dense(data_dir: Path | None, videos: int = UNAV_TRAIN_VIDEOS, epochs: int = 1,
                models: tuple[str, ...] = ("mil", "clasp"), json_out: str | None = None) -> dict[str, Any]:
    """Train each model ``epochs`` epochs; return seconds per epoch, the FLOP bound and peak RSS (MB)."""
    if epochs < 1 or videos < 1:
        raise ValueError("bench dense: epochs and videos must be >= 1")
    t0 = time.perf_counter()
    if data_dir is None:
        data: InMemoryDataset = unav_scale_features(videos)
        source = f"in-memory random features, {videos} videos, I3D+VGGish dims, 1 s grid"
    else:
        data = load_data(load_config(config_path(BENCH_CONFIGS["mil"])), data_dir)
        source = f"{data_dir} (train split)"
    data_seconds = time.perf_counter() - t0
    lengths = torch.as_tensor(data.lengths)[data.splits["train"]]  # type: ignore[attr-defined]
    feat_bytes = 4 * int(lengths.sum()) * sum(data.model_dims()[k] for k in ("audio_dim", "visual_dim"))
    result: dict[str, Any] = {
        "data": source, "train_videos": int(len(lengths)), "mean_steps": float(lengths.float().mean()),
        "feature_gb": feat_bytes / 1e9, "data_seconds": data_seconds, "threads": torch.get_num_threads(),
        "models": {},
    }
    rate = matmul_rate(rows=32 * 42)
    result["matmul_gflops"] = rate / 1e9
    device = resolve_device("auto")
    info = dist_utils.DistInfo()
    for name in models:
        cfg = load_config(config_path(BENCH_CONFIGS[name]), ["train.progress=false"])
        torch.manual_seed(cfg.train.seed)
        model = build_model(cfg, data).to(device)
        loss_fn = build_loss(cfg).to(device)
        opt = build_optimizer(cfg, model, device)
        sample = {k: v.to(device) for k, v in data.batch(data.splits["train"][: cfg.train.batch_size]).items()}
        flops_step = step_flops(model, loss_fn, sample)
        n_train = len(data.splits["train"])
        steps = n_train // cfg.train.batch_size if cfg.train.drop_last else -(-n_train // cfg.train.batch_size)
        times, cpu = [], []
        for epoch in range(epochs):
            t1, c1 = time.perf_counter(), time.process_time()
            train_one_epoch(model, loss_fn, opt, data, cfg, epoch, device, info)
            times.append(time.perf_counter() - t1)
            cpu.append(time.process_time() - c1)
        per_epoch = float(np.mean(times))
        scale = float(lengths.float().mean()) / sample["mask"].sum(1).float().mean().item()
        flops_epoch = flops_step * steps * scale
        result["models"][name] = {
            "params": model.num_parameters(), "batch_size": cfg.train.batch_size, "steps_per_epoch": steps,
            "seconds_per_epoch": per_epoch, "epoch_seconds": times,
            "cpu_seconds_per_epoch": float(np.mean(cpu)), "flops_per_epoch": flops_epoch,
            "bound_seconds": flops_epoch / rate, "ratio_to_bound": per_epoch / max(flops_epoch / rate, 1e-12),
            "peak_rss_mb_after": peak_rss_mb(),
        }
    result["peak_rss_mb"] = peak_rss_mb()
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=2) + "\n")
    return result
