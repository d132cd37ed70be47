"""``python -m avloc.tools.bench_device``: the figures ``scripts/gpu_check.sh`` prints for one device.

Seconds per training epoch (the fastest of ``--epochs``), peak device memory and test-split evaluation time of
VSCG and PSP, fully and weakly supervised, at the official batch size (128) in float32 and bf16 autocast, and
of CLASP at UnAV-100 size (one epoch, then the validation split scored). AVE data is ``--data`` or a
synthetic set written to a temporary folder; the UnAV-100-size features are random, made in memory. Peak
memory on CUDA is what PyTorch's allocator held (``max_memory_allocated``, and ``max_memory_reserved``, the
part nvidia-smi shows besides the CUDA context); on CPU the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from avloc.config import Config, load_config
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
from avloc.engine.loop import train_one_epoch
from avloc.engine.memory import peak_rss_mb, reset_peak_rss
from avloc.tools.paths import config_path

AVE_MODELS = ("vscg", "psp")
SETTINGS = ("fully", "weak")
PRECISIONS = ("fp32", "bf16")
AVE_VIDEOS = 4143  # the AVE release: 3,339 train / 402 val / 402 test
QUICK_AVE_VIDEOS = 12  # --quick: 10 training videos, 2 steps of 4 per epoch: a smoke run, not a measurement
QUICK = ["train.batch_size=4", "train.eval_batch_size=4"]
QUICK_CPU_BF16 = ("psp_fully",)  # bf16 on a CPU without bf16 instructions is slow: --quick runs one such run
VSCG_PAPER = {"minutes": 54.0, "mib": 2623.0, "gpu": "GTX 1080"}  # VSCG paper: full training, fully supervised


class PeakMemory:
    """Peak memory (MiB) of a span of work on ``device``: the allocator's peaks on CUDA, peak RSS on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            reset_peak_rss()

    def read(self) -> dict[str, float]:
        if self.device.type == "cuda":
            return {"peak_allocated_mib": torch.cuda.max_memory_allocated(self.device) / 2**20,
                    "peak_reserved_mib": torch.cuda.max_memory_reserved(self.device) / 2**20}
        return {"peak_rss_mib": peak_rss_mb()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def measure(cfg: Config, data: InMemoryDataset, device: torch.device, epochs: int, eval_split: str) -> dict[str, Any]:
    """Train ``epochs`` epochs through the engine's own ``train_one_epoch``, then score ``eval_split`` twice
    (the first also warms up); peak memory covers both."""
    memory = PeakMemory(device)
    memory.reset()
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, data).to(device)
    loss_fn = build_loss(cfg).to(device)
    opt = build_optimizer(cfg, model, device)
    evaluator = build_evaluator(cfg)
    info = dist_utils.DistInfo()
    epoch_seconds = [_timed(lambda e=e: train_one_epoch(model, loss_fn, opt, data, cfg, e, device, info), device)
                     for e in range(epochs)]
    metrics: dict[str, float] = {}

    def score() -> None:
        metrics.update(evaluator(model, data, eval_split, device, cfg.train.eval_batch_size))

    eval_seconds = [_timed(score, device) for _ in range(2)]
    return {"seconds_per_epoch": min(epoch_seconds), "epoch_seconds": epoch_seconds,
            "eval_seconds": eval_seconds[-1], "eval_split": eval_split,
            "eval_videos": int(len(data.splits[eval_split])), "train_videos": int(len(data.splits["train"])),
            "batch_size": cfg.train.batch_size, "epochs_in_schedule": cfg.train.epochs,
            evaluator.primary: metrics[evaluator.primary], **memory.read()}


def bench_device(device_spec: str, data_dir: Path | None = None, quick: bool = False, epochs: int = 2,
                 log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Every AVE model x setting x precision, then CLASP at UnAV-100 size, on ``device_spec``."""
    device = resolve_device(device_spec)
    results: dict[str, Any] = {"device": str(device), "device_name": _device_name(device), "quick": quick,
                               "torch": torch.__version__, "ave": {}, "dense": {}}
    extra = [f"train.device={device}", "train.progress=false", *(QUICK if quick else [])]
    with tempfile.TemporaryDirectory(prefix="avloc-bench-device-") as tmp:
        root = data_dir
        if root is None:
            from avloc.data.synth_ave import write_synthetic_ave

            videos = QUICK_AVE_VIDEOS if quick else AVE_VIDEOS
            root = Path(tmp) / "ave"
            t0 = time.perf_counter()
            write_synthetic_ave(root, videos=videos, seed=0, dtype="float32")
            log(f"wrote {videos} synthetic AVE videos in {time.perf_counter() - t0:.0f} s")
        for setting in SETTINGS:
            data = None
            for model, precision in _ave_runs(setting, device, quick):
                cfg = load_config(config_path(f"ave/{model}_{setting}.yaml"), [*extra, f"train.precision={precision}"])
                data = data or load_data(cfg, root)
                key = f"{model}_{setting}_{precision}"
                results["ave"][key] = measure(cfg, data, device, epochs, "test")
                log(_line(key, results["ave"][key]))
            del data
    results["dense"]["clasp_fp32"] = bench_clasp(device, quick, extra)
    log(_line("clasp_fp32 (UnAV-100 size)", results["dense"]["clasp_fp32"]))
    log(markdown(results))
    return results


def _ave_runs(setting: str, device: torch.device, quick: bool) -> list[tuple[str, str]]:
    """(model, precision) pairs to time for ``setting``; a quick CPU run keeps one bf16 run."""
    return [(m, p) for m in AVE_MODELS for p in PRECISIONS
            if not (quick and device.type == "cpu" and p == "bf16" and f"{m}_{setting}" not in QUICK_CPU_BF16)]


def bench_clasp(device: torch.device, quick: bool, extra: list[str]) -> dict[str, Any]:
    """One CLASP epoch over UnAV-100-size random features, then the validation split scored."""
    from avloc.tools.bench_dense import UNAV_TRAIN_VIDEOS, UNAV_VAL_VIDEOS, unav_scale_features

    data = unav_scale_features(*((16, 8) if quick else (UNAV_TRAIN_VIDEOS, UNAV_VAL_VIDEOS)))
    cfg = load_config(config_path("unav/clasp.yaml"), [*extra, *(["train.batch_size=8"] if quick else [])])
    return measure(cfg, data, device, 1, "val")


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return platform.processor() or platform.machine()


def _memory(m: dict[str, Any]) -> str:
    if "peak_allocated_mib" in m:
        return f"{m['peak_allocated_mib']:.0f} / {m['peak_reserved_mib']:.0f}"
    return f"{m['peak_rss_mib']:.0f} (RSS)"


def _line(key: str, m: dict[str, Any]) -> str:
    return (f"{key}: {m['seconds_per_epoch']:.2f} s/epoch, eval {m['eval_split']} ({m['eval_videos']} videos) "
            f"{m['eval_seconds']:.2f} s, peak memory {_memory(m)} MiB")


def markdown(r: dict[str, Any]) -> str:
    """The results as one table, and VSCG's full schedule beside the paper's figures."""
    lines = [f"device {r['device']} ({r['device_name']}), torch {r['torch']}"
             + (" -- QUICK smoke run: tiny data, small batches, not a measurement" if r["quick"] else ""), "",
             "| run | batch | train videos | s/epoch | eval (s) | eval videos | peak MiB (allocated / reserved) |",
             "|---|---|---|---|---|---|---|"]
    for key, m in [*r["ave"].items(), *r["dense"].items()]:
        lines.append(f"| {key} | {m['batch_size']} | {m['train_videos']} | {m['seconds_per_epoch']:.2f} | "
                     f"{m['eval_seconds']:.2f} | {m['eval_videos']} | {_memory(m)} |")
    vscg = r["ave"].get("vscg_fully_fp32")
    if vscg and not r["quick"]:
        minutes = vscg["seconds_per_epoch"] * vscg["epochs_in_schedule"] / 60
        lines += ["", f"VSCG fully supervised, fp32: {vscg['epochs_in_schedule']} epochs x "
                  f"{vscg['seconds_per_epoch']:.2f} s = {minutes:.1f} min of training (evaluation excluded), "
                  f"peak {_memory(vscg)} MiB; the VSCG paper: {VSCG_PAPER['minutes']:.0f} min and "
                  f"{VSCG_PAPER['mib']:,.0f} MiB on a {VSCG_PAPER['gpu']} (nvidia-smi, CUDA context included)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m avloc.tools.bench_device", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu")
    p.add_argument("--data", default=None, help="AVE folder (default: synthetic, written to a temp folder)")
    p.add_argument("--quick", action="store_true", help="tiny data and batches: checks the script, measures nothing")
    p.add_argument("--epochs", type=int, default=None, help="epochs timed per AVE run (default 2, quick 1)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    res = bench_device(args.device, Path(args.data) if args.data else None, args.quick,
                       args.epochs or (1 if args.quick else 2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
