"""Optional fast kernels that sit beside the plain PyTorch path of a block, chosen by one switch.

A block decides once, in ``__init__``, with :func:`use_fused_attn` (timm's pattern) and runs its plain
equations whenever the kernel is off or does not apply. The kernel is on by default only where it is
measured faster (``avloc bench``): CPU float32 without autocast. ``AVLOC_FUSED_ATTN=0`` in the environment
(or :func:`set_fused_attn`) switches it off, e.g. to time or debug the plain path.
"""

from __future__ import annotations

import os

import torch

from avloc.kernels.region_attention import ActivationBuffer, attend_regions

__all__ = ["ActivationBuffer", "attend_regions", "fused_attn_applies", "set_fused_attn", "use_fused_attn"]

_FUSED_ATTN = os.environ.get("AVLOC_FUSED_ATTN", "1").strip().lower() not in ("0", "false", "no", "off")


def use_fused_attn() -> bool:
    """Whether blocks built from now on use the fused attention kernel where it applies."""
    return _FUSED_ATTN


def set_fused_attn(enable: bool) -> None:
    """Switch the fused attention kernel on or off for blocks built from now on."""
    global _FUSED_ATTN
    _FUSED_ATTN = bool(enable)


def fused_attn_applies(x: torch.Tensor) -> bool:
    """The kernel is measured faster only for CPU float32 inputs outside autocast."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
