"""Inference engines for the feature backbones: eager PyTorch, ONNX Runtime, OpenVINO; float32 or bf16.

``EngineNet(backbone, name, engine, precision)`` runs a backbone's network like its ``forward``; ``auto``
picks the engine measured fastest on this machine. See ``net`` (choice), ``runners`` (each engine and its
thread settings), ``cache`` (exports and their keys), ``support`` (what is installed and what the CPU has).
"""

from avloc.media.engines.cache import CACHE_ENV, cache_dir
from avloc.media.engines.net import EngineNet, time_runners
from avloc.media.engines.support import (CHOICES, ENGINES, PRECISION_CHOICES, PRECISIONS, EngineError, candidates,
                                         installed)

__all__ = ["CACHE_ENV", "CHOICES", "ENGINES", "PRECISION_CHOICES", "PRECISIONS", "EngineError", "EngineNet", "cache_dir", "candidates",
           "installed", "time_runners"]
