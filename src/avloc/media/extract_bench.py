"""Benchmarks of ``Extractor`` across inference engines and precisions: speed by stage, and fidelity.

Speed: every (engine, precision) extracts the same clip at the AVE recipe, in rounds that visit each engine
once per round (load from other processes then hits them all alike; the best round of each counts), with
the time split into decoding, resizing and each network (work per stage; decoding and resizing run in a
thread beside the networks, so the wall time is less than their sum on two or more cores). Fidelity: the features of every clip by each
engine against eager float32, as a relative L2 error per clip. Both print the CPU model and the flags that
decide which kernels run (``cpu_report``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.engine.precision import cpu_model, kernel_flags
from avloc.media.backbones.base import RESIZE_PRECISIONS
from avloc.media.decode import probe
from avloc.media.engines import ENGINES, installed
from avloc.media.engines.support import has_precision, version
from avloc.media.extract import ExtractConfig, Extractor
from avloc.media.weights import WeightsError

ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")  # lower what torch dispatches to
DEFAULT_PAIRS = ["efficientnet_lite0+aisfx", "efficientnet_lite0+soundnet8"]


def cpu_report() -> dict[str, Any]:
    """CPU model, the flags that matter for these kernels, the ISA torch dispatches to (and the variables that
    lower it, when set), threads, load average and library versions."""
    isa_env = {k: os.environ[k] for k in ISA_ENV if k in os.environ}
    return {"cpu": cpu_model(), "flags": kernel_flags(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            **({"isa_env": isa_env} if isa_env else {}),
            "threads": torch.get_num_threads(), "load_average_1_5_15min": [round(x, 1) for x in os.getloadavg()],
            "versions": {e: version(e) for e in ENGINES if installed(e)}}


def combos(device: str = "cpu") -> list[tuple[str, str, str]]:
    """Every installed (engine, precision) that runs on ``device`` with each resize precision; eager float32
    with the float32 resize first (the reference)."""
    dev = torch.device(device)
    engines = ENGINES if dev.type == "cpu" else ("torch",)
    return [(e, p, r) for r in RESIZE_PRECISIONS for e in engines for p in ("fp32", "bf16")
            if installed(e) and has_precision(e, p, dev)]


def parse_combo(text: str) -> tuple[str, str, str]:
    """``ENGINE:PRECISION[:RESIZE]`` (e.g. ``openvino:bf16:uint8``) -> a tuple; the resize defaults to fp32."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"engine spec {text!r} must be ENGINE:PRECISION[:RESIZE], e.g. openvino:bf16:uint8")
    return (parts[0], parts[1], parts[2] if len(parts) == 3 else "fp32")


def _extractor(cfg: ExtractConfig) -> tuple[Extractor, bool]:
    try:
        return Extractor(cfg), False
    except WeightsError:  # the user's VGG files are absent: time the same networks with random weights
        return Extractor(cfg, random_weights=True), True


def bench_speed(video: str | Path, pairs: list[str] | None = None, device: str = "cpu", rounds: int = 3,
                engines: list[tuple[str, str, str]] | None = None, frames_per_segment: int = 16,
                threads: list[int] | None = None) -> list[dict[str, Any]]:
    """Per pair, (engine, precision, resize precision) and thread count: x real time and seconds per video-second of each stage
    (best round). ``threads`` (default: torch's current count) are interleaved like the engines, so the
    rows show which counts hold up under the load of the moment."""
    seconds = min(probe(video).duration, 10.0)
    counts = threads or [torch.get_num_threads()]
    before = torch.get_num_threads()
    rows = []
    try:
        for pair in pairs or DEFAULT_PAIRS:
            visual, audio = pair.split("+")
            extractors = {}
            for n in counts:
                torch.set_num_threads(n)  # the engines take torch's count when they are built
                for engine, precision, resize in engines or combos(device):
                    cfg = ExtractConfig(format="ave", visual=visual, audio=audio, device=device, engine=engine,
                                        precision=precision, frames_per_segment=frames_per_segment,
                                        resize_precision=resize)
                    extractors[(engine, precision, resize, n)] = _extractor(cfg)
                    extractors[(engine, precision, resize, n)][0].video(video)  # warm-up: export, compile
            best: dict[tuple[str, str, str, int], tuple[float, dict[str, float]]] = {}
            for _ in range(rounds):
                for key, (ex, _) in extractors.items():
                    torch.set_num_threads(key[3])
                    ex.times = dict.fromkeys(ex.times, 0.0)
                    t0 = time.perf_counter()
                    ex.video(video)
                    wall = time.perf_counter() - t0
                    if key not in best or wall < best[key][0]:
                        best[key] = (wall, dict(ex.times))
            for (engine, precision, resize, n), (wall, stages) in best.items():
                rows.append({"pair": pair, "engine": engine, "precision": precision, "resize_precision": resize,
                             "threads": n, "random_weights": extractors[(engine, precision, resize, n)][1],
                             "video_s": round(seconds, 2),
                             "wall_s": round(wall, 3), "x_realtime": round(seconds / wall, 2),
                             **{f"{k}_s_per_video_s": round(v / seconds, 4) for k, v in stages.items()}})
    finally:
        torch.set_num_threads(before)
    return rows


def bench_fidelity(videos: list[Path], pairs: list[str] | None = None, frames_per_segment: int = 16,
                   engines: list[tuple[str, str, str]] | None = None) -> list[dict[str, Any]]:
    """Relative L2 error of each engine's (and resize precision's) AVE features against eager float32, per stream: mean and max
    over ``videos`` (each video's whole (10, ...) feature array counts as one vector)."""
    rows = []
    for pair in pairs or DEFAULT_PAIRS:
        visual, audio = pair.split("+")
        ref_key = ("torch", "fp32", "fp32")
        todo = [c for c in engines or combos() if c != ref_key]
        made = {}
        for engine, precision, resize in [ref_key, *todo]:
            cfg = ExtractConfig(format="ave", visual=visual, audio=audio, engine=engine, precision=precision,
                                frames_per_segment=frames_per_segment, resize_precision=resize)
            ex = Extractor(cfg)
            made[(engine, precision, resize)] = [ex.video(v)[:2] for v in videos]  # [(audio, visual)]
        ref = made[ref_key]
        for key in todo:
            errs = np.array([[_rel(a, ra), _rel(v, rv)] for (a, v), (ra, rv) in zip(made[key], ref)])  # (N, 2)
            rows.append({"pair": pair, "engine": key[0], "precision": key[1], "resize_precision": key[2],
                         "videos": len(videos),
                         "audio_rel_err_mean": float(errs[:, 0].mean()), "audio_rel_err_max": float(errs[:, 0].max()),
                         "visual_rel_err_mean": float(errs[:, 1].mean()),
                         "visual_rel_err_max": float(errs[:, 1].max())})
    return rows


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))
