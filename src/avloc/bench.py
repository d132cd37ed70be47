"""``avloc bench ave``: seconds per training epoch against the arithmetic bound, evaluation time, peak RSS.

The bound of an epoch is the model's FLOPs for one epoch (forward and backward, counted by
``torch.utils.flop_counter`` on a real batch) divided by the float32 matrix-multiply rate measured in the same
process on the shape that dominates AVE models (the attention's 512x512 projection of 49 regions x 10 segments
x batch). A ratio near 1 means the epoch costs little beyond its unavoidable arithmetic.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from avloc.config import load_config
from avloc.engine import distributed as dist_utils
from avloc.engine.loop import build_evaluator, build_loss, build_model, load_data, peak_rss_mb, train_one_epoch
from avloc.paths import config_path

BENCH_CONFIGS = {"vscg": "ave/vscg_fully.yaml", "psp": "ave/psp_fully.yaml"}


def matmul_rate(rows: int, dim: int = 512, repeats: int = 5) -> float:
    """Measured float32 FLOP/s of a (rows, dim) @ (dim, dim) matmul, best of ``repeats``."""
    a = torch.randn(rows, dim)
    w = torch.randn(dim, dim)
    torch.mm(a, w)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, w)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * rows * dim * dim / best


def step_flops(model: torch.nn.Module, loss_fn: torch.nn.Module, batch: dict[str, torch.Tensor]) -> int:
    """FLOPs of one forward + backward pass on ``batch`` (matmuls and convolutions, as torch counts them)."""
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(batch)
        loss_fn(out, batch)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def bench_ave(data_dir: Path, models: list[str] | None = None, epochs: int = 1, json_out: str | None = None,
              log: Any = print, overrides: list[str] | None = None) -> dict[str, Any]:
    """Time ``epochs`` training epochs and one test evaluation per model on the data in ``data_dir``."""
    models = models or list(BENCH_CONFIGS)
    results: dict[str, Any] = {"threads": torch.get_num_threads(), "models": {}}
    data = None
    for name in models:
        cfg = load_config(config_path(BENCH_CONFIGS.get(name, name)), [f"train.epochs={epochs}", *(overrides or [])])
        cfg.train.progress = False
        if data is None:
            t0 = time.perf_counter()
            data = load_data(cfg, data_dir)
            results["load_seconds"] = time.perf_counter() - t0
            results["rss_after_load_mb"] = peak_rss_mb()
            results["train_videos"] = len(data.splits["train"])
            rows = cfg.train.batch_size * 10 * 49
            results["matmul_gflops"] = matmul_rate(rows) / 1e9
        torch.manual_seed(0)
        model = build_model(cfg, data)
        loss_fn = build_loss(cfg)
        evaluator = build_evaluator(cfg)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
        n_train = len(data.splits["train"])
        n_batches = n_train // cfg.train.batch_size if cfg.train.drop_last else -(-n_train // cfg.train.batch_size)
        model.train()
        flops = step_flops(model, loss_fn, data.batch(data.splits["train"][: cfg.train.batch_size]))
        epoch_flops = flops * n_batches
        info = dist_utils.DistInfo()
        times = []
        for e in range(epochs):
            t0 = time.perf_counter()
            train_one_epoch(model, loss_fn, opt, data, cfg, e, torch.device("cpu"), info)
            times.append(time.perf_counter() - t0)
        evaluator(model, data, "test", torch.device("cpu"), cfg.train.eval_batch_size)  # warm-up
        t0 = time.perf_counter()
        metrics = evaluator(model, data, "test", torch.device("cpu"), cfg.train.eval_batch_size)
        eval_s = time.perf_counter() - t0
        sec = min(times)
        # Re-measure the matmul rate after the epochs and keep the best: a one-off measurement taken while
        # another process briefly held a core would understate the rate and flatter the ratio.
        rows = cfg.train.batch_size * 10 * 49
        results["matmul_gflops"] = max(results["matmul_gflops"], matmul_rate(rows) / 1e9)
        results["models"][name] = {
            "params": model.num_parameters(),
            "seconds_per_epoch": sec,
            "videos_per_second": n_batches * cfg.train.batch_size / sec,
            "epoch_gflop": epoch_flops / 1e9,
            "eval_test_seconds": eval_s,
            "test_videos": len(data.splits["test"]),
            "test_acc_after_bench": metrics[evaluator.primary],
        }
    for name, m in results["models"].items():  # one rate (the best measured) for every model's bound
        m["bound_seconds"] = m["epoch_gflop"] / results["matmul_gflops"]
        m["ratio_to_bound"] = m["seconds_per_epoch"] / m["bound_seconds"]
        log(f"{name}: {m['seconds_per_epoch']:.2f} s/epoch ({m['videos_per_second']:.0f} videos/s), bound "
            f"{m['bound_seconds']:.2f} s (ratio {m['ratio_to_bound']:.2f}), test eval {m['eval_test_seconds']:.3f} s")
    results["peak_rss_mb"] = peak_rss_mb()
    log(_markdown(results))
    if json_out:
        Path(json_out).write_text(json.dumps(results, indent=2) + "\n")
    return results


def _markdown(r: dict[str, Any]) -> str:
    lines = [f"data load {r['load_seconds']:.1f} s, {r['train_videos']} train videos, fp32 matmul "
             f"{r['matmul_gflops']:.0f} GFLOP/s on {r['threads']} threads, peak RSS {r['peak_rss_mb']:.0f} MB", "",
             "| model | params | s/epoch | videos/s | bound s | ratio | eval 402 test videos (s) |",
             "|---|---|---|---|---|---|---|"]
    for name, m in r["models"].items():
        lines.append(f"| {name} | {m['params']:,} | {m['seconds_per_epoch']:.2f} | {m['videos_per_second']:.0f} | "
                     f"{m['bound_seconds']:.2f} | {m['ratio_to_bound']:.2f} | {m['eval_test_seconds']:.3f} |")
    return "\n".join(lines)
