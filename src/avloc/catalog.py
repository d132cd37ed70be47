"""The built-in models, datasets, losses and evaluators, and the public face over them.

Importing this module registers every built-in class (the one place that imports them all, statically), so
code that looks names up imports the registries from here, not from :mod:`avloc.registry`::

    import avloc, torch
    print(avloc.list_models("psp*"))            # ['psp', 'psp_weak']
    model = avloc.create_model("vscg", relevance_threshold=0.6)
    out = model(model.example_batch(2, torch.Generator().manual_seed(0)))  # an AVEOutput
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from avloc.data import ave, llp, unav  # noqa: F401
from avloc.data.base import InMemoryDataset
from avloc.evaluation import avvp, dense_map, segments  # noqa: F401
from avloc.evaluation.base import Evaluator
from avloc.losses import ave_losses, avel_losses, avvp_losses, cmbs_losses, dense_losses  # noqa: F401
from avloc.losses.base import Loss
from avloc.models import avel, avvp_linear, clasp, cmbs, han, han_dense, linear_mil, mil, psp, vscg  # noqa: F401
from avloc.models.base import AVModel
from avloc.registry import DATASETS, EVALUATORS, LOSSES, MODELS, Registry

__all__ = ["DATASETS", "EVALUATORS", "LOSSES", "MODELS", "create_dataset", "create_evaluator", "create_loss",
           "create_model", "list_datasets", "list_evaluators", "list_losses", "list_models"]


def _matching(registry: Registry, pattern: str) -> list[str]:
    return [name for name in registry.names() if fnmatch.fnmatchcase(name, pattern)]


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching the shell-style ``pattern``."""
    return _matching(MODELS, pattern)


def list_losses(pattern: str = "*") -> list[str]:
    return _matching(LOSSES, pattern)


def list_datasets(pattern: str = "*") -> list[str]:
    return _matching(DATASETS, pattern)


def list_evaluators(pattern: str = "*") -> list[str]:
    return _matching(EVALUATORS, pattern)


def create_model(name: str, **fields: Any) -> AVModel:
    """Model ``name`` with its Config defaults overridden by ``fields`` (unknown fields are an error)."""
    return MODELS.create({"name": name, **fields})  # type: ignore[no-any-return]


def create_loss(name: str, **fields: Any) -> Loss:
    return LOSSES.create({"name": name, **fields})  # type: ignore[no-any-return]


def create_dataset(name: str, root: str | Path, **fields: Any) -> InMemoryDataset:
    """Read and validate the dataset ``name`` stored under ``root``."""
    return DATASETS.create({"name": name, **fields}, root)  # type: ignore[no-any-return]


def create_evaluator(name: str, **fields: Any) -> Evaluator:
    return EVALUATORS.create({"name": name, **fields})  # type: ignore[no-any-return]
