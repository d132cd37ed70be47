"""Log-mel front ends as plain torch ops: framing, a windowed FFT and a triangular HTK-mel filterbank.

One filterbank serves aiSFX (Essentia ``MelBands``: power spectrum, unit-sum bands) and VGGish
(``mel_features.py``: magnitude spectrum, unnormalised bands, DC bin dropped).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale, ``1127 ln(1 + f / 700)`` (= ``2595 log10(1 + f / 700)``)."""
    return 1127.0 * torch.log1p(torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_matrix(n_fft: int, rate: int, n_mels: int, fmin: float, fmax: float, unit_sum: bool,
               zero_dc: bool) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) float32: triangles equally spaced on the mel scale between fmin and fmax."""
    bins = hz_to_mel(torch.arange(n_fft // 2 + 1, dtype=torch.float64) * rate / n_fft)  # (K,) mel of each bin
    edges = torch.linspace(float(hz_to_mel(fmin)), float(hz_to_mel(fmax)), n_mels + 2, dtype=torch.float64)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]  # (M,) each
    up = (bins[:, None] - lo) / (mid - lo)  # (K, M)
    down = (hi - bins[:, None]) / (hi - mid)  # (K, M)
    w = torch.clamp(torch.minimum(up, down), min=0.0)  # (K, M)
    if zero_dc:
        w[0] = 0.0
    if unit_sum:
        w = w / w.sum(0, keepdim=True).clamp(min=1e-12)  # each band's weights sum to 1
    return w.float()


def hann(n: int, periodic: bool, device: torch.device | None = None) -> torch.Tensor:
    """(n,) Hann window; ``periodic`` divides by n (numpy/VGGish), else by n - 1 (Essentia)."""
    k = torch.arange(n, dtype=torch.float64, device=device)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * k / (n if periodic else n - 1))).float()


def frames(x: torch.Tensor, size: int, hop: int, center: bool) -> torch.Tensor:
    """(B, S) -> (B, F, size): frames every ``hop``; ``center`` zero-pads size // 2 on both sides first."""
    if center:
        x = F.pad(x, (size // 2, size // 2))  # (B, S + size)
    if x.shape[-1] < size:
        x = F.pad(x, (0, size - x.shape[-1]))
    return x.unfold(-1, size, hop)  # (B, F, size)


def spectrum(frames_: torch.Tensor, window: torch.Tensor, n_fft: int, power: float) -> torch.Tensor:
    """(B, F, size) -> (B, F, n_fft // 2 + 1) ``|rfft(frame * window)| ** power``."""
    return torch.fft.rfft(frames_ * window, n=n_fft).abs().pow(power)  # (B, F, K)
