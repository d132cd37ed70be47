"""avloc: audio-visual event localization (AVE segments and dense weakly-supervised events).

``avloc.create_model``, ``avloc.list_models`` (and the same for datasets, losses, evaluators) come from
:mod:`avloc.catalog`, imported on first use so that ``import avloc`` stays cheap (no torch).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_PUBLIC = ("create_model", "list_models", "create_loss", "list_losses", "create_dataset", "list_datasets",
           "create_evaluator", "list_evaluators")


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        from avloc import catalog

        return getattr(catalog, name)
    raise AttributeError(f"module 'avloc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
