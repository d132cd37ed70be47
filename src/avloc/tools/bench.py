"""``avloc bench ave``: seconds per training epoch against the arithmetic bound, evaluation time, peak RSS.

The bound of an epoch is the model's FLOPs for one epoch (forward and backward, counted by
``torch.utils.flop_counter`` on a real batch) divided by the float32 matrix-multiply rate measured in the same
process on the shape that dominates AVE models (the attention's 512x512 projection of 49 regions x 10 segments
x batch). A ratio near 1 means the epoch costs little beyond its unavoidable arithmetic.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula

from avloc.config import Config, TrainConfig, load_config
from avloc.data.base import InMemoryDataset
from avloc.engine import distributed as dist_utils
from avloc.engine.build import build_evaluator, build_loss, build_model, build_optimizer, load_data
from avloc.engine.loop import batches_per_epoch, train_one_epoch
from avloc.engine.memory import peak_rss_mb, reset_peak_rss
from avloc.engine.precision import KERNEL_FLAGS, bf16_matmul_support, cpu_model, kernel_flags
from avloc.kernels.region_attention import FUSED_LINEAR_RELU
from avloc.tools.paths import config_path

BENCH_CONFIGS = {"vscg": "ave/vscg_fully.yaml", "psp": "ave/psp_fully.yaml"}


def matmul_rate(rows: int, dim: int = 512, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """Measured FLOP/s of ``torch.mm`` (rows, dim) @ (dim, dim) in ``dtype`` into a preallocated output, best
    of ``repeats``: the arithmetic rate alone (a fresh 128 MB output per call would add page faults and
    understate it, which would flatter every ratio to the bound)."""
    a = torch.randn(rows, dim).to(dtype)
    w = torch.randn(dim, dim).to(dtype)
    out = torch.empty(rows, dim, dtype=dtype)
    return _best_rate(lambda: torch.mm(a, w, out=out), 2.0 * rows * dim * dim, repeats)


def linear_rate(rows: int, dim: int = 512, repeats: int = 3, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of ``F.linear`` (the op nn.Linear, and so autocast, runs) on (rows, dim) x (dim, dim) in ``dtype``."""
    a = torch.randn(rows, dim).to(dtype)
    w = torch.randn(dim, dim).to(dtype)
    return _best_rate(lambda: torch.nn.functional.linear(a, w), 2.0 * rows * dim * dim, repeats)


def onednn_linear_rate(rows: int, dim: int = 512, repeats: int = 5) -> float | None:
    """FLOP/s of oneDNN's linear (the kernel avloc's attention projection runs on CPU), or None without it."""
    if not FUSED_LINEAR_RELU:
        return None
    a = torch.randn(rows, dim)
    w = torch.randn(dim, dim)
    b = torch.randn(dim)
    return _best_rate(lambda: torch.ops.mkldnn._linear_pointwise(a, w, b, "none", [], ""), 2.0 * rows * dim * dim,
                      repeats)


def _best_rate(fn: Callable[[], object], flops: float, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return flops / best


def _rnn_layer_flops(input_shape, w_ih_shape, w_hh_shape) -> int:  # type: ignore[no-untyped-def]
    """Matmul FLOPs of one direction of a recurrent layer: ``2 * T*B * gates*H * (in + H)``."""
    steps = math.prod(input_shape[:-1])
    return 2 * steps * (math.prod(w_ih_shape) + math.prod(w_hh_shape))


# torch's counter has no formula for oneDNN's fused LSTM kernel, which nn.LSTM runs on CPU, so without these its
# input and hidden matmuls (real model FLOPs, counted when the LSTM runs op by op) would be missing from the
# bound. The backward computes the input, hidden and both weight gradients: twice the forward, less the
# gradient into the initial state (a constant zero state needs none), as op-by-op autograd counts it.
if FUSED_LINEAR_RELU:  # the attention kernel's fused oneDNN GEMM, so that the FLOP counter sees it

    @register_flop_formula(torch.ops.mkldnn._linear_pointwise)
    def _linear_pointwise_flops(x_shape, w_shape, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
        return 2 * math.prod(x_shape[:-1]) * x_shape[-1] * w_shape[0]


@register_flop_formula(torch.ops.aten.mkldnn_rnn_layer)
def _mkldnn_rnn_layer_flops(input_shape, w_ih_shape, w_hh_shape, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
    return _rnn_layer_flops(input_shape, w_ih_shape, w_hh_shape)


@register_flop_formula(torch.ops.aten.mkldnn_rnn_layer_backward)
def _mkldnn_rnn_layer_backward_flops(  # type: ignore[no-untyped-def]
    input_shape, w_ih_shape, w_hh_shape, b_ih_shape, b_hh_shape, hx_shape, *args, **kwargs
) -> int:
    return 2 * _rnn_layer_flops(input_shape, w_ih_shape, w_hh_shape) - 2 * hx_shape[0] * math.prod(w_hh_shape)


def step_flops(model: torch.nn.Module, loss_fn: torch.nn.Module, batch: dict[str, torch.Tensor]) -> int:
    """FLOPs of one forward + backward pass on ``batch`` (matmuls and convolutions, as torch counts them)."""
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(batch)
        loss_fn(out, batch)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


BF16_PROBE_ROWS = 2048  # bf16 matmul probe: small, since without bf16 instructions it runs ~50x slower


@contextlib.contextmanager
def timed_share(data: InMemoryDataset, train: TrainConfig, steps: int) -> Iterator[float]:
    """Restrict the training split to ``steps`` whole batches of a fixed random subset (0 = the whole split)
    and yield the factor that scales the time of that shorter epoch to a full one."""
    full = data.splits["train"]
    n = len(full)
    epoch_steps = batches_per_epoch(n, train)
    if not steps or steps >= epoch_steps:
        yield 1.0
        return
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(0))[: steps * train.batch_size]
    data.splits["train"] = full[pick.sort().values]
    try:
        yield epoch_steps / steps
    finally:
        data.splits["train"] = full


def bench_ave(data_dir: Path, models: list[str] | None = None, epochs: int = 2, json_out: str | None = None,
              log: Any = print, overrides: list[str] | None = None, precisions: list[str] | None = None,
              steps: int = 0) -> dict[str, Any]:
    """Time ``epochs`` training epochs (the fastest counts) and one test evaluation per model and precision.

    ``steps`` > 0 times that many batches of a fixed random subset per epoch and scales the time to the
    full epoch (for runs too slow to time whole, e.g. bf16 on a CPU without bf16 instructions).
    The matmul rates are measured before the first model and after each one, and the best is kept: a
    measurement taken while the shared host briefly slowed down would understate the rate and flatter the
    ratio, so the bound is the strictest one seen.
    """
    models = models or list(BENCH_CONFIGS)
    precisions = precisions or ["fp32"]
    bf16_ok, bf16_reason = bf16_matmul_support(torch.device("cpu"))
    results: dict[str, Any] = {"cpu": cpu_model(), "cpu_flags": kernel_flags(), "threads": torch.get_num_threads(),
                               "load_average_1_5_15min": [round(x, 1) for x in os.getloadavg()],
                               "models": {}, "steps": steps,
                               "bf16_matmul_support": bf16_ok, "bf16_support_detail": bf16_reason}
    data = None
    rates: dict[str, float] = {}

    def measure_rates(rows: int) -> None:
        rates["mm"] = max(rates.get("mm", 0.0), matmul_rate(rows) / 1e9)
        onednn = onednn_linear_rate(rows)
        if onednn is not None:
            rates["onednn"] = max(rates.get("onednn", 0.0), onednn / 1e9)
        if "bf16" in precisions:  # small shapes, each beside its float32 twin: the ratios are what count
            probes = {"bf16_mm": lambda: matmul_rate(BF16_PROBE_ROWS, repeats=3, dtype=torch.bfloat16),
                      "fp32_mm_small": lambda: matmul_rate(BF16_PROBE_ROWS, repeats=3),
                      "bf16": lambda: linear_rate(BF16_PROBE_ROWS, dtype=torch.bfloat16),
                      "fp32_linear_small": lambda: linear_rate(BF16_PROBE_ROWS)}
            for key, probe in probes.items():
                rates[key] = max(rates.get(key, 0.0), probe() / 1e9)

    for name in models:
        for precision in precisions:
            cfg = load_config(config_path(BENCH_CONFIGS.get(name, name)),
                              [f"train.epochs={epochs}", f"train.precision={precision}", *(overrides or [])])
            cfg.train.progress = False
            rows = cfg.train.batch_size * 10 * 49  # the dominant GEMM: 49 regions x 10 segments x batch
            if data is None:
                t0 = time.perf_counter()
                data = load_data(cfg, data_dir)
                results["load_seconds"] = time.perf_counter() - t0
                results["rss_after_load_mb"] = peak_rss_mb()
                results["train_videos"] = len(data.splits["train"])
                measure_rates(rows)
            key = name if precision == "fp32" else f"{name} {precision}"
            results["models"][key] = _bench_model(cfg, data, epochs, steps)
            results["models"][key]["precision"] = precision
            measure_rates(rows)
    # the loading peak came before the first reset; each model's own peak after its reset
    results["peak_rss_mb"] = max(results["rss_after_load_mb"], *(m["peak_rss_mb"] for m in results["models"].values()))
    results["matmul_gflops"] = rates["mm"]
    if "onednn" in rates:
        results["onednn_linear_gflops"] = rates["onednn"]
    if "bf16" in rates:
        results["bf16_linear_gflops"] = rates["bf16"]
        results["fp32_linear_gflops_same_shape"] = rates["fp32_linear_small"]
        results["bf16_mm_gflops"] = rates["bf16_mm"]
        results["fp32_mm_gflops_same_shape"] = rates["fp32_mm_small"]
    for name, m in results["models"].items():  # one rate (the best measured) for every model's bound
        rate = rates["bf16"] if m["precision"] == "bf16" else rates["mm"]
        m["bound_seconds"] = m["epoch_gflop"] / rate
        m["ratio_to_bound"] = m["seconds_per_epoch"] / m["bound_seconds"]
        if "onednn" in rates and m["precision"] == "fp32":
            m["ratio_to_onednn_bound"] = m["seconds_per_epoch"] * rates["onednn"] / m["epoch_gflop"]
        log(f"{name}: {m['seconds_per_epoch']:.2f} s/epoch ({m['videos_per_second']:.0f} videos/s), bound "
            f"{m['bound_seconds']:.2f} s (ratio {m['ratio_to_bound']:.2f}), test eval {m['eval_test_seconds']:.3f} s")
    log(_markdown(results))
    if json_out:
        Path(json_out).write_text(json.dumps(results, indent=2) + "\n")
    return results


def _bench_model(cfg: Config, data: InMemoryDataset, epochs: int, steps: int) -> dict[str, Any]:
    """One model in one precision: epoch time (the fastest; scaled up from ``steps`` batches when given),
    FLOPs, test evaluation time and this run's peak RSS."""
    reset_peak_rss()  # this model's peak (with the data resident), not the previous model's
    torch.manual_seed(0)
    model = build_model(cfg, data)
    loss_fn = build_loss(cfg)
    evaluator = build_evaluator(cfg)
    opt = build_optimizer(cfg, model, torch.device("cpu"))
    n_train = len(data.splits["train"])
    n_batches = batches_per_epoch(n_train, cfg.train)
    model.train()
    flops = step_flops(model, loss_fn, data.batch(data.splits["train"][: cfg.train.batch_size]))
    info = dist_utils.DistInfo()
    times = []
    with timed_share(data, cfg.train, steps) as scale:
        for e in range(epochs):
            t0 = time.perf_counter()
            train_one_epoch(model, loss_fn, opt, data, cfg, e, torch.device("cpu"), info)
            times.append((time.perf_counter() - t0) * scale)
    eval_times = []
    for _ in range(3):  # the first also warms up
        t0 = time.perf_counter()
        metrics = evaluator(model, data, "test", torch.device("cpu"), cfg.train.eval_batch_size)
        eval_times.append(time.perf_counter() - t0)
    sec = min(times)
    return {
        "params": model.num_parameters(),
        "epoch_seconds": times,
        "seconds_per_epoch": sec,
        "extrapolated_from_steps": steps if scale > 1 else 0,
        "videos_per_second": n_train / sec,
        "epoch_gflop": flops * n_batches / 1e9,
        "eval_test_seconds": min(eval_times[1:]),
        "eval_test_seconds_all": eval_times,
        "test_videos": len(data.splits["test"]),
        "test_acc_after_bench": metrics[evaluator.primary],
        "peak_rss_mb": peak_rss_mb(),  # before the rate measurement that follows allocates its own 256 MB
    }


def _markdown(r: dict[str, Any]) -> str:
    onednn = r.get("onednn_linear_gflops")
    lines = [f"CPU {r['cpu']} ({', '.join(r['cpu_flags']) or 'none of ' + ', '.join(KERNEL_FLAGS)}), "
             f"{r['threads']} threads, load average {r['load_average_1_5_15min']} (a shared machine skews every "
             "figure; compare rows measured in this run)",
             f"data load {r['load_seconds']:.1f} s, {r['train_videos']} train videos, fp32 matmul (torch.mm) "
             f"{r['matmul_gflops']:.0f} GFLOP/s" + (f", oneDNN linear {onednn:.0f} GFLOP/s" if onednn else "")
             + f" on {r['threads']} threads, peak RSS {r['peak_rss_mb']:.0f} MB"]
    if "bf16_linear_gflops" in r:
        lines.append(f"bf16 on ({BF16_PROBE_ROWS} x 512) x (512 x 512), GFLOP/s: F.linear (what autocast runs) "
                     f"{r['bf16_linear_gflops']:.1f} vs fp32 {r['fp32_linear_gflops_same_shape']:.1f}, torch.mm "
                     f"{r['bf16_mm_gflops']:.1f} vs fp32 {r['fp32_mm_gflops_same_shape']:.1f}; "
                     f"{r['bf16_support_detail']}; bf16 bounds use the bf16 F.linear rate")
    if r["steps"]:
        lines.append(f"s/epoch of runs marked * scaled up from {r['steps']} timed batches of a fixed random subset")
    lines += ["", "| model | params | s/epoch | videos/s | bound s | ratio | ratio (oneDNN rate) | eval test (s) "
              "| peak RSS (MB) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, m in r["models"].items():
        star = "*" if m["extrapolated_from_steps"] else ""
        lines.append(f"| {name} | {m['params']:,} | {m['seconds_per_epoch']:.2f}{star} | {m['videos_per_second']:.0f} | "
                     f"{m['bound_seconds']:.2f} | {m['ratio_to_bound']:.2f} | "
                     f"{m.get('ratio_to_onednn_bound', float('nan')):.2f} | {m['eval_test_seconds']:.3f} | "
                     f"{m['peak_rss_mb']:.0f} |")
    return "\n".join(lines)
