"""aiSFX (Ma, Cartwright & Bello, ISMIR 2022): a 9-layer log-mel CNN trained on labelled sound-effect libraries.

512-d non-negative embedding (mean over frequency, max over time), the closest offline analogue of VGGish.
Our network and front end, in the parameter layout of ``aisfx/models/checkpoint.pth`` from the PyPI wheel
(only its ``embedding_net`` is used; the nine library-specific classifier heads ship without class names).
Front end as the paper's Essentia set-up: 44.1 kHz, 2048-sample Hann frames every 1024 samples centred on
t = 0, 96 HTK-mel unit-sum bands of the power spectrum over 0-22.05 kHz, ``log10(1 + 1e4 x)``, divided by
9.4578 (the min/max constants of aisfx's ``spectrogram_normalize``, min 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from avloc.media import melspec
from avloc.media.backbones.base import BACKBONES, AudioBackbone
from avloc.media.weights import WeightsError, load_checkpoint

N_FFT, HOP, N_MELS = 2048, 1024, 96
SPEC_MAX = 9.457798957824707  # aisfx spectrogram_normalize 'original': (spec - 0) / (max - 0)


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU, then a max-pool."""

    def __init__(self, cin: int, cout: int, pool: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))  # (B, cout, T, F)
        x = F.relu(self.bn2(self.conv2(x)))  # (B, cout, T, F)
        return F.max_pool2d(x, self.pool) if self.pool > 1 else x  # (B, cout, T/p, F/p)


class EmbeddingNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv_block1 = ConvBlock(1, 64, 2)
        self.conv_block2 = ConvBlock(64, 128, 2)
        self.conv_block3 = ConvBlock(128, 256, 2)
        self.conv_block4 = ConvBlock(256, 512, 1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel[:, None]  # (B, 1, T, 96)
        for block in (self.conv_block1, self.conv_block2, self.conv_block3, self.conv_block4):
            x = block(x)  # (B, 512, T/8, 12) after the last
        return x.mean(3).amax(2)  # (B, 512): mean over frequency, max over time


@BACKBONES.register("aisfx")
class AiSFX(AudioBackbone):
    """44.1 kHz waveform windows -> (T, 512); any window of at least 8 mel frames (~0.19 s)."""

    sample_rate = 44100
    out_dim = 512
    package = ("aisfx", "aisfx/models/checkpoint.pth")
    weights_file = "checkpoint.pth"
    weights_hint = "it ships in the PyPI package: pip install --no-deps aisfx"

    def __init__(self, cfg: AudioBackbone.Config | None = None) -> None:
        super().__init__(cfg)
        self.embedding_net = EmbeddingNet()
        self.register_buffer("mel_fb", melspec.mel_matrix(N_FFT, self.sample_rate, N_MELS, 0.0, 22050.0,
                                                          unit_sum=True, zero_dc=False), persistent=False)
        self.register_buffer("window", melspec.hann(N_FFT, periodic=False), persistent=False)

    def load_weights(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        state = ckpt[0] if isinstance(ckpt, (tuple, list)) else ckpt  # the wheel's file: (state_dict, ds_dict)
        if not isinstance(state, dict):
            raise WeightsError(f"{path}: expected an aiSFX state dict, got {type(state).__name__}")
        self.load_strict({k: v for k, v in state.items() if k.startswith("embedding_net.")}, path)

    def conv_bn_pairs(self) -> Iterator[tuple[str, str]]:
        for b in range(1, 5):
            for i in (1, 2):
                yield f"embedding_net.conv_block{b}.conv{i}", f"embedding_net.conv_block{b}.bn{i}"

    def log_mel(self, windows: torch.Tensor) -> torch.Tensor:
        """(T, L) waveform -> (T, F, 96) normalised log-mel, F = 1 + L // 1024."""
        spec = melspec.spectrum(melspec.frames(windows, N_FFT, HOP, center=True), self.window, N_FFT, 2.0)
        return torch.log10(1.0 + 1e4 * (spec @ self.mel_fb)) / SPEC_MAX  # (T, F, 96)

    def engine_parts(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]:
        """The log-mel front end (an FFT on a few windows, cheap) stays in torch; engines run the CNN."""
        return self.log_mel, self.embedding_net

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.embedding_net(self.log_mel(windows))  # (T, 512)
