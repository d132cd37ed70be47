"""The exact AVE recipe (Tian et al., ECCV 2018): VGG-19 pool5 frames and VGGish 0.96 s log-mel patches.

The networks are ours, in the public parameter layouts, so a user's file loads key for key:
* ``vgg19``: torchvision's ``vgg19`` (``features.{0,2,5,...,34}``; the ``classifier.*`` keys of a full file
  are ignored). AVE's Keras model takes caffe-style input (BGR, ImageNet channel means subtracted, 0-255);
  torchvision's own file ``vgg19-dcbb9e9d.pth`` was trained on RGB / 255 standardised, which is used when
  the file has that name.
* ``vggish``: torchvggish's ``vggish-10086976.pth`` (``features.*``, ``embeddings.*``), the 128-d
  post-ReLU embedding before PCA, which is what AVE stores.
No package ships these weights; put the files in the weights folder or pass ``--weights``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from avloc.media import melspec
from avloc.media.backbones.base import BACKBONES, AudioBackbone, VisualBackbone
from avloc.media.weights import load_state_dict

_VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
_VGGISH = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # Keras imagenet_utils.preprocess_input(mode="caffe")
TORCHVISION_MEAN, TORCHVISION_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TORCHVISION_VGG19 = "vgg19-dcbb9e9d.pth"


def _vgg_features(cfg: tuple, cin: int) -> nn.Sequential:
    """The torchvision ``make_layers`` stack (3x3 conv + ReLU, "M" = 2x2 max-pool), same module indices."""
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=True)]
            cin = int(v)
    return nn.Sequential(*layers)


@BACKBONES.register("vgg19")
class VGG19(VisualBackbone):
    """224 x 224 frames -> pool5 (N, 512, 7, 7)."""

    input_size = 224
    out_dim = 512
    grid = 7
    weights_file = TORCHVISION_VGG19
    weights_hint = ("get torchvision's ImageNet VGG-19 file vgg19-dcbb9e9d.pth, or AVE's Keras VGG-19 converted "
                    "to the torchvision key layout (features.N.weight/bias)")
    caffe: bool = True

    def __init__(self, cfg: VisualBackbone.Config | None = None) -> None:
        super().__init__(cfg)
        self.features = _vgg_features(_VGG19, 3)
        self.register_buffer("mean_bgr", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("mean_rgb", torch.tensor(TORCHVISION_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std_rgb", torch.tensor(TORCHVISION_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def load_weights(self, path: Path) -> None:
        state = load_state_dict(path)
        self.load_strict({k: v for k, v in state.items() if not k.startswith("classifier.")}, path)
        self.caffe = path.name != TORCHVISION_VGG19

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.caffe:
            return x.flip(1) - self.mean_bgr  # (N, 3, S, S) BGR, mean-subtracted, 0-255 scale
        return (x - self.mean_rgb) / self.std_rgb  # (N, 3, S, S) torchvision standardisation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (N, 512, S/32, S/32)


# VGGish front end (vggish_params.py / mel_features.py)
VGGISH_RATE, WIN, HOP, FFT, MELS, PATCH = 16000, 400, 160, 512, 64, 96  # 25 ms / 10 ms, 64 bands, 0.96 s


@BACKBONES.register("vggish")
class VGGish(AudioBackbone):
    """16 kHz windows -> (T, 128): each window's first 0.96 s as a 96 x 64 log-mel patch."""

    sample_rate = VGGISH_RATE
    out_dim = 128
    ave_hop_s: ClassVar[float] = 0.96  # AVE's 10 audio rows are VGGish's back-to-back 0.96 s examples
    weights_file = "vggish-10086976.pth"
    weights_hint = "get torchvggish's VGGish file vggish-10086976.pth (the harritaylor/torchvggish release)"

    def __init__(self, cfg: AudioBackbone.Config | None = None) -> None:
        super().__init__(cfg)
        self.features = _vgg_features(_VGGISH, 1)
        self.embeddings = nn.Sequential(nn.Linear(512 * 4 * 6, 4096), nn.ReLU(True), nn.Linear(4096, 4096),
                                        nn.ReLU(True), nn.Linear(4096, 128), nn.ReLU(True))
        self.register_buffer("mel_fb", melspec.mel_matrix(FFT, VGGISH_RATE, MELS, 125.0, 7500.0,
                                                          unit_sum=False, zero_dc=True), persistent=False)
        self.register_buffer("window", melspec.hann(WIN, periodic=True), persistent=False)

    def load_weights(self, path: Path) -> None:
        self.load_strict(load_state_dict(path), path)

    def log_mel(self, windows: torch.Tensor) -> torch.Tensor:
        """(T, L) -> (T, 96, 64) ``log(mel + 0.01)`` of each window's first 96 frames (zeros past its end)."""
        need = WIN + (PATCH - 1) * HOP  # 15,600 samples = 0.975 s
        w = torch.nn.functional.pad(windows, (0, max(0, need - windows.shape[-1])))[:, :need]  # (T, need)
        spec = melspec.spectrum(melspec.frames(w, WIN, HOP, center=False), self.window, FFT, 1.0)  # (T, 96, 257)
        return torch.log(spec @ self.mel_fb + 0.01)  # (T, 96, 64)

    def engine_parts(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]:
        """The log-mel front end stays in torch; engines run the CNN (sharing this module's layers)."""
        return self.log_mel, PatchNet(self.features, self.embeddings)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return PatchNet(self.features, self.embeddings)(self.log_mel(windows))  # (T, 128)


class PatchNet(nn.Module):
    """VGGish's network on log-mel patches (T, 96, 64) -> (T, 128), over the layers of a ``VGGish``."""

    def __init__(self, features: nn.Sequential, embeddings: nn.Sequential) -> None:
        super().__init__()
        self.features, self.embeddings = features, embeddings

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.features(mel[:, None])  # (T, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).flatten(1)  # (T, 6 * 4 * 512) in TensorFlow's (H, W, C) order
        return self.embeddings(x)  # (T, 128)


def ave_audio_starts(backbone: AudioBackbone, segments: int) -> tuple[np.ndarray, float]:
    """Window starts (segments,) and length of AVE's audio rows for ``backbone`` (VGGish: 0.96 s back to back)."""
    hop = float(getattr(backbone, "ave_hop_s", 1.0))
    return np.arange(segments) * hop, hop
