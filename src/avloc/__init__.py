"""avloc: audio-visual event localization (AVE segments and dense weakly-supervised events).

``avloc.create_model``, ``avloc.list_models`` (and the same for datasets, losses, evaluators) come from
:mod:`avloc.catalog`; ``avloc.Predictor`` (video in, events out), ``avloc.export_run`` and ``avloc.extract``
(videos in, a feature folder out) from the inference and media packages. Each is imported on first use, so
that ``import avloc`` stays cheap (no torch).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_CATALOG = ("create_model", "list_models", "create_loss", "list_losses", "create_dataset", "list_datasets",
            "create_evaluator", "list_evaluators")
_INFERENCE = {"Predictor": "avloc.inference.predictor", "export_run": "avloc.inference.predictor",
              "extract": "avloc.media.extract_folder", "ExtractConfig": "avloc.media.extract"}
_PUBLIC = (*_CATALOG, *_INFERENCE)


def __getattr__(name: str) -> Any:
    if name in _CATALOG:
        from avloc import catalog

        return getattr(catalog, name)
    if name in _INFERENCE:
        import importlib

        return getattr(importlib.import_module(_INFERENCE[name]), name)
    raise AttributeError(f"module 'avloc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
