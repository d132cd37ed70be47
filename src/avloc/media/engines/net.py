"""``EngineNet``: a backbone's network run by the engine asked for, or by the one measured fastest here.

The backbone's PyTorch module is the one definition. ``Backbone.engine_parts`` splits it into a cheap front
run in torch (e.g. aiSFX's log-mel) and the core network an engine runs; ONNX Runtime and OpenVINO run an
ONNX export of that core (see ``cache``). Engines are resolved per input shape on first use: ``auto`` then
times every installed engine on that very input, in interleaved rounds so that load from other processes
hits each alike, keeps the fastest, and caches the choice with the CPU model and flags, the module digest,
the shape, the precision, the threads and the library versions; later processes read it instead of timing.
``auto`` chooses the engine only: the precision is the one asked for (float32 by default), so an automatic
engine never changes the features by more than float32 rounding. ``precision="auto"`` (asked for, never the
default) lets the same timing choose bf16 too, for the backbones whose bf16 accuracy has been checked
(``support.BF16_CHECKED``) on hardware with bf16 units: the fastest (engine, precision) wins.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
from torch import nn

from avloc.engine.precision import cpu_flags, cpu_model, kernel_flags
from avloc.media.engines import cache
from avloc.media.engines.runners import RUNNERS
from avloc.media.engines.support import (ENGINES, bf16_checked, candidates, check, engine_threads, has_precision,
                                         version)

log = logging.getLogger(__name__)

AUTO_FILE = "auto.json"
AUTO_ROUNDS = 3  # interleaved timing rounds per candidate; the best call of each counts

Runner = Callable[[torch.Tensor], torch.Tensor]


class EngineNet:
    """Callable like the backbone's ``forward``: float (N, ...) -> float32 (N, ...), on the chosen engine."""

    def __init__(self, backbone: nn.Module, name: str, engine: str = "auto", precision: str = "fp32",
                 threads: int = 0) -> None:
        device = next(backbone.parameters()).device
        check(engine, precision, device)
        self.front, self.core = backbone.engine_parts()
        self.name, self.engine, self.precision, self.device = name, engine, precision, device
        # SoundNet's tapped layer: a LayerMap names it itself, a whole backbone in its Config
        self.layer = str(getattr(backbone, "layer", "") or getattr(getattr(backbone, "cfg", None), "layer", ""))
        self.threads = engine_threads(threads)
        self.runners: dict[tuple[int, ...], Runner] = {}  # per-sample input shape -> runner
        self.chosen: dict[tuple[int, ...], str] = {}  # per-sample input shape -> engine name
        self.precisions: dict[tuple[int, ...], str] = {}  # per-sample input shape -> precision that ran
        self.timings: dict[tuple[int, ...], dict[str, float]] = {}  # auto's seconds per call, when it timed
        self._digest = ""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self.front(x)  # (N, ...) the core's input
        shape = tuple(x.shape[1:])
        if shape not in self.runners:
            (self.chosen[shape], self.precisions[shape]), self.runners[shape] = self._resolve(x)
        return self.runners[shape](x)

    def describe(self) -> str:
        """What ran, e.g. ``openvino fp32`` (several engines for several shapes are listed)."""
        used = sorted(set(self.chosen.values())) or ([self.engine] if self.engine != "auto" else [])
        precisions = sorted(set(self.precisions.values())) or [self.precision]
        return f"{'+'.join(used) or 'auto (not run yet)'} {'+'.join(precisions)}"

    @property
    def digest(self) -> str:
        if not self._digest:
            self._digest = cache.module_digest(self.core)
        return self._digest

    def options(self, engine: str) -> list[tuple[str, str]]:
        """The (engine, precision) pairs to choose among: ``engine`` ("auto": every installed one) in the
        precision asked for, or with ``auto`` precision float32 and, where checked and supported, bf16."""
        fixed = [self.precision] if self.precision != "auto" else \
            ["fp32", *(["bf16"] if bf16_checked(self.name, self.layer) else [])]
        return [(e, p) for p in fixed for e in candidates(p, self.device)
                if engine in ("auto", e) and has_precision(e, p, self.device)]

    def build(self, engine: str, sample_shape: tuple[int, ...], precision: str | None = None) -> Runner:
        """A runner of ``engine`` for inputs (N, *sample_shape); the ONNX export is made once and cached."""
        precision = precision or self.precision
        if engine == "torch":
            return RUNNERS["torch"](self.core, precision, self.threads)
        key = cache.cache_key({"backbone": self.name, "module": self.digest, "shape": list(sample_shape),
                               "engine": engine, "engine_version": version(engine), "torch": version("torch"),
                               "opset": cache.ONNX_OPSET})
        path = cache.export_onnx(self.core, sample_shape, cache.cache_dir() / f"{self.name}-{key}.onnx")
        return RUNNERS[engine](path, precision, self.threads)

    def _resolve(self, x: torch.Tensor) -> tuple[tuple[str, str], Runner]:
        shape = tuple(x.shape[1:])
        options = self.options(self.engine)
        if len(options) == 1:
            engine, precision = options[0]
            return options[0], self.build(engine, shape, precision)
        labels = {self._label(o): o for o in options}  # "openvino" or, with auto precision, "openvino bf16"
        key = self._auto_key(tuple(x.shape), list(labels))
        path = cache.cache_dir() / AUTO_FILE
        known = cache.read_json(path).get(key)
        if isinstance(known, dict) and known.get("choice") in labels:
            engine, precision = labels[known["choice"]]
            return (engine, precision), self.build(engine, shape, precision)
        runners = {}
        for label, (engine, precision) in labels.items():  # an engine that cannot take this network is left out
            try:
                runners[label] = self.build(engine, shape, precision)
            except Exception as exc:  # noqa: BLE001 - exporters and engines raise many types
                if engine == "torch":
                    raise
                log.warning("auto: %s cannot run %s (%s); choosing among the others", engine, self.name,
                            str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
        seconds = time_runners(runners, x)
        best = min(seconds, key=seconds.__getitem__)
        self.timings[shape] = seconds
        table = cache.read_json(path)
        table[key] = {"choice": best, "engine": labels[best][0], "precision": labels[best][1],
                      "seconds_per_call": seconds, "backbone": self.name, "input": list(x.shape),
                      "asked": f"{self.engine} {self.precision}", "threads": self.threads, "cpu": cpu_model(),
                      "flags": kernel_flags()}
        cache.write_json(path, table)
        return labels[best], runners[best]

    def _label(self, option: tuple[str, str]) -> str:
        return option[0] if self.precision != "auto" else f"{option[0]} {option[1]}"

    def _auto_key(self, full_shape: tuple[int, ...], labels: list[str]) -> str:
        return cache.cache_key({"cpu": cpu_model(), "flags": sorted(cpu_flags()), "backbone": self.name,
                                "module": self.digest, "input": list(full_shape), "precision": self.precision,
                                "threads": self.threads, "versions": {n: version(n) for n in ENGINES},
                                "candidates": labels})


def time_runners(runners: dict[str, Runner], x: torch.Tensor, rounds: int = AUTO_ROUNDS) -> dict[str, float]:
    """Best seconds per call of each runner on ``x``: one warm-up each, then ``rounds`` interleaved rounds."""
    for run in runners.values():
        run(x)
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(rounds):
        for name, run in runners.items():
            t0 = time.perf_counter()
            run(x)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best

