"""Whether bf16 autocast can pay off on a device: bf16 matrix instructions on CPUs, bf16 tensor cores on GPUs.

On a CPU without avx512_bf16 / AMX (PyTorch's oneDNN reports no bf16 support) bf16 matrix products fall back
to slow reference kernels: ``train.precision: bf16`` then costs time instead of saving it (``avloc bench ave``
measures both precisions and the matmul rates side by side). ``fit`` says so in its log rather than silently
switching precision: the run is still what its config asks for.
"""

from __future__ import annotations

from pathlib import Path

import torch

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of bf16 matrix instructions
# the flags that decide which float32 / bf16 / int8 kernels oneDNN, ONNX Runtime and OpenVINO run
KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where it is not there)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def kernel_flags() -> list[str]:
    """Which of ``KERNEL_FLAGS`` this CPU has (what benchmarks print beside the CPU model)."""
    return sorted(set(KERNEL_FLAGS) & cpu_flags())


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def bf16_matmul_support(device: torch.device) -> tuple[bool, str]:
    """(has fast bf16 matmuls, a one-line reason naming what was checked)."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, f"{torch.cuda.get_device_name(device)}: bf16 {'supported' if ok else 'not supported'}"
    flags = sorted(set(CPU_BF16_FLAGS) & cpu_flags())
    ok = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return ok, (f"CPU bf16 matmul in oneDNN: {'yes' if ok else 'no'} "
                f"(cpu flags {', '.join(flags) if flags else 'without ' + ' / '.join(CPU_BF16_FLAGS)}, "
                f"torch CPU capability {torch.backends.cpu.get_cpu_capability()})")
