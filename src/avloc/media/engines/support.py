"""Which engines and precisions this machine can run, with the one-line errors for those it cannot."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os

import torch

from avloc.engine.precision import bf16_matmul_support

ENGINES = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16")
PRECISION_CHOICES = ("auto", *PRECISIONS)  # auto: the fastest of fp32 and, where checked here, bf16
CHOICES = ("auto", *ENGINES)

# (backbone, tapped layer) whose accuracy in bf16 has been measured against float32 on real data and stayed
# within 0.5 point (`avloc bench backbones --engines ...`: ESC-10 accuracy for the audio nets, ImageNet-sample
# top-1 for the visual one, on every bf16 engine; docs/extract.md has the table). Only these may be given bf16
# by ``precision="auto"``; any other backbone or layer runs float32 unless bf16 is asked for by name.
BF16_CHECKED = {("efficientnet_lite0", ""), ("aisfx", ""), ("soundnet8", "pool5")}


class EngineError(ValueError):
    """An engine or precision that cannot run here (missing package, no bf16 units, a GPU device)."""


def installed(engine: str) -> bool:
    """Torch always; the others need their package and ``onnx``, which torch's exporter writes the model with."""
    if engine == "torch":
        return True
    return importlib.util.find_spec(engine) is not None and importlib.util.find_spec("onnx") is not None


def version(engine: str) -> str:
    """The installed version of the engine's package ("" when it is absent)."""
    if engine == "torch":
        return torch.__version__
    try:
        return importlib.metadata.version(engine)
    except importlib.metadata.PackageNotFoundError:
        return ""


@functools.lru_cache(maxsize=None)
def _openvino_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def has_precision(engine: str, precision: str, device: torch.device) -> bool:
    """Whether ``engine`` runs ``precision`` fast on ``device`` (bf16 only on hardware with bf16 units)."""
    if precision == "fp32":
        return True
    if engine == "torch":
        return bf16_matmul_support(device)[0]
    return engine == "openvino" and _openvino_bf16()


def bf16_checked(backbone: str, layer: str = "") -> bool:
    """Whether ``precision="auto"`` may choose bf16 for this backbone and layer (see ``BF16_CHECKED``)."""
    return (backbone, layer) in BF16_CHECKED


def check(engine: str, precision: str, device: torch.device) -> None:
    """Raise an ``EngineError`` naming the fix when ``engine`` / ``precision`` cannot run on ``device``."""
    if engine not in CHOICES:
        raise EngineError(f"engine must be one of {', '.join(CHOICES)}, got {engine!r}")
    if precision not in PRECISION_CHOICES:
        raise EngineError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
    if device.type != "cpu" and engine not in ("auto", "torch"):
        raise EngineError(f"engine {engine} runs on the CPU only; device {device} needs --engine torch (or auto)")
    if engine not in ("auto", "torch") and not installed(engine):
        missing = " ".join(p for p in (engine, "onnx") if importlib.util.find_spec(p) is None)
        raise EngineError(f"engine {engine} is not installed: pip install {missing} (or pip install 'avloc[engines]')")
    if precision == "bf16":
        names = [engine] if engine != "auto" else [e for e in ENGINES if installed(e)]
        if not any(has_precision(e, "bf16", device) for e in names):
            raise EngineError(f"precision bf16 needs bf16 units, which {engine} does not find on {device} "
                              f"({bf16_matmul_support(device)[1]}); use --precision fp32")


def candidates(precision: str, device: torch.device) -> list[str]:
    """The installed engines that ``auto`` times for ``precision`` on ``device`` (torch alone on a GPU)."""
    if device.type != "cpu":
        return ["torch"]
    return [e for e in ENGINES if installed(e) and has_precision(e, precision, device)]


def engine_threads(requested: int = 0) -> int:
    """Threads per engine: ``requested`` when > 0, else torch's count (``OMP_NUM_THREADS`` / ``set_num_threads``),
    capped at the cores this process may run on."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, requested if requested > 0 else min(torch.get_num_threads(), cores))
